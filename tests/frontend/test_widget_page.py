"""The built front end in Chromium against a fake anywidget model, with Python playing the kernel.

Covers docs/protocol.md from the browser's side: connect in both modes, batched events with
browser timestamps, kernel sends and their ``out`` echoes, the transcript in two views (and a
view rendered later), the model's audio, mute, disconnect and close releasing the microphone,
and each failure step reported with the provider's message.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import Page

from .helpers import CALL, WAIT, connect, kernel_saw, wait_status
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e


def statuses(kernel: FakeKernel) -> list[str]:
    """The statuses the widget reported, repeats folded (the call id, mute also report)."""
    seen: list[str] = []
    for m in kernel.received:
        if m["kind"] == "status" and (not seen or seen[-1] != m["status"]):
            seen.append(m["status"])
    return seen


def last_status(kernel: FakeKernel) -> dict[str, Any]:
    return [m for m in kernel.received if m["kind"] == "status"][-1]


async def test_ephemeral_connect_events_transcript_audio_and_disconnect(
    page: Page, kernel: FakeKernel
) -> None:
    connected = await connect(page, kernel)
    timings = await page.evaluate(f"() => {CALL}.timings")
    print(f"ephemeral connect: {timings['open'] - timings['start']:.0f} ms")
    assert connected["call_id"].startswith("rtc_") and connected["step"] is None
    assert connected["error"] is None and connected["muted"] is False
    # The key was asked for before the microphone opened, not after.
    assert [m["op"] for m in kernel.received if m["kind"] == "request"] == ["key"]
    assert await page.evaluate("() => window.__rtw_calls.size") == 1  # two views, one call

    # session.created arrives in an events message, dir "in", with the browser's clock.
    await kernel_saw(page, "in", "session.created")
    batches = [m for m in kernel.received if m["kind"] == "events"]
    records = [r for b in batches for r in b["events"]]
    record = next(r for r in records if r["event"]["type"] == "session.created")
    assert record["dir"] == "in" and abs(record["t"] - time.time() * 1000) < 10_000
    assert set(batches[0]) == {"kind", "events"}

    # A kernel send: both events go out in order, echoed "out" together in one batch.
    await kernel.deliver(
        {
            "kind": "send",
            "events": [
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "hello"}],
                    },
                },
                {"type": "response.create"},
            ],
        }
    )
    for view in ("#view-1", "#view-2"):
        await page.locator(f"{view} .rtw-assistant", has_text="You said: hello").wait_for(
            timeout=WAIT
        )
        await page.locator(f"{view} .rtw-user", has_text="hello").wait_for(timeout=WAIT)
    out = [
        [r["event"]["type"] for r in m["events"] if r["dir"] == "out"]
        for m in kernel.received
        if m["kind"] == "events"
    ]
    assert ["conversation.item.create", "response.create"] in out

    # Fewer messages than events: batching works.
    await kernel_saw(page, "in", "response.done")
    batches = [m for m in kernel.received if m["kind"] == "events"]
    assert len(batches) < sum(len(b["events"]) for b in batches)

    # A view rendered now shows the turns so far.
    await page.evaluate("() => rtw.render('view-late')")
    await page.locator("#view-late .rtw-assistant", has_text="You said: hello").wait_for()

    # The model's voice reached the page (getStats on the inbound audio).
    await page.evaluate("() => rtw.pollAudio()")
    await page.wait_for_function(
        "() => rtw.audio && rtw.audio.packets > 50 && rtw.audio.energy > 0.001", timeout=WAIT
    )
    assert await page.locator("audio[data-rtw]").count() == 1

    # Mute from the kernel: the track is disabled and the state reported.
    await kernel.deliver({"kind": "mute", "muted": True})
    await wait_status(page, "connected", muted=True)
    assert await page.evaluate(f"() => {CALL}.micTrack.enabled") is False
    await page.locator("#view-1 .rtw-mute", has_text="Unmute").wait_for()
    await kernel.deliver({"kind": "mute", "muted": False})
    await wait_status(page, "connected", muted=False)
    assert await page.evaluate(f"() => {CALL}.micTrack.enabled") is True

    # Disconnect releases the microphone and removes the audio element.
    await page.evaluate(f"() => {{ rtw.track = {CALL}.micTrack; }}")
    await kernel.deliver({"kind": "disconnect"})
    await wait_status(page, "closed")
    assert await page.evaluate("() => rtw.track.readyState") == "ended"
    assert await page.locator("audio[data-rtw]").count() == 0
    assert statuses(kernel) == ["connecting", "connected", "closed"]
    await page.locator("#view-1 .rtw-connect", has_text="Connect").wait_for()


async def test_relay_connect_gets_the_answer_from_the_kernel(
    page: Page, kernel: FakeKernel
) -> None:
    connected = await connect(page, kernel, "relay")
    timings = await page.evaluate(f"() => {CALL}.timings")
    print(f"relay connect: {timings['open'] - timings['start']:.0f} ms")
    requests = [m for m in kernel.received if m["kind"] == "request"]
    assert [m["op"] for m in requests] == ["relay"]
    assert requests[0]["sdp"].startswith("v=0")
    assert connected["call_id"].startswith("rtc_")
    await kernel_saw(page, "in", "session.created")
    await kernel.deliver(
        {
            "kind": "send",
            "events": [
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "relayed"}],
                    },
                },
                {"type": "response.create"},
            ],
        }
    )
    await page.locator("#view-2 .rtw-assistant", has_text="You said: relayed").wait_for(
        timeout=WAIT
    )


async def test_the_connect_button_starts_and_ends_the_call(page: Page, kernel: FakeKernel) -> None:
    await page.locator("#view-2 .rtw-connect").click()
    await wait_status(page, "connected")
    await page.locator("#view-1 .rtw-status", has_text="Connected").wait_for()
    await page.locator("#view-1 .rtw-connect").click()
    await wait_status(page, "closed")
    assert statuses(kernel) == ["connecting", "connected", "closed"]


async def test_a_refused_key_is_an_error_at_step_key(page: Page, kernel: FakeKernel) -> None:
    kernel.key_error = "[401] Incorrect API key provided: sk-wr***. Set OPENAI_API_KEY."
    await kernel.deliver({"kind": "connect"})
    failed = await wait_status(page, "error")
    assert failed["step"] == "key"
    assert "Incorrect API key provided" in failed["error"]
    await page.locator("#view-1 .rtw-error", has_text="Incorrect API key").wait_for()
    # Nothing is left holding the microphone.
    await page.wait_for_function(f"() => {CALL}.micTrack === null", timeout=WAIT)
    assert await page.locator("audio[data-rtw]").count() == 0


async def test_an_unknown_secret_is_refused_at_step_sdp(page: Page, kernel: FakeKernel) -> None:
    kernel.secret = "ek_unknown_or_expired"
    await kernel.deliver({"kind": "connect"})
    failed = await wait_status(page, "error")
    assert failed["step"] == "sdp"
    assert "401" in failed["error"] and "client secret is unknown or has expired" in failed["error"]
    await page.locator("#view-2 .rtw-error", has_text="unknown or has expired").wait_for()
    assert await page.evaluate(f"() => {CALL}.micTrack") is None


async def test_a_server_hangup_closes_the_call_with_a_reason(
    page: Page, kernel: FakeKernel
) -> None:
    connected = await connect(page, kernel)
    await page.evaluate(f"() => {{ rtw.track = {CALL}.micTrack; }}")
    await kernel.hangup(connected["call_id"])
    closed = await wait_status(page, "closed")
    assert "closed the data channel" in closed["error"]
    assert await page.evaluate("() => rtw.track.readyState") == "ended"


async def test_closing_the_widget_releases_the_microphone(page: Page, kernel: FakeKernel) -> None:
    await connect(page, kernel)
    await page.evaluate(f"() => {{ rtw.track = {CALL}.micTrack; }}")
    await page.evaluate("() => rtw.close()")
    assert await page.evaluate("() => rtw.track.readyState") == "ended"
    assert await page.evaluate("() => window.__rtw_calls.size") == 0
    assert await page.locator(".rtw-root").count() == 0
    assert last_status(kernel)["status"] == "closed"


async def test_notices_and_endpoint_label_are_shown(page: Page, kernel: FakeKernel) -> None:
    await page.locator("#view-1 .rtw-endpoint", has_text="fake model page").wait_for()
    notices = ["on('*') handler failed: boom"]
    await page.evaluate("(notices) => rtw.model.set('notices', notices)", notices)
    await page.locator("#view-2 .rtw-notice", has_text="handler failed: boom").wait_for()
