"""No secret the kernel holds leaves it, whatever the user typed and whatever fails.

Sentinel keys (well formed, with a trailing newline as a key read from a file has, with a
pasted U+200B, a wrong one) go through every failure path the kernel meets (the mint, the
relayed offer and the hang-up refused by a provider that echoes the key back in its error, an
unreachable provider, one that never answers) in both modes. Nothing of a sentinel may reach a
synced value, a message to the page, a notice or error, an exception's text, or anything
printed or logged. One redaction step (``realtime_widget.redact``) is tested on its own first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from realtime_widget import RealtimeWidget, redact
from realtime_widget.config import ConfigError, Endpoint
from realtime_widget.providers import openai as auth

from .browser import FakeBrowser

# Not an OpenAI key's shape on purpose (a committed "sk-…" would look like a leak).
CORE = "key-sentinel-0123456789abcdefghijklmnopqrstuv"
SENTINELS = {
    "well formed": CORE,
    "trailing newline": CORE + "\n",
    "wrong": "key-sentinel-wrong-9876543210zyxwvutsrqponm",
}
ZERO_WIDTH = CORE[:20] + "\u200b" + CORE[20:]


def pieces(sentinel: str) -> list[str]:
    """What must not appear: the key, and (for a split key) each long part of it."""
    parts = [p for p in sentinel.replace("\u200b", "|").strip().split("|") if len(p) >= 12]
    return [sentinel.strip(), *parts]


class EchoingProvider:
    """A provider that refuses everything with 401 and quotes the presented key back (as a
    careless proxy might), or never answers (``hang``)."""

    def __init__(self) -> None:
        self.hang = False
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _refuse(self, request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.sleep(30)
        presented = request.headers.get("Authorization", "") + request.headers.get("api-key", "")
        error = {"message": f"Refused credentials {presented!r}", "type": "invalid_request_error"}
        return web.json_response({"error": error}, status=401)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/realtime/client_secrets", self._refuse)
        app.router.add_post("/v1/realtime/calls", self._refuse)
        app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self._refuse)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> EchoingProvider:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def provider() -> Iterator[EchoingProvider]:
    with EchoingProvider() as stub:
        yield stub


def everything_said(widget: RealtimeWidget, browser: FakeBrowser, *extra: str) -> str:
    """All that left the kernel or was shown: the wire, synced state, notices, repr."""
    return "\n".join(
        [
            browser.wire_text(),
            json.dumps(widget.get_state(), default=str),
            "\n".join(widget.notices),
            widget.error,
            repr(widget),
            repr(widget.endpoint),
            *extra,
        ]
    )


def assert_nowhere(sentinel: str, text: str) -> None:
    for piece in pieces(sentinel):
        assert piece not in text, f"the key (or a part of it: {piece[:16]}…) leaked"


# --- the redaction step on its own -----------------------------------------------------------


def test_redaction_masks_every_form_a_registered_secret_takes_in_text() -> None:
    secret = "key-redaction-" + "x" * 24
    redact.register(secret)
    texts = [
        f"Illegal header value b'Bearer {secret}\\n'",  # httpx's LocalProtocolError
        json.dumps({"authorization": f"Bearer {secret}"}),
        repr({"key": secret + "\n"}),
        f"{secret}{secret}",
    ]
    for text in texts:
        shown = redact.redact(text)
        assert secret not in shown and "key…xxxx" in shown
    assert redact.redact_value({"a": [f"x {secret}"], "b": 3}) == {"a": ["x key…xxxx"], "b": 3}
    assert redact.redact("nothing secret here") == "nothing secret here"


def test_keys_are_normalised_where_they_enter() -> None:
    assert Endpoint("http://127.0.0.1:9/v1", CORE + "\n").api_key == CORE
    assert Endpoint("http://127.0.0.1:9/v1", "  " + CORE + "\r\n").api_key == CORE
    with pytest.raises(ConfigError) as refused:
        RealtimeWidget(endpoint="http://127.0.0.1:9/v1", api_key=ZERO_WIDTH)
    message = str(refused.value)
    assert "U+200B ZERO WIDTH SPACE" in message and "position 21" in message
    assert "Copy the key again" in message
    assert_nowhere(ZERO_WIDTH, message)


def test_credentials_in_an_endpoint_url_are_masked() -> None:
    url = "https://learner:url-password-0123456789@proxy.example/v1"
    w = RealtimeWidget(endpoint=url, api_key=CORE)
    browser = FakeBrowser(w)
    assert "learner:***@proxy.example" in w.endpoint_label
    assert "url-password-0123456789" not in everything_said(w, browser)


def test_mcp_tool_credentials_stay_in_the_kernel_and_the_page_sees_them_masked() -> None:
    token = "mcp-bearer-token-0123456789abcdef"
    header = "mcp-header-secret-0123456789abcdef"
    mcp = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://mcp.example/sse",
        "authorization": token,
        "headers": {"X-Api-Key": header},
    }
    w = RealtimeWidget(endpoint="local", tools=[mcp])
    browser = FakeBrowser(w)
    assert w._core.config["tools"][0]["authorization"] == token  # the kernel keeps it
    shown = w.session["tools"][0]
    assert shown["authorization"] == "mcp…cdef" and shown["headers"]["X-Api-Key"] == "mcp…cdef"
    said = everything_said(w, browser)
    assert token not in said and header not in said


# --- every failure path ------------------------------------------------------------------------


async def request(browser: FakeBrowser, mode: str) -> dict[str, Any]:
    if mode == "ephemeral":
        browser.post({"kind": "request", "id": 1, "op": "key"})
    else:
        browser.post({"kind": "request", "id": 1, "op": "relay", "sdp": "v=0\r\n"})
    return await browser.wait_custom("reply", timeout=15)


@pytest.mark.parametrize("mode", ["ephemeral", "relay"])
@pytest.mark.parametrize("kind", list(SENTINELS))
@pytest.mark.parametrize("failure", ["refused", "unreachable", "timeout"])
async def test_no_sentinel_leaves_the_kernel_when_connecting_fails(
    provider: EchoingProvider,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    kind: str,
    failure: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    sentinel = SENTINELS[kind]
    monkeypatch.setattr(auth, "TIMEOUT_S", 0.5)
    provider.hang = failure == "timeout"
    url = "http://127.0.0.1:9/v1" if failure == "unreachable" else provider.url
    w = RealtimeWidget(endpoint=url, api_key=sentinel, mode=mode)
    browser = FakeBrowser(w)
    w.connect()
    reply = await request(browser, mode)
    assert reply["ok"] is False
    if failure == "refused":
        assert "401" in reply["error"] and "Refused credentials" in reply["error"]
    browser.status("error", step="key" if mode == "ephemeral" else "sdp", error=reply["error"])
    assert w.status == "error"
    out = capsys.readouterr()
    assert_nowhere(sentinel, everything_said(w, browser, out.out, out.err, caplog.text))


@pytest.mark.parametrize("kind", list(SENTINELS))
async def test_no_sentinel_leaves_the_kernel_when_a_hangup_fails(
    provider: EchoingProvider, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    sentinel = SENTINELS[kind]
    provider.hang = False
    w = RealtimeWidget(endpoint=provider.url, api_key=sentinel)
    browser = FakeBrowser(w)
    w.connect()
    browser.status("connected", call_id="rtc_hangup_refused")
    w.hangup()
    await browser.wait_custom("disconnect")
    deadline = asyncio.get_running_loop().time() + 10
    while not any("Refused credentials" in n for n in w.notices):
        assert asyncio.get_running_loop().time() < deadline, w.notices
        await asyncio.sleep(0.02)
    out = capsys.readouterr()
    assert_nowhere(sentinel, everything_said(w, browser, out.out, out.err))


async def test_a_failing_handler_does_not_print_a_key_it_held() -> None:
    w = RealtimeWidget(endpoint="http://127.0.0.1:9/v1", api_key=CORE)
    browser = FakeBrowser(w)
    assert w.endpoint.api_key == CORE

    @w.on("response.done")
    def leaky(event: dict[str, Any]) -> None:
        raise RuntimeError(f"my key is {w.endpoint.api_key}")

    browser.events({"type": "response.done", "event_id": "e", "response": {}})
    assert "leaky" in w.notices[-1]
    assert_nowhere(CORE, everything_said(w, browser))


async def test_an_update_carrying_mcp_credentials_goes_over_the_kernels_line_not_the_page() -> None:
    from realtime_widget.config import shared_local_server
    from realtime_widget.local.client import RealtimeCall

    token = "mcp-bearer-token-fedcba9876543210"
    mcp = {"type": "mcp", "server_label": "docs", "server_url": "https://mcp.example/sse",
           "authorization": token, "require_approval": "never"}  # fmt: skip
    server = shared_local_server()
    call = RealtimeCall(server.base_url, api_key="sk-local")  # the page's call, as aiortc
    await call.connect()
    try:
        w = RealtimeWidget(endpoint="local", tools=[mcp])
        browser = FakeBrowser(w)
        w.connect()
        browser.status("connected", call_id=call.call_id)

        @w.tool
        def ping() -> str:
            """Answer pong."""
            return "pong"

        # The redeclared tools (the MCP server's token among them) reach the server...
        updated = await call.wait_for("session.updated", timeout=10)
        assert [t.get("name", t.get("server_label")) for t in updated["session"]["tools"]] == [
            "docs",
            "ping",
        ]
        deadline = asyncio.get_running_loop().time() + 10
        while not w.events.filter("session.update", direction="out"):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        sent = w.events.filter("session.update", direction="out")[-1].event
        assert sent["session"]["tools"][0]["authorization"] == token  # logged in the kernel
        # ...and not through the page.
        assert token not in browser.wire_text()
        assert not any(
            e["type"] == "session.update" for m in browser.custom("send") for e in m["events"]
        )
    finally:
        await call.close()
