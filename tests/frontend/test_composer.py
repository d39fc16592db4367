"""The event composer in Chromium against the local server: checked as you type (by the kernel's
rules, the field named), templates, Ctrl+Enter sends, and the server's error shown beside the
event that caused it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from realtime_widget.events import InvalidEventError, prepare

from .helpers import connect, kernel_saw, open_tab, shot
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e

VIEW = "#view-1"


async def test_the_composer_checks_as_you_type_sends_and_shows_server_errors(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    await open_tab(page, VIEW, "compose")
    text = page.locator(f"{VIEW} .rtw-compose-text")
    problem = page.locator(f"{VIEW} .rtw-compose-problem")
    send = page.locator(f"{VIEW} .rtw-compose-send")

    await text.fill('{"type": "response.create"')
    await problem.filter(has_text="Not JSON").wait_for()
    assert await send.is_disabled()
    await text.fill('{"type": "response.make"}')
    await problem.filter(has_text='Unknown client event type "response.make"').wait_for()
    # Checked here as it is typed, the field named as widget.send() would: no kernel round trip.
    await text.fill('{"type": "response.create", "response": {"output_modalities": ["video"]}}')
    await problem.filter(has_text="'response.output_modalities[0]'").wait_for()
    assert await problem.get_attribute("data-ok") == "false"
    assert await send.is_disabled()
    await text.fill('{"type": "conversation.item.truncate", "item_id": "item_1"}')
    await problem.filter(has_text="Missing required parameter: 'content_index'").wait_for()
    assert not [m for m in kernel.received if m.get("op") == "check"]
    # What passes here, the kernel checks with the full schema (a tool choice is not checked here).
    await text.fill('{"type": "response.create", "response": {"tool_choice": "sometimes"}}')
    await problem.filter(has_text="response.tool_choice").wait_for()
    assert await send.is_disabled()
    checks = [m for m in kernel.received if m.get("op") == "check"]
    assert checks and checks[-1]["event"]["response"]["tool_choice"] == "sometimes"

    # A template, checked, sent with Ctrl+Enter: an out-of-band response.
    await page.locator(f"{VIEW} .rtw-compose-template").select_option("response.create")
    await problem.filter(has_text="✓ a valid response.create").wait_for()
    assert await send.is_enabled()
    await text.press("Control+Enter")
    sent = await kernel_saw(page, "out", "response.create")
    assert sent["response"]["conversation"] == "none"
    assert sent["response"]["metadata"] == {"purpose": "summary"}
    row = page.locator(f"{VIEW} .rtw-compose-row").first
    await row.locator(".rtw-compose-outcome", has_text=f"sent · {sent['event_id']}").wait_for()
    done = await kernel_saw(page, "in", "response.done")
    assert done["response"]["conversation_id"] is None  # out of band: not in the conversation

    # The server refuses a truncate of an item it does not have: shown beside that event.
    await text.fill(
        '{"type": "conversation.item.truncate", "item_id": "item_nope", '
        '"content_index": 0, "audio_end_ms": 10}'
    )
    await problem.filter(has_text="✓ a valid conversation.item.truncate").wait_for()
    await send.click()
    error = await kernel_saw(page, "in", "error")
    failed = page.locator(f"{VIEW} .rtw-compose-row.rtw-compose-error")
    await failed.locator(".rtw-compose-outcome", has_text="server error:").wait_for()
    assert error["error"]["message"] in (await failed.text_content() or "")
    assert await failed.get_attribute("data-event-id") == error["error"]["event_id"]
    await shot(page, "composer-light")


async def test_the_composer_cannot_send_while_disconnected(page: Page, kernel: FakeKernel) -> None:
    await open_tab(page, VIEW, "compose")
    await page.locator(f"{VIEW} .rtw-compose-template").select_option("response.cancel")
    await page.locator(f"{VIEW} .rtw-compose-problem", has_text="✓").wait_for()
    assert await page.locator(f"{VIEW} .rtw-compose-send").is_disabled()
    await page.locator(f"{VIEW} .rtw-compose-text").press("Control+Enter")
    assert not [m for m in kernel.received if m.get("op") == "send"]


# --- the browser's checks against Python's -------------------------------------------------------

ESBUILD = Path(__file__).resolve().parents[2] / "js" / "node_modules" / ".bin" / "esbuild"
BASES: list[dict[str, Any]] = [
    {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}},
    {
        "type": "session.update",
        "event_id": "evt_1",
        "session": {
            "type": "realtime",
            "model": "gpt-realtime-2",
            "output_modalities": ["text"],
            "audio": {
                "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
                "output": {"voice": "cedar"},
            },
        },
    },
    {
        "type": "conversation.item.create",
        "previous_item_id": "item_1",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hello!"}],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi."}],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"},
    },
    {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "output_modalities": ["text"],
            "instructions": "Summarize.",
            "metadata": {"purpose": "summary"},
            "audio": {"output": {"voice": {"id": "voice_1"}}},
            "input": [{"type": "item_reference", "id": "item_1"}],
        },
    },
    {"type": "response.cancel", "response_id": "resp_1"},
    {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 10,
    },
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "conversation.item.retrieve", "item_id": "item_1"},
    {"type": "input_audio_buffer.append", "audio": "AAAA"},
    {"type": "input_audio_buffer.commit"},
    {"type": "output_audio_buffer.clear"},
]
REPLACEMENTS: list[Any] = [None, True, 1, -1, 1.5, "", "x", "marin", [], ["text", "audio"], {}]


def mutations(value: Any) -> Iterator[Any]:
    """The value with one thing changed anywhere in it: a field dropped, replaced or added."""
    if isinstance(value, dict):
        yield {**value, "bogus": 1}
        yield {**value, "instruction": "typo"}
        for key, inner in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for other in REPLACEMENTS:
                yield {**value, key: other}
            for changed in mutations(inner):
                yield {**value, key: changed}
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            for changed in mutations(inner):
                yield [*value[:i], changed, *value[i + 1 :]]


def python_param(event: Any) -> str | None:
    """The field Python names for this event ("" for no field), or None if it would send it."""
    try:
        prepare(event)
    except InvalidEventError as exc:
        return exc.param or ""
    return None


@pytest.fixture(scope="module")
def schema_bundle() -> str:
    """js/schema.ts on its own, as a script that sets window.rtwSchema."""
    if not ESBUILD.exists():
        pytest.fail("js/node_modules is missing: run ./scripts/setup dev (or cd js && npm ci)")
    return subprocess.run(
        [str(ESBUILD), "schema.ts", "--bundle", "--format=iife", "--global-name=rtwSchema"],
        cwd=ESBUILD.parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


async def test_the_browser_checks_are_never_stricter_than_python_and_name_its_field(
    page: Page, schema_bundle: str
) -> None:
    """Every event people start from, with each field dropped, replaced by a value of another
    type, or joined by an unknown one: what the browser refuses, Python refuses for the same
    field, and the browser catches nearly all of what Python refuses."""
    await page.add_script_tag(content=schema_bundle)
    cases = [*BASES, *(m for base in BASES for m in mutations(base)), [], "x", {"type": 1}]
    found = await page.evaluate(
        """(cases) => cases.map((c) => rtwSchema.checkClientEvent(c)?.param ?? null)""", cases
    )
    stricter, other_field, caught, refused = [], [], 0, 0
    for case, browser in zip(cases, found, strict=True):
        python = python_param(case)
        refused += python is not None
        if browser is None:
            continue
        caught += 1
        if python is None:
            stricter.append(case)
        elif browser != python:
            other_field.append((case, browser, python))
    assert all(python_param(base) is None for base in BASES)
    assert not stricter, f"the browser refuses what Python sends: {stricter[:5]}"
    assert not other_field, f"the browser names another field: {other_field[:5]}"
    # Most mistakes are caught as they are typed; the kernel catches the rest.
    missed = {python_param(case) for case, b in zip(cases, found, strict=True) if b is None} - {
        None
    }
    assert refused > 500 and caught / refused > 0.95, (caught, refused, sorted(map(str, missed)))
