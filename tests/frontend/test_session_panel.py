"""The Session panel in Chromium against the local server: it shows the server's session and
changes it live with session.update (checked and sent by the kernel), and says why the voice
cannot change once the model has spoken."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from .helpers import connect, kernel_saw, open_tab, say, sent_events, shot
from .kernel import SESSION, FakeKernel

pytestmark = pytest.mark.e2e

VIEW = "#view-1"


def updates(kernel: FakeKernel) -> list[dict]:
    return [e["session"] for e in sent_events(kernel.received) if e["type"] == "session.update"]


async def applied(page: Page, count: int) -> None:
    """Wait for the panel to report an update applied, and the count of updates sent."""
    await page.locator(f"{VIEW} .rtw-session-status", has_text="Applied ✓").wait_for()
    await page.wait_for_function(
        """(n) => rtw.sent.filter((m) => m.kind === "events").flatMap((m) => m.events)
             .filter((r) => r.dir === "out" && r.event.type === "session.update").length === n""",
        arg=count,
    )


async def model_shows(page: Page, model: str) -> None:
    await page.wait_for_function(
        "(m) => document.querySelector('#view-1 .rtw-session-model').value === m", arg=model
    )


async def test_the_session_panel_shows_and_changes_the_live_session(
    page: Page, kernel: FakeKernel
) -> None:
    await open_tab(page, VIEW, "session")
    panel = page.locator(f"{VIEW} .rtw-panel-session")
    assert await panel.locator(".rtw-session-instructions").is_disabled()
    await connect(page, kernel)
    created = await kernel_saw(page, "in", "session.created")
    await model_shows(page, created["session"]["model"])
    assert await panel.locator(".rtw-session-model").is_disabled()  # a call keeps its model
    assert await panel.locator(".rtw-session-voice").input_value() == "marin"
    # The voice, before the model has spoken: allowed.
    await panel.locator(".rtw-session-voice").select_option("cedar")
    await applied(page, 1)
    assert updates(kernel)[-1]["audio"]["output"]["voice"] == "cedar"
    # Reasoning effort and parallel tool calls, live (refused as unknown once).
    await panel.locator(".rtw-session-effort").select_option("low")
    await applied(page, 2)
    assert updates(kernel)[-1]["reasoning"] == {"effort": "low"}
    await panel.locator(".rtw-session-parallel").uncheck()
    await applied(page, 3)
    assert updates(kernel)[-1]["parallel_tool_calls"] is False
    instructions = panel.locator(".rtw-session-instructions")
    assert await instructions.input_value() == SESSION["instructions"]

    # Instructions: edited, Ctrl+Enter, applied.
    await instructions.fill("Answer like a pirate.")
    await instructions.press("Control+Enter")
    await applied(page, 4)
    assert updates(kernel)[-1]["instructions"] == "Answer like a pirate."
    # Input transcription on.
    await panel.locator(".rtw-session-transcribe").check()
    await applied(page, 5)
    assert updates(kernel)[-1]["audio"]["input"]["transcription"] == {
        "model": "gpt-4o-mini-transcribe"
    }
    # Output as text: the next reply streams as text deltas.
    await panel.locator(".rtw-session-output").select_option("text")
    await applied(page, 6)
    assert updates(kernel)[-1]["output_modalities"] == ["text"]
    await say(kernel, "hello in text")
    await kernel_saw(page, "in", "response.output_text.done")
    # The rate limits, as the server reports them when a response starts.
    await panel.locator(".rtw-session-limits", has_text="requests").wait_for()

    # Back to audio; once the model has spoken, the voice is fixed and the panel says so.
    await panel.locator(".rtw-session-output").select_option("audio")
    await applied(page, 7)
    await say(kernel, "hello in speech")
    await kernel_saw(page, "in", "output_audio_buffer.started")
    voice = panel.locator(".rtw-session-voice")
    await page.wait_for_function(
        f"() => document.querySelector('{VIEW} .rtw-session-voice').disabled"
    )
    note = await panel.locator(".rtw-session-voice-note").text_content()
    assert note and "the model has spoken" in note and "Reconnect" in note
    assert await voice.input_value() == "cedar"
    await shot(page, "session-light")


async def test_outside_a_call_the_panel_shows_the_config_the_next_call_starts_with(
    page: Page, kernel: FakeKernel
) -> None:
    await open_tab(page, VIEW, "session")
    panel = page.locator(f"{VIEW} .rtw-panel-session")
    await model_shows(page, "")
    assert await panel.locator(".rtw-session-model").get_attribute("placeholder") == (
        "(the endpoint's default)"
    )
    assert await panel.locator(".rtw-session-voice").input_value() == ""  # the server's default
    # The model picker offers the SDK's models (any name may be typed) and sets the next call's.
    await page.wait_for_function(
        """() => [...document.querySelectorAll("#view-1 datalist option")]
                 .some((o) => o.value === "gpt-realtime-2.1")"""
    )
    await panel.locator(".rtw-session-model").fill("gpt-realtime-2.1-mini")
    await panel.locator(".rtw-session-model").press("Enter")
    await panel.locator(".rtw-session-model").blur()
    await panel.locator(".rtw-session-status", has_text="set for the next call").wait_for()
    assert kernel.configured[-1] == {"type": "realtime", "model": "gpt-realtime-2.1-mini"}
    # What w.update_session(...) does outside a call: the synced `session` trait changes.
    await page.evaluate(
        """() => rtw.model.set("session", {type: "realtime", model: "gpt-realtime-2.1",
             instructions: "From Python.", output_modalities: ["text"],
             audio: {output: {voice: "ash"}, input: {transcription: {model: "whisper-1"}}}})"""
    )
    await model_shows(page, "gpt-realtime-2.1")
    await panel.locator(".rtw-session-source", has_text="next call").wait_for()
    assert await panel.locator(".rtw-session-instructions").input_value() == "From Python."
    assert await panel.locator(".rtw-session-voice").input_value() == "ash"
    assert await panel.locator(".rtw-session-output").input_value() == "text"
    assert await panel.locator(".rtw-session-transcribe").is_checked()
    for control in ("voice", "output", "transcribe", "instructions", "apply"):
        assert await panel.locator(f".rtw-session-{control}").is_disabled()
    note = panel.locator(".rtw-session-voice-note")
    assert "RealtimeWidget(voice=" in (await note.text_content() or "")
    await shot(page, "session-before-call-light")
    # In a call: the server's session (this fake kernel minted the key with its own config).
    await connect(page, kernel)
    await panel.locator(".rtw-session-source", has_text="server reports").wait_for()
    await page.wait_for_function(
        """(want) => document.querySelector("#view-1 .rtw-session-instructions").value === want""",
        arg=SESSION["instructions"],
    )
    assert await panel.locator(".rtw-session-voice").input_value() == "marin"
    assert await panel.locator(".rtw-session-instructions").is_enabled()


async def test_a_change_the_server_refuses_puts_the_control_back(
    page: Page, kernel: FakeKernel
) -> None:
    await open_tab(page, VIEW, "session")
    panel = page.locator(f"{VIEW} .rtw-panel-session")
    await connect(page, kernel)
    await say(kernel, "hello")
    await kernel_saw(page, "in", "output_audio_buffer.started")
    voice = panel.locator(".rtw-session-voice")
    await page.wait_for_function(
        f"() => document.querySelector('{VIEW} .rtw-session-voice').disabled"
    )
    # The race the disabled picker cannot prevent: a voice picked just before the model speaks.
    await voice.evaluate("(el) => { el.disabled = false; }")
    await voice.select_option("ash")
    error = await kernel_saw(page, "in", "error")
    assert error["error"]["code"] == "cannot_update_voice"
    status = panel.locator(".rtw-session-status")
    await status.filter(has_text="Refused by the server: Cannot update").wait_for()
    assert await status.get_attribute("data-ok") == "false"
    assert await voice.input_value() == "marin"  # what is in effect, not what was refused
    assert await voice.is_disabled()
