"""WebRTC calls to the local server from a real aiortc peer: events, audio, VAD, sideband."""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI

from realtime_widget.local import LocalServer
from realtime_widget.local.client import RealtimeCall

from ..protocol import check_client_event, check_server_event
from .harness import silence, tone

KEY = "sk-local-test-0000"
SAY_HELLO = [
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hello"}],
        },
    },
    {"type": "response.create"},
]


def checked_call(server: LocalServer, **options: Any) -> RealtimeCall:
    return RealtimeCall(server.base_url, api_key=KEY, on_event=check_server_event, **options)


def send(call: RealtimeCall, *events: dict[str, Any]) -> None:
    for event in events:
        check_client_event(event)
        call.send(event)


async def connect_all(server: LocalServer, calls: list[RealtimeCall], timeout: float) -> None:
    """Connect ``calls`` at once; if one times out, fail with where the server's thread was
    (a connect that waits on a server that answers nothing leaves no other trace)."""
    try:
        await asyncio.gather(*(c.connect(timeout=timeout) for c in calls))
    except (TimeoutError, httpx.TimeoutException) as exc:
        thread = server._thread
        frame = sys._current_frames().get(thread.ident or 0) if thread is not None else None
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(no thread)"
        counts = server.realtime.counts()
        raise AssertionError(
            f"a connect timed out ({exc!r}); server {counts}, its thread at:\n{where}"
        ) from exc


def rms_dbfs(pcm: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32768)


@pytest.fixture()
async def call(server: LocalServer) -> AsyncIterator[RealtimeCall]:
    c = checked_call(server)
    await c.connect()
    yield c
    await c.close()


async def test_an_ephemeral_call_opens_with_session_created_and_a_call_id(
    call: RealtimeCall, server: LocalServer
) -> None:
    first = await call.wait_for("session.created")
    assert call.events[0] is first
    assert call.call_id is not None and call.call_id.startswith("rtc_")
    assert call.call_id in server.realtime.calls


async def test_say_hello_gets_a_spoken_reply_with_playback_events_in_order(
    call: RealtimeCall,
) -> None:
    await call.wait_for("session.created")
    send(call, *SAY_HELLO)
    done = await call.wait_for("response.done")
    stopped = await call.wait_for("output_audio_buffer.stopped", timeout=15)
    response_id = done["response"]["id"]
    assert stopped["response_id"] == response_id
    types = [e["type"] for e in call.events]
    assert types.index("output_audio_buffer.started") < types.index("output_audio_buffer.stopped")
    transcript = "".join(e["delta"] for e in call.of("response.output_audio_transcript.delta"))
    assert transcript == "You said: hello"
    # No audio deltas on the data channel: over WebRTC the voice is on the media track.
    assert not call.of("response.output_audio.delta")
    assert rms_dbfs(call.audio()[-24000 * 3 :]) > -45


async def test_the_microphone_drives_server_vad_and_an_answer(call: RealtimeCall) -> None:
    await call.wait_for("session.created")
    call.microphone.speak(np.concatenate([tone(0.8), silence(0.1)]))
    started = await call.wait_for("input_audio_buffer.speech_started")
    stopped = await call.wait_for("input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] - started["audio_start_ms"] >= 700
    done = await call.wait_for("response.done")
    assert done["response"]["output"][0]["content"][0]["transcript"].startswith("I heard")


async def test_barge_in_cancels_clears_and_truncates(call: RealtimeCall) -> None:
    await call.wait_for("session.created")
    send(
        call,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "please tell me a long story about the sea, the wind and the sky",
                    }
                ],
            },
        },
        {"type": "response.create"},
    )
    await call.wait_for("output_audio_buffer.started")
    await call.wait_for("response.output_audio_transcript.delta", count=3)
    call.microphone.speak(tone(0.6))
    await call.wait_for("input_audio_buffer.speech_started")
    done = await call.wait_for("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "turn_detected"
    cleared = await call.wait_for("output_audio_buffer.cleared")
    assert cleared["response_id"] == done["response"]["id"]
    truncated = await call.wait_for("conversation.item.truncated")
    assert truncated["item_id"] == done["response"]["output"][0]["id"]
    assert truncated["audio_end_ms"] > 0
    assert not call.of("output_audio_buffer.stopped")


async def test_interrupt_by_cancel_then_clear(call: RealtimeCall) -> None:
    await call.wait_for("session.created")
    send(
        call,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    await call.wait_for("session.updated")
    send(
        call,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "one two three four five six seven eight nine ten eleven twelve",
                    }
                ],
            },
        },
        {"type": "response.create"},
    )
    await call.wait_for("output_audio_buffer.started")
    send(call, {"type": "response.cancel"}, {"type": "output_audio_buffer.clear"})
    done = await call.wait_for("response.done")
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    await call.wait_for("output_audio_buffer.cleared")


async def test_relay_mode_multipart_with_a_standard_key(server: LocalServer) -> None:
    c = checked_call(server, mode="relay", session={"type": "realtime", "instructions": "relayed"})
    await c.connect()
    try:
        created = await c.wait_for("session.created")
        assert created["session"]["instructions"] == "relayed"
    finally:
        await c.close()


async def test_sdk_calls_create_and_sideband_see_the_same_call(server: LocalServer) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from realtime_widget.local.rtc import use_loopback_candidates

    use_loopback_candidates()
    sdk = AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0)
    pc = RTCPeerConnection()
    channel = pc.createDataChannel("oai-events")
    browser_done = asyncio.Event()

    def on_browser_message(message: str) -> None:
        if json.loads(message)["type"] == "response.done":
            browser_done.set()

    channel.on("message", on_browser_message)
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    raw = await sdk.realtime.calls.with_raw_response.create(
        sdp=pc.localDescription.sdp, session={"type": "realtime", "output_modalities": ["text"]}
    )
    call_id = raw.headers["location"].rsplit("/", 1)[-1]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=raw.http_response.text, type="answer"))
    try:
        async with sdk.realtime.connect(call_id=call_id) as side:
            await side.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "from the sideband"}],
                    },
                }
            )
            await side.send({"type": "response.create"})
            seen = []

            async def until_done() -> None:
                async for event in side:
                    raw_event = event.model_dump(mode="json", exclude_unset=True)
                    check_server_event(raw_event)
                    seen.append(raw_event)
                    if raw_event["type"] == "response.done":
                        break

            await asyncio.wait_for(until_done(), 10)  # (asyncio.timeout needs Python 3.11)
            reply = seen[-1]["response"]["output"][0]["content"][0]["text"]
            assert reply == "You said: from the sideband"
            await asyncio.wait_for(browser_done.wait(), 5)  # the data channel saw it too
    finally:
        await pc.close()


async def test_hangup_ends_the_call(server: LocalServer, call: RealtimeCall) -> None:
    await call.wait_for("session.created")
    async with httpx.AsyncClient() as http:
        res = await http.post(
            f"{server.base_url}/realtime/calls/{call.call_id}/hangup",
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert res.status_code == 200
        await asyncio.wait_for(call.closed.wait(), 10)
        assert call.call_id not in server.realtime.calls
        res = await http.post(
            f"{server.base_url}/realtime/calls/{call.call_id}/hangup",
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert res.status_code == 404
        assert res.json()["error"]["code"] == "call_id_not_found"


async def test_a_bad_offer_is_400_and_makes_no_call(server: LocalServer) -> None:
    async with httpx.AsyncClient() as http:
        before = len(server.realtime.calls)
        res = await http.post(
            f"{server.base_url}/realtime/calls",
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"},
            content="this is not sdp",
        )
        assert res.status_code == 400
        assert res.json()["error"]["param"] == "sdp"
        assert len(server.realtime.calls) == before


async def test_ten_concurrent_calls_hold(server: LocalServer) -> None:
    calls = [checked_call(server) for _ in range(10)]
    try:
        await connect_all(server, calls, timeout=30)
        for i, c in enumerate(calls):
            send(
                c,
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "output_modalities": ["text"]},
                },
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": f"caller {i}"}],
                    },
                },
                {"type": "response.create"},
            )
        dones = await asyncio.gather(*(c.wait_for("response.done", timeout=20) for c in calls))
        for i, done in enumerate(dones):
            assert done["response"]["output"][0]["content"][0]["text"] == f"You said: caller {i}"
        assert len({c.call_id for c in calls}) == 10
    finally:
        await asyncio.gather(*(c.close() for c in calls))
