"""The local server through the official ``openai`` package: HTTP endpoints and WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from realtime_widget.local import LocalServer

from ..protocol import check_client_event, check_server_event

KEY = "sk-local-test-0000"


def client(server: LocalServer, key: str = KEY) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, base_url=server.base_url, max_retries=0)


async def test_client_secrets_create_returns_an_ek_with_the_effective_session(
    server: LocalServer,
) -> None:
    secret = await client(server).realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 120},
        session={
            "type": "realtime",
            "model": "gpt-realtime-2",
            "audio": {"output": {"voice": "cedar"}},
        },
    )
    assert secret.value.startswith("ek_")
    assert abs(secret.expires_at - (time.time() + 120)) < 5
    assert secret.session.audio is not None and secret.session.audio.output is not None
    assert secret.session.audio.output.voice == "cedar"
    default = await client(server).realtime.client_secrets.create(session={"type": "realtime"})
    assert abs(default.expires_at - (time.time() + 600)) < 5


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (
            {"session": {"model": "gpt-realtime-2"}},
            400,
            "missing_required_parameter",
            "session.type",
        ),
        (
            {"session": {"type": "realtime", "temperature": 1}},
            400,
            "unknown_parameter",
            "session.temperature",
        ),
        (
            {"session": {"type": "realtime", "output_modalities": ["text", "audio"]}},
            400,
            "array_above_max_length",
            "session.output_modalities",
        ),
        (
            {"expires_after": {"anchor": "created_at", "seconds": 5}},
            400,
            "integer_below_min_value",
            "expires_after.seconds",
        ),
        (
            {"expires_after": {"anchor": "created_at", "seconds": 7201}},
            400,
            "integer_above_max_value",
            "expires_after.seconds",
        ),
    ],
)
async def test_bad_mint_requests_get_openais_error_body(
    server: LocalServer, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    async with httpx.AsyncClient() as http:
        res = await http.post(
            f"{server.base_url}/realtime/client_secrets",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert res.status_code == status
    error = res.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")


async def test_a_missing_key_is_401_through_the_sdk(server: LocalServer) -> None:
    async with httpx.AsyncClient() as http:
        res = await http.post(f"{server.base_url}/realtime/client_secrets", json={})
    assert res.status_code == 401
    assert "API key" in res.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        await client(server, key="ek_not_a_standard_key").realtime.client_secrets.create(
            session={"type": "realtime"}
        )


async def test_a_server_with_an_api_key_refuses_other_keys() -> None:
    with LocalServer(port=0, api_key="sk-workshop") as guarded:
        with pytest.raises(openai.AuthenticationError) as refused:
            await client(guarded, key="sk-wrong").realtime.client_secrets.create(
                session={"type": "realtime"}
            )
        assert "sk-wrong" not in str(refused.value)  # keys are masked in errors
        ok = await client(guarded, key="sk-workshop").realtime.client_secrets.create(
            session={"type": "realtime"}
        )
        assert ok.value.startswith("ek_")


def test_binding_a_network_address_needs_an_api_key() -> None:
    with pytest.raises(ValueError, match="--api-key"):
        LocalServer(host="0.0.0.0")


async def test_unknown_and_expired_client_secrets_never_make_a_call(server: LocalServer) -> None:
    async with httpx.AsyncClient() as http:
        res = await http.post(
            f"{server.base_url}/realtime/calls",
            content="v=0\r\n",
            headers={"Authorization": "Bearer ek_unknown", "Content-Type": "application/sdp"},
        )
        assert res.status_code == 401
        assert res.json()["error"]["code"] == "invalid_api_key"
        secret = await client(server).realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 10}, session={"type": "realtime"}
        )
        server.realtime.secrets[secret.value].expires_at = time.time() - 1  # fast-forward
        calls_before = len(server.realtime.calls)
        res = await http.post(
            f"{server.base_url}/realtime/calls",
            content="v=0\r\n",
            headers={"Authorization": f"Bearer {secret.value}", "Content-Type": "application/sdp"},
        )
        assert res.status_code == 401 and "expired" in res.json()["error"]["message"]
        assert len(server.realtime.calls) == calls_before


async def test_cors_preflight_allows_a_notebook_page_on_another_port(server: LocalServer) -> None:
    origin = "http://127.0.0.1:8888"
    async with httpx.AsyncClient() as http:
        res = await http.options(
            f"{server.base_url}/realtime/calls",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert res.status_code == 204
        assert res.headers["Access-Control-Allow-Origin"] == origin
        assert "authorization" in res.headers["Access-Control-Allow-Headers"].lower()
        assert "POST" in res.headers["Access-Control-Allow-Methods"]
        res = await http.post(
            f"{server.base_url}/realtime/client_secrets",
            json={"session": {"type": "realtime"}},
            headers={"Origin": origin, "Authorization": f"Bearer {KEY}"},
        )
        assert res.headers["Access-Control-Allow-Origin"] == origin
        assert res.headers["Access-Control-Expose-Headers"] == "Location"


async def test_status_page(server: LocalServer) -> None:
    root = server.base_url.removesuffix("/v1") + "/"
    async with httpx.AsyncClient() as http:
        res = await http.get(root)
        forged = await http.get(root, headers={"Host": "<script>x</script>"})
        counts = await http.get(root, params={"format": "json"})
    assert res.status_code == 200 and server.base_url in res.text
    # The Host header is the client's: shown as text, never as markup.
    assert "<script>" not in forged.text and "&lt;script&gt;" in forged.text
    assert set(counts.json()) == {"calls", "closing", "websockets", "sessions_started"}
    assert all(isinstance(n, int) and n >= 0 for n in counts.json().values())


class Conn:
    """The SDK's connection, with every event checked both ways."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.events: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        check_client_event(event)
        await self.connection.send(event)

    async def until(self, type_: str, timeout: float = 10) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            async for event in self.connection:
                raw = event.model_dump(mode="json", exclude_unset=True)
                check_server_event(raw)
                self.events.append(raw)
                if raw["type"] == type_:
                    return raw
            raise AssertionError(f"connection closed before {type_}")

        return await asyncio.wait_for(read(), timeout)


async def test_websocket_session_through_the_sdk(server: LocalServer) -> None:
    async with client(server).realtime.connect(model="gpt-realtime-2") as connection:
        conn = Conn(connection)
        created = await conn.until("session.created")
        assert created["session"]["model"] == "gpt-realtime-2"
        await conn.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"]},
            }
        )
        await conn.until("session.updated")
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hello"}],
                },
            }
        )
        await conn.send({"type": "response.create"})
        done = await conn.until("response.done")
        assert done["response"]["output"][0]["content"][0]["text"] == "You said: hello"


async def test_websocket_with_a_client_secret_uses_the_minted_session(server: LocalServer) -> None:
    secret = await client(server).realtime.client_secrets.create(
        session={"type": "realtime", "instructions": "minted", "output_modalities": ["text"]}
    )
    async with client(server, key=secret.value).realtime.connect(
        model="gpt-realtime-2"
    ) as connection:
        created = await Conn(connection).until("session.created")
        assert created["session"]["instructions"] == "minted"


async def test_websocket_audio_appends_drive_vad_and_audio_deltas_come_back(
    server: LocalServer,
) -> None:
    from realtime_widget.local.audio import base64_to_pcm16, pcm16_to_base64

    from .harness import silence, tone

    async with client(server).realtime.connect(model="gpt-realtime-2") as connection:
        conn = Conn(connection)
        await conn.until("session.created")
        for chunk in (silence(0.3), tone(0.8), silence(0.8)):
            await conn.send({"type": "input_audio_buffer.append", "audio": pcm16_to_base64(chunk)})
        await conn.until("input_audio_buffer.speech_stopped")
        done = await conn.until("response.done")
        deltas = [e for e in conn.events if e["type"] == "response.output_audio.delta"]
        audio = sum(base64_to_pcm16(e["delta"]).size for e in deltas)
        assert audio > 24000 * 0.5
        assert done["response"]["output"][0]["content"][0]["transcript"].startswith("I heard")


async def test_websocket_output_audio_buffer_clear_is_refused_as_webrtc_only(
    server: LocalServer,
) -> None:
    async with client(server).realtime.connect(model="gpt-realtime-2") as connection:
        conn = Conn(connection)
        await conn.until("session.created")
        await conn.send({"type": "output_audio_buffer.clear", "event_id": "evt_x"})
        error = await conn.until("error")
        assert error["error"]["event_id"] == "evt_x" and "WebRTC" in error["error"]["message"]


async def test_websocket_session_expires_and_closes_with_1001(fresh_server: LocalServer) -> None:
    import websockets

    url = fresh_server.base_url.replace("http", "ws") + "/realtime?model=gpt-realtime-2"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        seen = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        assert seen[-1]["error"]["code"] == "session_expired"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_browser_subprotocol_auth_works(server: LocalServer) -> None:
    import websockets

    url = server.base_url.replace("http", "ws") + "/realtime?model=gpt-realtime-2"
    async with websockets.connect(
        url,
        subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "realtime"
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check_server_event(first)
        assert first["type"] == "session.created"


async def test_sideband_for_an_unknown_call_is_404(server: LocalServer) -> None:
    with pytest.raises(Exception) as refused:
        async with client(server).realtime.connect(call_id="rtc_nope") as connection:
            await Conn(connection).until("session.created", timeout=3)
    assert "404" in str(refused.value)
