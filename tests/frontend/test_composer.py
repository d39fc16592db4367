"""The event composer in Chromium against the local server: checked as you type (by the kernel's
rules, the field named), templates, Ctrl+Enter sends, and the server's error shown beside the
event that caused it."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

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
    # The page asked the kernel once for its schema (its openai's types), and checks with it.
    await page.wait_for_function("() => rtw.sent.some((m) => m.op === 'schema')")
    await text.fill('{"type": "response.make"}')
    await problem.filter(has_text="Invalid value: 'response.make'").wait_for()
    await problem.filter(has_text="Did you mean 'response.cancel'?").wait_for()
    # Checked here as it is typed, the field named as widget.send() would: no kernel round trip.
    await text.fill('{"type": "response.create", "response": {"output_modalities": ["video"]}}')
    await problem.filter(has_text="'response.output_modalities[0]'").wait_for()
    assert await problem.get_attribute("data-ok") == "false"
    assert await send.is_disabled()
    await text.fill('{"type": "conversation.item.truncate", "item_id": "item_1"}')
    await problem.filter(has_text="Missing required parameter: 'audio_end_ms'").wait_for()
    await text.fill('{"type": "response.create", "response": {"tool_choice": "sometimes"}}')
    await problem.filter(has_text="response.tool_choice").wait_for()
    assert await send.is_disabled()
    # Today's fields, as the SDK types them, pass (they were refused as unknown once).
    await text.fill(
        '{"type": "response.create", "response": {"reasoning": {"effort": "low"}, '
        '"parallel_tool_calls": true}}'
    )
    await problem.filter(has_text="✓ a valid response.create").wait_for()
    assert not [m for m in kernel.received if m.get("op") == "check"]

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
