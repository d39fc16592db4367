"""The local server speaks GPT-Live: the official client's ``live.create`` with a real aiortc
offer, its WebSocket clients (primary and sideband), every event typed by ``openai.types.live``."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, BadRequestError

from realtime_widget.local import LocalServer
from realtime_widget.local.client import EventStream, RealtimeCall

from ..protocol import check_live_client_event, check_live_server_event
from .harness import silence, tone

KEY = "sk-local-test-0000"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
RESPONSES = {"type": "responses", "responses": {"model": "gpt-5.5", "tools": [WEATHER]}}


def live_call(server: LocalServer, **session: Any) -> RealtimeCall:
    config = {"model": "gpt-live-1.1", **session}
    return RealtimeCall(
        server.base_url, api_key=KEY, mode="live", session=config, on_event=check_live_server_event
    )


def send(call: RealtimeCall, *events: dict[str, Any]) -> None:
    for event in events:
        check_live_client_event(event)
        call.send(event)


@pytest.fixture()
async def call(server: LocalServer) -> AsyncIterator[RealtimeCall]:
    c = live_call(server, delegation=RESPONSES)
    await c.connect()
    yield c
    await c.close()


async def test_the_official_client_creates_a_session_that_starts_first(
    call: RealtimeCall,
) -> None:
    started = await call.wait_for("session.started")
    assert call.types()[0] == "session.started"
    assert call.call_id is not None and call.call_id.startswith("live_")
    assert started["session"]["id"] == call.call_id
    assert started["session"]["model"] == "gpt-live-1.1"
    assert started["session"]["audio"]["output"]["voice"] == "marin"


async def test_it_captions_what_it_hears_and_answers_in_voice_full_duplex(
    call: RealtimeCall,
) -> None:
    await call.wait_for("session.started")
    call.microphone.speak(tone(1.0))
    call.microphone.speak(silence(1.0))
    said = await call.wait_for("session.output_transcript.delta", count=5, timeout=15)
    heard = "".join(e["delta"] for e in call.of("session.input_transcript.delta"))
    assert heard.startswith("(1.") and heard.endswith("seconds of speech)")
    assert said["start_ms"] <= said["end_ms"]
    spoken = "".join(e["delta"] for e in call.of("session.output_transcript.delta"))
    assert spoken.startswith("I heard 1.")
    for _ in range(200):  # the voice on the media track
        if call.audio().size > 24_000 // 2 and abs(call.audio()).max() > 1000:
            break
        await asyncio.sleep(0.05)
    assert abs(call.audio()).max() > 1000


async def test_a_tool_runs_through_responses_delegation(call: RealtimeCall) -> None:
    await call.wait_for("session.started")
    send(
        call,
        {
            "type": "session.instructions.append",
            "content": "call get_weather with city=Paris",
            "delegation_id": None,
        },
    )
    created = await call.wait_for("session.delegation.created")
    assert created["delegation"]["target"] == "responses"
    done = next(
        e
        for e in await _wait_inner(call, "response.output_item.done")
        if e["event"]["item"]["type"] == "function_call"
    )
    item = done["event"]["item"]
    assert (item["name"], json.loads(item["arguments"])) == ("get_weather", {"city": "Paris"})
    assert done["delegation_id"] == created["delegation"]["id"]
    send(
        call,
        {
            "type": "response.item.create",
            "item": {"type": "function_call_output", "call_id": item["call_id"], "output": "sunny"},
        },
        {"type": "response.create"},
    )
    for _ in range(400):
        spoken = "".join(e["delta"] for e in call.of("session.output_transcript.delta"))
        if spoken.endswith("sunny"):
            break
        await asyncio.sleep(0.025)
    assert spoken == "The get_weather tool returned: sunny"


async def _wait_inner(call: RealtimeCall, inner: str, timeout: float = 10) -> list[dict[str, Any]]:
    for _ in range(int(timeout / 0.02)):
        found = [e for e in call.of("response.event") if e["event"]["type"] == inner]
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no response.event {inner}: {call.types()}")


async def test_client_delegation_is_answered_by_commentary(server: LocalServer) -> None:
    call = live_call(server)  # no delegation: the client owns delegated work
    await call.connect()
    try:
        await call.wait_for("session.started")
        send(
            call,
            {
                "type": "session.instructions.append",
                "content": "call lookup",
                "delegation_id": None,
            },
        )
        created = await call.wait_for("session.delegation.created")
        assert created["delegation"]["target"] == "client"
        send(
            call,
            {
                "type": "session.commentary.append",
                "content": "It is done.",
                "delegation_id": created["delegation"]["id"],
            },
        )
        await call.wait_for("session.commentary.appended")
        for _ in range(300):
            spoken = "".join(e["delta"] for e in call.of("session.output_transcript.delta"))
            if spoken == "It is done.":
                break
            await asyncio.sleep(0.02)
        assert spoken == "It is done."
    finally:
        await call.close()


async def test_immutable_fields_are_refused_and_delegation_updates(call: RealtimeCall) -> None:
    await call.wait_for("session.started")
    # Not even the SDK's type has the field: sent as a user would, unchecked.
    call.send(
        {"type": "session.update", "session": {"instructions": "Be brief."}, "event_id": "e1"}
    )
    error = await call.wait_for("error")
    assert error["error"]["code"] == "immutable_field_update"
    assert error["error"]["client_event_id"] == "e1"
    update = {"delegation": {"type": "responses", "responses": {"max_output_tokens": 400}}}
    send(call, {"type": "session.update", "session": update})
    updated = await call.wait_for("session.updated")
    responses = updated["session"]["delegation"]["responses"]
    assert responses["max_output_tokens"] == 400 and responses["tools"] == [WEATHER]


async def test_session_close_ends_with_usage_and_the_reason(call: RealtimeCall) -> None:
    await call.wait_for("session.started")
    send(call, {"type": "session.close"})
    closed = await call.wait_for("session.closed")
    assert closed["reason"] == "close_requested"
    assert closed["usage"]["seconds"] >= 0
    await asyncio.wait_for(call.closed.wait(), 10)


async def test_the_allow_list_keeps_commands_from_the_page(server: LocalServer) -> None:
    only_close = {"data_channel": {"allowed_client_events": ["session.close"]}}
    call = live_call(server, client=only_close)
    await call.connect()
    try:
        await call.wait_for("session.started")
        send(call, {"type": "session.input_audio.mute"})
        error = await call.wait_for("error")
        assert error["error"]["code"] == "data_channel_permissions"
        assert not call.of("session.input_audio.muted")
    finally:
        await call.close()


async def test_models_are_refused_on_the_other_api(server: LocalServer) -> None:
    async with AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as api:
        with pytest.raises(BadRequestError) as refused:
            await api.live.create(
                session={"model": "gpt-realtime-2"}, transport={"type": "webrtc", "sdp": "v=0"}
            )
        assert refused.value.code == "invalid_model"
    async with httpx.AsyncClient() as http:
        res = await http.post(
            f"{server.base_url}/realtime/client_secrets",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"session": {"type": "realtime", "model": "gpt-live-1"}},
        )
    assert res.status_code == 400 and res.json()["error"]["code"] == "invalid_model"


async def test_the_sideband_sees_everything_and_can_play_fixtures(
    call: RealtimeCall, server: LocalServer
) -> None:
    await call.wait_for("session.started")
    seen = EventStream()
    api = AsyncOpenAI(base_url=server.base_url, api_key=KEY)
    async with api, api.live.sideband.connect(session_id=str(call.call_id)) as sideband:

        async def read() -> None:
            async for event in sideband:
                raw = event.model_dump(exclude_unset=True)
                check_live_server_event(raw)
                seen._received(raw)

        reader = asyncio.create_task(read())
        pcm = tone(0.3).tobytes()
        await sideband.send(
            {
                "type": "session.output_audio.fixture.play",
                "audio": base64.b64encode(pcm).decode(),
            }
        )
        await seen.wait_for("session.output_audio.fixture.played")
        await sideband.send({"type": "session.close"})
        closed = await seen.wait_for("session.closed")
        assert closed["reason"] == "close_requested"
        reader.cancel()
    # The page was not allowed to play a fixture itself; the sideband was.
    send(call, {"type": "session.close"})


async def test_a_primary_websocket_session_talks_in_deltas(server: LocalServer) -> None:
    api = AsyncOpenAI(base_url=server.base_url, api_key=KEY)
    async with api, api.live.connect() as connection:
        await connection.send(
            {
                "type": "session.start",
                "session": {
                    "model": "gpt-live-1",
                    "audio": {"format": {"type": "audio/pcm", "rate": 24000}},
                },
            }
        )
        seen = EventStream()
        pcm = tone(1.0).tobytes() + silence(1.0).tobytes()
        for at in range(0, len(pcm), 9600):
            await connection.send(
                {
                    "type": "session.input_audio.append",
                    "audio": base64.b64encode(pcm[at : at + 9600]).decode(),
                }
            )

        async def read() -> None:
            async for event in connection:
                raw = event.model_dump(exclude_unset=True)
                check_live_server_event(raw)
                seen._received(raw)

        reader = asyncio.create_task(read())
        await seen.wait_for("session.output_audio.delta", timeout=15)
        assert seen.types()[0] == "session.started"
        assert seen.of("session.input_transcript.delta")
        reader.cancel()


async def test_a_stored_session_forks_after_it_closed(server: LocalServer) -> None:
    call = live_call(server, store=True)
    await call.connect()
    await call.wait_for("session.started")
    send(call, {"type": "session.commentary.append", "content": "Seven.", "delegation_id": None})
    await call.wait_for("session.output_transcript.delta")
    send(call, {"type": "session.close"})
    await call.wait_for("session.closed")
    await call.close()
    fork = RealtimeCall(server.base_url, api_key=KEY, on_event=check_live_server_event)
    from aiortc import RTCSessionDescription

    fork.pc.addTrack(fork.microphone)
    await fork.pc.setLocalDescription(await fork.pc.createOffer())
    async with AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as api:
        forked = await api.live.sessions.fork(
            str(call.call_id),
            transport={"type": "webrtc", "sdp": fork.pc.localDescription.sdp},
            session={"store": False},
        )
        with pytest.raises(Exception, match="still active"):
            await api.live.sessions.fork(
                forked.session.id, transport={"type": "webrtc", "sdp": "v=0"}
            )
        with pytest.raises(Exception, match="not stored"):
            await api.live.sessions.fork(
                "live_never_stored", transport={"type": "webrtc", "sdp": "v=0"}
            )
    await fork.pc.setRemoteDescription(
        RTCSessionDescription(sdp=forked.transport.sdp, type="answer")
    )
    try:
        started = await fork.wait_for("session.started")
        assert started["session"]["id"] == forked.session.id != call.call_id
        assert started["session"]["input"][-1]["content"][0]["text"] == "Seven."
        assert started["session"]["store"] is False
    finally:
        await fork.close()
