"""Helpers shared by the front-end page tests (the fake model page, Python as the kernel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

from .kernel import FakeKernel

WAIT = 15_000  # ms: every wait is on a condition, with this as its limit
CALL = "[...window.__rtw_calls][0]"
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


async def wait_status(page: Page, status: str, **fields: Any) -> dict[str, Any]:
    """The first status message the widget sent with this status (and these fields)."""
    handle = await page.wait_for_function(
        """([status, fields]) => rtw.sent.find((m) => m.kind === "status" && m.status === status
             && Object.entries(fields).every(([k, v]) => m[k] === v))""",
        arg=[status, fields],
        timeout=WAIT,
    )
    found: dict[str, Any] = await handle.json_value()
    return found


async def connect(page: Page, kernel: FakeKernel, mode: str = "ephemeral") -> dict[str, Any]:
    await page.evaluate("(mode) => rtw.model.set('mode', mode)", mode)
    await kernel.deliver({"kind": "connect"})
    return await wait_status(page, "connected")


def sent_events(page_sent: list[dict[str, Any]], direction: str = "out") -> list[dict[str, Any]]:
    """The events the widget reported to the kernel in one direction, in order."""
    return [
        r["event"]
        for m in page_sent
        if m["kind"] == "events"
        for r in m["events"]
        if r["dir"] == direction
    ]


async def kernel_saw(page: Page, direction: str, type_: str, **fields: Any) -> dict[str, Any]:
    """Wait until the kernel got an event of this type (and top-level fields); return it."""
    handle = await page.wait_for_function(
        """([dir, type, fields]) => {
             for (const m of rtw.sent) {
               if (m.kind !== "events") continue;
               for (const r of m.events) {
                 if (r.dir === dir && r.event.type === type &&
                     Object.entries(fields).every(([k, v]) =>
                       JSON.stringify(r.event[k]) === JSON.stringify(v))) return r.event;
               }
             }
             return null;
           }""",
        arg=[direction, type_, fields],
        timeout=WAIT,
    )
    event: dict[str, Any] = await handle.json_value()
    return event


async def say(kernel: FakeKernel, text: str) -> None:
    """What ``w.say(text)`` sends: a user text item and a response."""
    await kernel.deliver(
        {
            "kind": "send",
            "events": [
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": text}],
                    },
                },
                {"type": "response.create"},
            ],
        }
    )


async def open_tab(page: Page, view: str, tab: str) -> None:
    await page.locator(f"{view} .rtw-tab[data-tab='{tab}']").click()
    await page.locator(f"{view} .rtw-panel-{tab}").wait_for()


async def shot(page: Page, name: str, selector: str = "#view-1") -> Path:
    """A screenshot of one view under test-results/ (git-ignored), for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.locator(selector).screenshot(path=str(path))
    return path


async def quiet(page: Page, kernel: FakeKernel) -> None:
    """Turn server VAD off: the looping fake microphone's turns must not take the response slot
    a test's own turn needs."""
    session = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    await kernel.deliver(
        {"kind": "send", "events": [{"type": "session.update", "session": session}]}
    )
    await kernel_saw(page, "in", "session.updated")
