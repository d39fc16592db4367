"""The Compose and Session panels by keyboard alone: reached from the tabs with the arrow keys,
their controls in the order of the work, each with a visible focus outline."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from .helpers import connect, kernel_saw, sent_events, shot
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e

VIEW = "#view-1"


async def focused(page: Page) -> str:
    """The focused control's rtw- class (the one that names it), and whether it shows a ring."""
    name: str = await page.evaluate(
        """() => { const el = document.activeElement;
             const name = [...el.classList].filter((c) => c.startsWith("rtw-")).pop() ?? el.tagName;
             const ring = getComputedStyle(el).outlineStyle !== "none";
             return `${name}${ring ? "" : " (no focus ring)"}`; }"""
    )
    return name


async def tab_through(page: Page, count: int) -> list[str]:
    seen = []
    for _ in range(count):
        await page.keyboard.press("Tab")
        seen.append(await focused(page))
    return seen


async def test_the_composer_and_the_session_panel_work_from_the_keyboard(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    await page.locator(f"{VIEW} .rtw-tab[data-tab='transcript']").focus()
    await page.keyboard.press("End")  # the last tab: Compose
    await page.locator(f"{VIEW} .rtw-panel-compose").wait_for()
    assert await focused(page) == "rtw-tab"
    # Send is disabled while the text is empty: the tab order skips it.
    assert await tab_through(page, 2) == ["rtw-compose-template", "rtw-compose-text"]
    await page.keyboard.type('{"type": "response.cancel"}')
    await page.locator(f"{VIEW} .rtw-compose-problem", has_text="✓").wait_for()
    assert await tab_through(page, 1) == ["rtw-compose-send"]
    await page.keyboard.press("Enter")
    sent = await kernel_saw(page, "out", "response.cancel")
    assert sent["event_id"].startswith("evt_")
    await shot(page, "composer-keyboard-light")

    # Back to the tabs (Shift+Tab), Session is two to the left.
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    assert await focused(page) == "rtw-tab"
    await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("ArrowLeft")
    await page.locator(f"{VIEW} .rtw-panel-session").wait_for()
    await page.locator(f"{VIEW} .rtw-session-source", has_text="server reports").wait_for()
    order = await tab_through(page, 7)
    assert order == [
        "rtw-session-voice",
        "rtw-session-effort",
        "rtw-session-parallel",
        "rtw-session-output",
        "rtw-session-transcribe",
        "rtw-session-instructions",
        "rtw-session-apply",
    ]
    await page.keyboard.press("Shift+Tab")  # the instructions
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Speak slowly.")
    await page.keyboard.press("Control+Enter")
    await page.locator(f"{VIEW} .rtw-session-status", has_text="Applied").wait_for()
    update = [e for e in sent_events(kernel.received) if e["type"] == "session.update"][-1]
    assert update["session"] == {"type": "realtime", "instructions": "Speak slowly."}
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Space")  # transcription on
    await page.wait_for_function(
        """() => rtw.sent.filter((m) => m.kind === "events").flatMap((m) => m.events)
             .filter((r) => r.dir === "out" && r.event.type === "session.update").length === 2"""
    )
    update = [e for e in sent_events(kernel.received) if e["type"] == "session.update"][-1]
    assert update["session"]["audio"]["input"]["transcription"] == {
        "model": "gpt-4o-mini-transcribe"
    }


async def test_the_panels_fit_a_narrow_notebook(page: Page, kernel: FakeKernel) -> None:
    """A notebook in a side panel is narrow: every panel wraps to the width, nothing overflows."""
    await page.set_viewport_size({"width": 380, "height": 900})
    await connect(page, kernel)
    await page.evaluate(
        """() => rtw.model.set("totals", {turns: 12, total_tokens: 123456, cost: 0.4321,
             cost_complete: true, median_latency_ms: 812})"""
    )
    for tab in ("transcript", "session", "compose"):
        await page.locator(f"{VIEW} .rtw-tab[data-tab='{tab}']").click()
        await page.locator(f"{VIEW} .rtw-panel-{tab}").wait_for()
        if tab == "compose":
            await page.locator(f"{VIEW} .rtw-compose-template").select_option("response.create")
            await page.locator(f"{VIEW} .rtw-compose-problem", has_text="✓").wait_for()
        wide = await page.evaluate(
            """(view) => {
                 const edge = document.querySelector(`${view} .rtw-root`)
                   .getBoundingClientRect().right + 1;
                 return [...document.querySelectorAll(`${view} .rtw-root *`)]
                   .filter((el) => el.offsetParent !== null && !el.closest(".rtw-tabs"))
                   .filter((el) => el.getBoundingClientRect().right > edge)
                   .map((el) => el.className || el.tagName); }""",
            VIEW,
        )
        assert wide == [], f"{tab}: wider than the widget: {wide}"
        await shot(page, f"narrow-{tab}-light")
