"""Official OpenAI clients, unchanged, against the local server as their base URL.

- the ``openai`` Python package: a WebRTC call (``realtime.calls.create`` with an aiortc
  offer), and its sideband (``realtime.connect(call_id=...)``) driving that call; its client
  secrets and WebSocket sessions are in ``tests/local/test_http_ws.py``;
- the OpenAI Agents SDK for Python: a ``RealtimeRunner`` session with a function tool;
- the OpenAI Agents SDK for JavaScript (``@openai/agents-realtime``): a ``RealtimeSession`` with a
  function tool over its WebSocket transport (in Node) and its WebRTC transport (in Chromium).

Each flow ends with the model saying what the tool returned, as the local server's contract
says. The JS clients come from ``tests/clients/js`` (installed by ``scripts/setup``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from openai import AsyncOpenAI
from playwright.async_api import BrowserContext

from realtime_widget.local import LocalServer
from realtime_widget.local.rtc import use_loopback_candidates

HERE = Path(__file__).parent
JS = HERE / "js"
ESBUILD = HERE.parents[1] / "js" / "node_modules" / ".bin" / "esbuild"
KEY = "sk-official-clients"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(port=0) as running:
        yield running


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Agents SDK client (agent.ts) bundled for Node and for a page."""
    if not (JS / "node_modules" / "@openai" / "agents-realtime").is_dir():
        pytest.fail("tests/clients/js is not installed: run ./scripts/setup dev")
    out = tmp_path_factory.mktemp("agents-js")
    built = {"node": out / "node.cjs", "web": out / "web.js"}
    for entry, target, platform in (
        ("node-run.ts", built["node"], "--platform=node"),
        ("agent.ts", built["web"], "--format=iife"),
    ):
        subprocess.run(
            [str(ESBUILD), entry, "--bundle", platform, f"--outfile={target}", "--log-level=error"],
            cwd=JS,
            check=True,
        )
    return built


async def test_the_openai_package_makes_a_webrtc_call_and_drives_it_from_its_sideband(
    server: LocalServer,
) -> None:
    use_loopback_candidates()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("oai-events")
    received: list[dict[str, Any]] = []
    opened = asyncio.Event()
    channel.on("open", opened.set)
    channel.on("message", lambda m: received.append(json.loads(m)))
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    client = AsyncOpenAI(base_url=server.base_url, api_key=KEY)
    try:
        raw = await client.realtime.calls.with_raw_response.create(
            sdp=pc.localDescription.sdp,
            session={"type": "realtime", "output_modalities": ["text"]},
        )
        call_id = raw.http_response.headers["Location"].rsplit("/", 1)[-1]
        await pc.setRemoteDescription(RTCSessionDescription(raw.http_response.text, "answer"))
        await asyncio.wait_for(opened.wait(), 10)
        async with client.realtime.connect(call_id=call_id) as sideband:
            await sideband.conversation.item.create(
                item={"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": "from the sideband"}]}
            )  # fmt: skip
            await sideband.response.create()
            async for event in sideband:
                if event.type == "response.done":
                    break
        said = [e for e in received if e["type"] == "response.output_text.done"]
        assert said and said[-1]["text"] == "You said: from the sideband"  # seen by the page too
        await client.realtime.calls.hangup(call_id)
    finally:
        await pc.close()
        await client.close()


async def test_the_agents_sdk_for_python_runs_a_session_with_a_tool(server: LocalServer) -> None:
    from agents import function_tool
    from agents.realtime import RealtimeAgent, RealtimeRunner

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    agent = RealtimeAgent(name="Assistant", instructions="Be brief.", tools=[get_weather])
    runner = RealtimeRunner(
        agent,
        config={
            "model_settings": {
                "model_name": "gpt-realtime-2",
                "modalities": ["text"],
                "turn_detection": None,
            }
        },
    )
    url = server.base_url.replace("http", "ws") + "/realtime?model=gpt-realtime-2"
    session = await runner.run(model_config={"api_key": KEY, "url": url})
    replies: list[str] = []
    async with session:
        await session.send_message("call get_weather with city=Paris")

        async def until_the_reply() -> None:
            async for event in session:
                if event.type == "error":
                    raise AssertionError(f"the session failed: {event.error}")
                if event.type == "history_updated":
                    replies[:] = [
                        str(getattr(part, "text", None) or getattr(part, "transcript", None) or "")
                        for item in event.history
                        if getattr(item, "role", None) == "assistant"
                        for part in getattr(item, "content", [])
                    ]
                    if any("The get_weather tool returned: sunny in Paris" in r for r in replies):
                        return

        await asyncio.wait_for(until_the_reply(), 20)


def test_the_agents_sdk_for_javascript_over_its_websocket_transport(
    server: LocalServer, bundles: dict[str, Path]
) -> None:
    done = subprocess.run(
        ["node", str(bundles["node"]), server.base_url, KEY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout)
    assert outcome["toolCalls"] == ["get_weather"]
    assert "The get_weather tool returned: sunny in Paris" in outcome["replies"]


@pytest_asyncio.fixture()
async def agent_page(bundles: dict[str, Path]) -> AsyncIterator[str]:
    """A page on loopback that loads the bundled Agents SDK."""

    async def index(request: web.Request) -> web.Response:
        html = "<!doctype html><meta charset='utf-8'><script src='/web.js'></script>"
        return web.Response(text=html, content_type="text/html")

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(bundles["web"])

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/web.js", script)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    await runner.cleanup()


async def test_the_agents_sdk_for_javascript_over_its_webrtc_transport_in_chromium(
    server: LocalServer, context: BrowserContext, agent_page: str
) -> None:
    # As in OpenAI's guide: the page gets a client secret from its own server, never the key.
    async with httpx.AsyncClient() as http:
        minted = await http.post(
            f"{server.base_url}/realtime/client_secrets",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"session": {"type": "realtime", "model": "gpt-realtime-2"}},
        )
    secret = minted.json()["value"]
    page = await context.new_page()
    try:
        await page.goto(agent_page)
        await page.wait_for_function("() => typeof window.agentsTalk === 'function'")
        outcome = await page.evaluate(
            "([base, key]) => window.agentsTalk('webrtc', base, key)", [server.base_url, secret]
        )
    finally:
        await page.close()
    assert outcome["toolCalls"] == ["get_weather"]
    assert "The get_weather tool returned: sunny in Paris" in outcome["replies"]
