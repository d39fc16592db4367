"""Failures the kernel meets, each with a clear status and a message that says what to do: the
provider refusing or not answering a key mint, the page that held the call going away, the
widget closed mid-call. The provider is a stub on 127.0.0.1 that answers as OpenAI does (OpenAI
itself cannot run here)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from realtime_widget import RealtimeWidget
from realtime_widget.providers import openai as auth
from realtime_widget.transports import browser as browser_module

from .browser import FakeBrowser

KEY = "sk-failure-tests"


class StubProvider:
    """Answers client_secrets with a chosen status (or after a delay) and records hangups."""

    def __init__(self) -> None:
        self.status = 200
        self.delay_s = 0.0
        self.hangups: list[str] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _mint(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay_s)
        if self.status == 200:
            return web.json_response({"value": "ek_stub", "expires_at": int(time.time()) + 600})
        error = {"message": f"stub refusal {self.status}", "type": "invalid_request_error"}
        return web.json_response({"error": error}, status=self.status)

    async def _hangup(self, request: web.Request) -> web.Response:
        self.hangups.append(request.match_info["call_id"])
        return web.Response(status=200)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/realtime/client_secrets", self._mint)
        app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self._hangup)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> StubProvider:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def provider() -> Iterator[StubProvider]:
    with StubProvider() as stub:
        yield stub


def connected(widget: RealtimeWidget, call_id: str = "rtc_live") -> FakeBrowser:
    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", call_id=call_id)
    return browser


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (403, "project may not have access"),
        (429, "Rate limit or quota"),
        (500, "try again in a moment"),
        (503, "try again in a moment"),
    ],
)
async def test_a_refused_mint_names_the_status_the_providers_message_and_what_to_do(
    provider: StubProvider, status: int, advice: str
) -> None:
    provider.status, provider.delay_s = status, 0.0
    w = RealtimeWidget(endpoint=provider.url, api_key=KEY)
    browser = FakeBrowser(w)
    w.connect()
    browser.post({"kind": "request", "id": 1, "op": "key"})
    reply = await browser.wait_custom("reply")
    assert reply["ok"] is False
    assert f"({status})" in reply["error"] and f"stub refusal {status}" in reply["error"]
    assert advice in reply["error"]
    assert KEY not in browser.wire_text()


async def test_a_mint_that_never_answers_times_out_and_says_so(
    provider: StubProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "TIMEOUT_S", 0.3)
    provider.status, provider.delay_s = 200, 3.0
    w = RealtimeWidget(endpoint=provider.url, api_key=KEY)
    browser = FakeBrowser(w)
    w.connect()
    browser.post({"kind": "request", "id": 2, "op": "key"})
    reply = await browser.wait_custom("reply", timeout=10)
    assert reply["ok"] is False and "no answer within 0.3 s" in reply["error"]
    assert "Check the network" in reply["error"]
    provider.delay_s = 0.0


async def wait_until(condition: Any, timeout: float = 10) -> None:
    async def wait() -> None:
        while not condition():  # noqa: ASYNC110 - set by timer and server threads, no Event
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def test_a_reloaded_page_ends_the_call_the_kernel_thought_live(
    provider: StubProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser_module, "PROBE_TIMEOUT_S", 0.2)
    w = RealtimeWidget(endpoint=provider.url, api_key=KEY)
    browser = connected(w, "rtc_reloaded")
    # A page that still holds the call answers the ping: nothing changes.
    browser.post({"kind": "hello"})
    assert browser.custom()[-1] == {"kind": "ping"}
    browser.status("connected", call_id="rtc_reloaded")
    assert w._browser._probe_timer is None  # the answer cancelled the probe: nothing to expire
    assert w.status == "connected"
    # After a reload nobody answers: the call is ended, said, and hung up on the provider.
    browser.post({"kind": "hello"})
    await wait_until(lambda: w.status == "closed")
    assert "reloaded or closed" in w.error and "w.reconnect()" in w.error
    assert len(browser.custom("ping")) == 3  # the second probe pinged twice
    await wait_until(lambda: "rtc_reloaded" in provider.hangups)


def test_a_hello_with_no_live_call_pings_nobody() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    browser.post({"kind": "hello"})
    assert browser.custom("ping") == []


async def test_closing_the_widget_mid_call_hangs_up_on_the_provider(
    provider: StubProvider,
) -> None:
    w = RealtimeWidget(endpoint=provider.url, api_key=KEY)
    connected(w, "rtc_closed")
    w.close()
    assert w.status == "closed" and w.error == "The widget was closed."
    await wait_until(lambda: "rtc_closed" in provider.hangups)


async def test_a_call_that_ends_without_the_user_asking_is_hung_up_on_the_provider(
    provider: StubProvider,
) -> None:
    """A dropped network or a failed setup: the provider may never hear of it, and bills."""
    w = RealtimeWidget(endpoint=provider.url, api_key=KEY)
    browser = connected(w, "rtc_dropped")
    browser.status("closed", error="The connection to the server dropped (no media for 8 s)")
    await wait_until(lambda: "rtc_dropped" in provider.hangups)
    assert w.status == "closed" and "dropped" in w.error
    w.connect()
    browser.status("error", error="No connection within 15 s", step="ice", call_id="rtc_no_ice")
    await wait_until(lambda: "rtc_no_ice" in provider.hangups)
    assert w.error == "[ice] No connection within 15 s"


async def test_a_call_the_user_ended_is_not_hung_up_again(provider: StubProvider) -> None:
    w = RealtimeWidget(endpoint=provider.url, api_key=KEY)
    browser = connected(w, "rtc_user_ended")
    w.disconnect()  # the page closes the peer connection: the provider sees it go
    browser.status("closed", call_id="rtc_user_ended")
    w.connect()
    browser.status("connected", call_id="rtc_next")
    browser.status("closed", error="The call ended: the server closed the data channel.")
    await wait_until(lambda: "rtc_next" in provider.hangups)
    assert "rtc_user_ended" not in provider.hangups
