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
    assert await page.evaluate("() => rtw.model.get('volume')") == 0.3  # Python sees it
    # Python sets w.volume: the element and both views' sliders follow.
    await open_tab(page, "#view-2", "audio")
    await page.evaluate("() => rtw.model.set('volume', 0.6)")
    assert await page.evaluate("() => document.querySelector('audio[data-rtw]').volume") == 0.6
    assert await page.locator("#view-2 .rtw-volume").input_value() == "0.6"
    await page.locator(f"{VIEW} .rtw-volume-value", has_text="60%").wait_for()

    await page.locator(f"{VIEW} .rtw-detection").select_option("semantic_vad")
    update = await kernel_saw(page, "out", "session.update")
    detection = update["session"]["audio"]["input"]["turn_detection"]
    assert detection == {"type": "semantic_vad", "eagerness": "auto"}
    await kernel_saw(page, "in", "session.updated")
    assert await page.locator(f"{VIEW} .rtw-vad-knobs").is_hidden()
    await page.locator(f"{VIEW} .rtw-detection").select_option("off")
    await page.locator(f"{VIEW} .rtw-ptt-hint", has_text="Nothing ends a turn").wait_for()
    await page.wait_for_function(
        """() => rtw.sent.some((m) => m.kind === "events" && m.events.some((r) =>
             r.event.type === "session.update" &&
             r.event.session.audio.input.turn_detection === null))"""
    )
    await page.locator(f"{VIEW} .rtw-detection").select_option("server_vad")
    await page.locator(f"{VIEW} .rtw-silence").fill("800")
    await page.locator(f"{VIEW} .rtw-silence").dispatch_event("change")
    await page.wait_for_function(
        """() => rtw.sent.some((m) => m.kind === "events" && m.events.some((r) =>
             r.event.type === "session.update" &&
             r.event.session.audio.input.turn_detection?.silence_duration_ms === 800))"""
    )
    # The server applied it: its session (session.updated) has all three knobs.
    applied = await page.wait_for_function(
        """() => rtw.sent.flatMap((m) => m.kind === "events" ? m.events : []).map((r) => r.event)
             .find((e) => e.type === "session.updated" &&
               e.session.audio.input.turn_detection?.silence_duration_ms === 800)"""
    )
    detection = (await applied.json_value())["session"]["audio"]["input"]["turn_detection"]
    assert detection["type"] == "server_vad"
    assert (detection["threshold"], detection["prefix_padding_ms"]) == (0.5, 300)
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
    await page.locator(f"{VIEW} .rtw-ptt-hint").wait_for()
    await shot(page, "audio-ptt-held")
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
    before = await page.evaluate(f"() => (window.__oldTrack = {CALL}.micTrack).id")
    options = await picker.evaluate("(s) => [...s.options].map((o) => o.value)")
    await picker.select_option(options[-1])
    await page.wait_for_function(f"(id) => {CALL}.micTrack.id !== id", arg=before)
    sent = await page.evaluate(
        f"() => {CALL}.pc.getSenders().find((s) => s.track?.kind === 'audio').track.id"
    )
    assert sent == await page.evaluate(f"() => {CALL}.micTrack.id")
    # The old microphone is released, not left open beside the new one.
    assert await page.evaluate("() => window.__oldTrack.readyState") == "ended"
    await wait_level(page, "input", 5)  # the new track is measured


async def test_interrupt_cancels_the_response_and_clears_the_audio(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    interrupt = page.locator(f"{VIEW} .rtw-interrupt")
    assert await interrupt.is_disabled()  # nothing to stop yet
    await say(kernel, " ".join(["a long reply to interrupt"] * 20))
    await kernel_saw(page, "in", "output_audio_buffer.started")
    await interrupt.click()  # enabled while the model answers (click waits for it)
    await kernel_saw(page, "out", "response.cancel")
    await kernel_saw(page, "out", "output_audio_buffer.clear")
    done = await kernel_saw(page, "in", "response.done")
    assert done["response"]["status"] == "cancelled"
    await kernel_saw(page, "in", "output_audio_buffer.cleared")
    await page.wait_for_function("() => document.querySelector('#view-2 .rtw-interrupt').disabled")


async def test_push_to_talk_from_python_and_back_to_the_turn_detection_it_replaced(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    await open_tab(page, VIEW, "audio")
    await page.locator(f"{VIEW} .rtw-detection").select_option("semantic_vad")
    await kernel_saw(page, "in", "session.updated")
    # w.push_to_talk = True in Python: a synced trait the call follows, both views show it.
    await open_tab(page, "#view-2", "audio")
    await page.evaluate("() => rtw.model.set('push_to_talk', true)")
    assert await page.evaluate(MIC_ENABLED) is False
    assert await page.locator("#view-2 .rtw-ptt-toggle").is_checked()
    assert await page.locator(f"{VIEW} .rtw-ptt-hold").is_enabled()
    await page.wait_for_function(
        """() => rtw.sent.some((m) => m.kind === "events" && m.events.some((r) =>
             r.dir === "out" && r.event.type === "session.update" &&
             r.event.session.audio.input.turn_detection === null))"""
    )
    # Off again (the view's checkbox): the trait follows, semantic VAD comes back.
    await page.locator(f"{VIEW} .rtw-ptt-toggle").uncheck()
    assert await page.evaluate("() => rtw.model.get('push_to_talk')") is False
    await page.wait_for_function(
        """() => rtw.sent.some((m) => m.kind === "events" && m.events.some((r) =>
             r.event.type === "session.update" &&
             r.event.session.audio.input.turn_detection?.type === "semantic_vad"))"""
    )
    # Push-to-talk set before a call: the call starts with turn detection off.
    await kernel.deliver({"kind": "disconnect"})
    await page.evaluate("() => rtw.model.set('push_to_talk', true)")
    await page.evaluate("() => { rtw.sent.length = 0; }")
    await connect(page, kernel)
    await kernel_saw(page, "out", "session.update")
    created = await kernel_saw(page, "in", "session.updated")
    assert created["session"]["audio"]["input"]["turn_detection"] is None
    assert await page.evaluate(MIC_ENABLED) is False


async def test_meters_run_one_loop_only_on_screen_and_free_their_audio_context(
    page: Page, kernel: FakeKernel
) -> None:
    # Count AudioContexts made and closed (the page's own class, wrapped).
    await page.evaluate(
        """() => {
             const Base = window.AudioContext;
             window.__contexts = [];
             window.AudioContext = class extends Base {
               constructor(...args) { super(...args); window.__contexts.push(this); }
             };
             const raf = window.requestAnimationFrame.bind(window);
             window.__frames = 0;
             window.requestAnimationFrame = (fn) => { window.__frames++; return raf(fn); };
           }"""
    )
    running = f"() => {CALL}.meters.running"
    stopped = f"() => !{CALL}.meters.running"
    for _ in range(2):
        await open_tab(page, VIEW, "transcript")
        await connect(page, kernel)
        assert await page.evaluate(running) is False  # no view shows meters yet
        await open_tab(page, VIEW, "audio")
        await open_tab(page, "#view-2", "audio")
        await wait_level(page, "input", 5)
        # Two views on screen, one loop: about one frame request per frame, not two.
        start = await page.evaluate("() => [window.__frames, performance.now()]")
        await page.wait_for_function("(n) => window.__frames > n + 30", arg=start[0])
        frames, now = await page.evaluate("() => [window.__frames, performance.now()]")
        assert (frames - start[0]) / ((now - start[1]) / 1000) < 75
        await open_tab(page, VIEW, "transcript")
        await open_tab(page, "#view-2", "log")
        await page.wait_for_function(stopped)
        await open_tab(page, VIEW, "audio")
        await page.wait_for_function(running)
        await kernel.deliver({"kind": "disconnect"})
        await page.wait_for_function(stopped)
        assert await level(page, "input") == 0
        await page.evaluate("() => { rtw.sent.length = 0; }")
    states = await page.evaluate("() => window.__contexts.map((c) => c.state)")
    assert states == ["closed", "closed"]  # one per call, each closed with it


async def test_a_microphone_chosen_before_the_call_is_the_one_it_opens(
    page: Page, kernel: FakeKernel
) -> None:
    await open_tab(page, VIEW, "audio")
    picker = page.locator(f"{VIEW} .rtw-mic-picker")
    await page.wait_for_function(
        f"() => document.querySelector('{VIEW} .rtw-mic-picker').options.length > 1"
    )
    assert await picker.is_enabled()
    chosen = (await picker.evaluate("(s) => [...s.options].map((o) => o.value)"))[-1]
    await picker.select_option(chosen)
    await connect(page, kernel)
    assert await page.evaluate(f"() => {CALL}.micTrack.getSettings().deviceId") == chosen
    assert await picker.input_value() == chosen


async def test_holding_while_muted_sends_nothing(page: Page, kernel: FakeKernel) -> None:
    await connect(page, kernel)
    await open_tab(page, VIEW, "audio")
    await page.locator(f"{VIEW} .rtw-ptt-toggle").check()
    await page.locator(f"{VIEW} .rtw-mute").click()
    hold = page.locator(f"{VIEW} .rtw-ptt-hold")
    assert await hold.is_disabled()
    await page.evaluate(f"() => {CALL}.talk(true)")  # Space, or a script
    assert await page.evaluate(MIC_ENABLED) is False
    await page.evaluate(f"() => {CALL}.talk(false)")
    out = [e["type"] for e in sent_events(kernel.received)]
    assert "input_audio_buffer.commit" not in out  # no empty commit for the server to refuse
    await page.locator(f"{VIEW} .rtw-mute").click()
    assert await hold.is_enabled()


async def test_a_held_turn_survives_a_drag_off_the_button_and_ends_wherever_released(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    await open_tab(page, VIEW, "audio")
    await page.locator(f"{VIEW} .rtw-ptt-toggle").check()
    hold = page.locator(f"{VIEW} .rtw-ptt-hold")
    await hold.hover()
    await page.mouse.down()
    await page.mouse.move(5, 5)  # off the button, still held
    assert await page.evaluate(MIC_ENABLED) is True
    await page.mouse.up()
    assert await page.evaluate(MIC_ENABLED) is False
    await kernel_saw(page, "out", "input_audio_buffer.commit")
    # Space pressed in the panel and released with the focus elsewhere ends the turn too.
    await hold.focus()
    await page.keyboard.down(" ")
    assert await page.evaluate(MIC_ENABLED) is True
    await page.locator(f"{VIEW} .rtw-tab[data-tab='transcript']").focus()
    await page.keyboard.up(" ")
    assert await page.evaluate(MIC_ENABLED) is False
    await page.wait_for_function(
        """() => rtw.sent.flatMap((m) => m.kind === "events" ? m.events : [])
             .filter((r) => r.event.type === "input_audio_buffer.commit").length === 2"""
    )


async def test_the_audio_panel_fits_a_narrow_notebook(page: Page, kernel: FakeKernel) -> None:
    await page.set_viewport_size({"width": 380, "height": 900})
    await connect(page, kernel)
    await open_tab(page, VIEW, "audio")
    await page.locator(f"{VIEW} .rtw-ptt-toggle").check()  # the longest hint
    await page.locator(f"{VIEW} .rtw-ptt-hint").wait_for()
    wide = await page.evaluate(
        """(view) => {
             const edge = document.querySelector(`${view} .rtw-root`)
               .getBoundingClientRect().right + 1;
             return [...document.querySelectorAll(`${view} .rtw-panel-audio *`)]
               .filter((el) => el.offsetParent !== null)
               .filter((el) => el.getBoundingClientRect().right > edge)
               .map((el) => el.className || el.tagName); }""",
        VIEW,
    )
    assert wide == [], f"wider than the widget: {wide}"
    await shot(page, "narrow-audio-light")
