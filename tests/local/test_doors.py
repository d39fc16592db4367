"""The local server's doors, against the running server: which browser origins may use it (HTTP
and WebSocket, Chromium's Private Network Access preflight), keys (wrong ones, from a file or the
environment), a client secret that opens only its own call, and the retired beta shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime_widget.cli import main as cli
from realtime_widget.local import LocalServer
from realtime_widget.local.client import RealtimeCall
from realtime_widget.local.server import KEY_VARIABLE, server_key

KEY = "door-test-key-0123456789"
HUB = "https://hub.example.org"


@pytest.fixture(scope="module")
def guarded() -> Iterator[LocalServer]:
    with LocalServer(port=0, api_key=KEY, allowed_origins=[HUB]) as running:
        yield running


def preflight(server: LocalServer, origin: str, **headers: str) -> httpx.Response:
    return httpx.options(
        f"{server.base_url}/realtime/client_secrets",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-stainless-os",
            **headers,
        },
    )


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8888", "http://localhost:8888", HUB])
def test_allowed_origins_get_cors_and_the_headers_official_clients_send(
    guarded: LocalServer, origin: str
) -> None:
    answer = preflight(guarded, origin, **{"Access-Control-Request-Private-Network": "true"})
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert "x-stainless-os" in answer.headers["Access-Control-Allow-Headers"]
    assert answer.headers["Access-Control-Allow-Private-Network"] == "true"
    minted = httpx.post(
        f"{guarded.base_url}/realtime/client_secrets",
        headers={"Origin": origin, "Authorization": f"Bearer {KEY}"},
        json={"session": {"type": "realtime"}},
    )
    assert minted.status_code == 200 and minted.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1.evil.io"])
def test_other_origins_are_refused_on_http(guarded: LocalServer, origin: str) -> None:
    answer = preflight(guarded, origin)
    assert answer.status_code == 403
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert answer.json()["error"]["code"] == "origin_not_allowed"
    minted = httpx.post(
        f"{guarded.base_url}/realtime/client_secrets",
        headers={"Origin": origin, "Authorization": f"Bearer {KEY}"},
        json={"session": {"type": "realtime"}},
    )
    assert minted.status_code == 403 and "--allow-origin" in minted.json()["error"]["message"]


async def test_the_websocket_checks_the_origin_too(guarded: LocalServer) -> None:
    url = guarded.base_url.replace("http", "ws") + "/realtime?model=gpt-realtime-2"
    auth = {"Authorization": f"Bearer {KEY}"}
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=auth, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(url, additional_headers=auth, origin=HUB) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"


def test_wrong_keys_are_refused_and_keys_come_from_a_file_or_the_environment(
    guarded: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for wrong in ("door-test-key-0123456788", KEY + "x", "x"):
        refused = httpx.post(
            f"{guarded.base_url}/realtime/client_secrets",
            headers={"Authorization": f"Bearer {wrong}"},
            json={},
        )
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    file = tmp_path / "key"
    file.write_text(KEY + "\n")
    assert server_key(None, file) == KEY
    monkeypatch.setenv(KEY_VARIABLE, " " + KEY)
    assert server_key() == KEY
    monkeypatch.delenv(KEY_VARIABLE)
    assert server_key() is None
    with pytest.raises(SystemExit, match="give it a key"):
        cli(["serve", "--host", "0.0.0.0", "--port", "0"])
    with pytest.raises(SystemExit, match="No such file"):
        cli(["serve", "--api-key-file", str(tmp_path / "missing")])


async def test_a_client_secret_opens_only_the_call_it_made(server: LocalServer) -> None:
    mine, theirs = (RealtimeCall(server.base_url, api_key="sk-local") for _ in range(2))
    await mine.connect()
    await theirs.connect()
    try:
        base = server.base_url.replace("http", "ws") + "/realtime?call_id="

        def bearer(key: str | None) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(
                base + str(theirs.call_id), additional_headers=bearer(mine.secret)
            ):
                pass
        assert refused.value.response.status_code == 403
        for key in (mine.secret, "sk-local"):  # its own secret, or the standard key
            async with websockets.connect(
                base + str(mine.call_id), additional_headers=bearer(key)
            ) as ws:
                await ws.send(json.dumps({"type": "response.cancel", "event_id": "evt_x"}))
                error = json.loads(await ws.recv())
                assert error["error"]["code"] == "response_cancel_not_active"
    finally:
        await mine.close()
        await theirs.close()


async def test_the_retired_beta_shape_is_refused_as_openai_refuses_it(server: LocalServer) -> None:
    beta = {"Authorization": "Bearer sk-local", "OpenAI-Beta": "realtime=v1"}
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answers = [
            await http.post("/realtime/client_secrets", headers=beta, json={}),
            await http.post("/realtime/sessions", headers={"Authorization": "Bearer x"}),
            await http.post("/realtime?model=gpt-realtime", content="v=0"),
        ]
    for answer in answers:
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "beta_api_shape_disabled"
    url = server.base_url.replace("http", "ws") + "/realtime?model=gpt-realtime-2"
    async with websockets.connect(url, additional_headers=beta) as ws:
        event = json.loads(await ws.recv())
        assert event["type"] == "error" and event["error"]["code"] == "beta_api_shape_disabled"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1008
