"""The Audio panel and the Interrupt button in Chromium against the local server, with the fake
microphone (a 1 s tone every 5 s): meters, volume, turn detection, push-to-talk, microphone
switching, interrupt."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from .helpers import CALL, connect, kernel_saw, open_tab, say, sent_events, shot
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e

VIEW = "#view-1"
MIC_ENABLED = f"() => {CALL}.micTrack.enabled"


async def level(page: Page, name: str) -> int:
    value = await page.locator(f"{VIEW} .rtw-meter-{name}").get_attribute("aria-valuenow")
    return int(value or 0)


async def wait_level(page: Page, name: str, above: int, timeout: int = 15_000) -> None:
    await page.wait_for_function(
        f"""() => Number(document.querySelector('{VIEW} .rtw-meter-{name}')
                   .getAttribute('aria-valuenow')) > {above}""",
        timeout=timeout,
    )


async def test_meters_volume_and_turn_detection(page: Page, kernel: FakeKernel) -> None:
    await connect(page, kernel)
    await open_tab(page, VIEW, "audio")
    await wait_level(page, "input", 5)  # the fake microphone's tone
    await say(kernel, "please say something long enough to be heard on the meter")
    await wait_level(page, "output", 1)  # the model's voice
    await page.locator(f"{VIEW} .rtw-volume").fill("0.3")
    assert await page.evaluate("() => document.querySelector('audio[data-rtw]').volume") == 0.3

    await page.locator(f"{VIEW} .rtw-detection").select_option("semantic_vad")
    update = await kernel_saw(page, "out", "session.update")
    detection = update["session"]["audio"]["input"]["turn_detection"]
    assert detection == {"type": "semantic_vad", "eagerness": "auto"}
    await kernel_saw(page, "in", "session.updated")
    assert await page.locator(f"{VIEW} .rtw-vad-knobs").is_hidden()
    await page.locator(f"{VIEW} .rtw-detection").select_option("server_vad")
    await page.locator(f"{VIEW} .rtw-silence").fill("800")
    await page.locator(f"{VIEW} .rtw-silence").dispatch_event("change")
    await page.wait_for_function(
        """() => rtw.sent.some((m) => m.kind === "events" && m.events.some((r) =>
             r.event.type === "session.update" &&
             r.event.session.audio.input.turn_detection?.silence_duration_ms === 800))"""
    )
    await shot(page, "audio-light")


async def test_push_to_talk_sends_what_was_said_while_held(page: Page, kernel: FakeKernel) -> None:
    await connect(page, kernel)
    await open_tab(page, VIEW, "audio")
    await page.locator(f"{VIEW} .rtw-ptt-toggle").check()
    update = await kernel_saw(page, "out", "session.update")
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    assert await page.evaluate(MIC_ENABLED) is False  # silent until held
    hold = page.locator(f"{VIEW} .rtw-ptt-hold")
    await hold.dispatch_event("pointerdown")
    assert await page.evaluate(MIC_ENABLED) is True
    await kernel_saw(page, "out", "input_audio_buffer.clear")
    await wait_level(page, "input", 5)  # held through one of the tone's bursts
    await page.wait_for_function(
        f"""() => Number(document.querySelector('{VIEW} .rtw-meter-input')
                   .getAttribute('aria-valuenow')) < 2""",
        timeout=10_000,
    )
    await hold.dispatch_event("pointerup")
    assert await page.evaluate(MIC_ENABLED) is False
    await kernel_saw(page, "out", "input_audio_buffer.commit")
    await kernel_saw(page, "in", "input_audio_buffer.committed")
    await page.wait_for_function(
        f"() => {CALL}.transcript.list.some((t) => t.role === 'assistant' && t.done"
        " && t.text.startsWith('I heard'))",
        timeout=15_000,
    )
    out = [e["type"] for e in sent_events(kernel.received)]
    assert out.index("input_audio_buffer.commit") + 1 == out.index("response.create")
    # Space held in the panel talks too.
    await hold.focus()
    await page.keyboard.down(" ")
    assert await page.evaluate(MIC_ENABLED) is True
    await page.keyboard.up(" ")
    assert await page.evaluate(MIC_ENABLED) is False
    await page.locator(f"{VIEW} .rtw-ptt-toggle").uncheck()
    await page.wait_for_function(
        """() => rtw.sent.some((m) => m.kind === "events" && m.events.some((r) =>
             r.event.type === "session.update" &&
             r.event.session.audio.input.turn_detection?.type === "server_vad"))"""
    )
    assert await page.evaluate(MIC_ENABLED) is True


async def test_switching_microphones_replaces_the_sent_track(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    await open_tab(page, VIEW, "audio")
    picker = page.locator(f"{VIEW} .rtw-mic-picker")
    await page.wait_for_function(
        f"() => document.querySelector('{VIEW} .rtw-mic-picker').options.length > 0"
    )
    before = await page.evaluate(f"() => {CALL}.micTrack.id")
    options = await picker.evaluate("(s) => [...s.options].map((o) => o.value)")
    await picker.select_option(options[-1])
    await page.wait_for_function(f"(id) => {CALL}.micTrack.id !== id", arg=before)
    sent = await page.evaluate(
        f"() => {CALL}.pc.getSenders().find((s) => s.track?.kind === 'audio').track.id"
    )
    assert sent == await page.evaluate(f"() => {CALL}.micTrack.id")
    await wait_level(page, "input", 5)  # the new track is measured


async def test_interrupt_cancels_the_response_and_clears_the_audio(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    interrupt = page.locator(f"{VIEW} .rtw-interrupt")
    await say(kernel, " ".join(["a long reply to interrupt"] * 20))
    await kernel_saw(page, "in", "output_audio_buffer.started")
    await interrupt.click()
    await kernel_saw(page, "out", "response.cancel")
    await kernel_saw(page, "out", "output_audio_buffer.clear")
    done = await kernel_saw(page, "in", "response.done")
    assert done["response"]["status"] == "cancelled"
    await kernel_saw(page, "in", "output_audio_buffer.cleared")
