"""A call whose setup hangs fails in bounded time, naming the step that hung: a kernel that never
hands over the key, a server that never answers the offer (the browser's request is abandoned),
a relay the kernel never answers. The microphone is released and no peer connection is left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Page

from .helpers import CALL, wait_status
from .kernel import API_KEY, FakeKernel

pytestmark = pytest.mark.e2e

LIMIT_S = 15  # the call's own bound on its setup (js/call.ts OPEN_TIMEOUT_MS)
RELEASED = """() => rtw.track?.readyState === "ended" && rtw.pc?.connectionState === "closed"
                 && document.querySelectorAll("audio[data-rtw]").length === 0"""


class SilentKernel(FakeKernel):
    """Receives the page's requests and never answers the ones named in ``silent``."""

    silent: tuple[str, ...] = ()

    async def _answer(self, request: dict[str, Any]) -> None:
        if request["op"] in self.silent:
            await asyncio.Event().wait()  # a kernel stuck in a cell
        await super()._answer(request)


class HangingServer:
    """Answers the CORS preflight, then holds every offer without answering; notes when the
    browser gives up on one (its request is cancelled)."""

    def __init__(self) -> None:
        self.posted = 0
        self.abandoned = asyncio.Event()

    async def preflight(self, request: web.Request) -> web.Response:
        return web.Response(
            headers={
                "Access-Control-Allow-Origin": request.headers.get("Origin", "*"),
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Allow-Methods": "POST, OPTIONS",
            }
        )

    async def offer(self, request: web.Request) -> web.Response:
        self.posted += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.abandoned.set()
            raise
        return web.Response(status=500)


@pytest_asyncio.fixture()
async def hanging() -> AsyncIterator[tuple[HangingServer, str]]:
    server = HangingServer()
    app = web.Application()
    app.router.add_route("OPTIONS", "/v1/realtime/calls", server.preflight)
    app.router.add_post("/v1/realtime/calls", server.offer)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield server, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    await runner.cleanup()


async def start(page: Page, page_url: str, kernel: FakeKernel, mode: str) -> float:
    await kernel.attach()
    await page.goto(page_url)
    await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
    await page.evaluate("(mode) => rtw.model.set('mode', mode)", mode)
    started = time.monotonic()
    await kernel.deliver({"kind": "connect"})
    await page.wait_for_function(f"() => {CALL}.pc !== null", timeout=10_000)
    await page.evaluate(f"() => {{ rtw.track = {CALL}.micTrack; rtw.pc = {CALL}.pc; }}")
    return started


async def failed(page: Page, started: float, step: str, says: str) -> None:
    status = await page.wait_for_function(
        """() => rtw.sent.find((m) => m.kind === "status" && m.status === "error")""",
        timeout=(LIMIT_S + 10) * 1000,
    )
    message = await status.json_value()
    took = time.monotonic() - started
    assert message["step"] == step and says in message["error"], message
    assert LIMIT_S - 1 < took < LIMIT_S + 8, took
    await page.locator("#view-1 .rtw-error", has_text=says).wait_for()
    await page.wait_for_function(RELEASED)
    assert await page.evaluate(f"() => {CALL}.state.status") == "error"


async def test_a_key_the_kernel_never_hands_over_fails_at_step_key(
    page: Page, page_url: str
) -> None:
    kernel = SilentKernel(page, "http://127.0.0.1:9/v1", API_KEY)
    kernel.silent = ("key",)
    try:
        started = await start(page, page_url, kernel, "ephemeral")
        await failed(page, started, "key", "did not hand over a key within 15 s")
    finally:
        await kernel.close()


async def test_an_offer_the_server_never_answers_fails_at_step_sdp_and_is_abandoned(
    page: Page, page_url: str, hanging: tuple[HangingServer, str]
) -> None:
    server, base_url = hanging
    kernel = FakeKernel(page, base_url, API_KEY)
    kernel.secret = "ek_for_a_server_that_never_answers"
    try:
        started = await start(page, page_url, kernel, "ephemeral")
        await failed(page, started, "sdp", "The server did not answer the call's offer")
        assert server.posted == 1
        # The browser gave up on the request: the server saw it go.
        await asyncio.wait_for(server.abandoned.wait(), 5)
    finally:
        await kernel.close()


async def test_a_relay_the_kernel_never_answers_fails_at_step_sdp(
    page: Page, page_url: str, local_server: Any
) -> None:
    kernel = SilentKernel(page, local_server.base_url, API_KEY)
    kernel.silent = ("relay",)
    try:
        started = await start(page, page_url, kernel, "relay")
        await failed(page, started, "sdp", "the kernel relays it")
        await wait_status(page, "error", step="sdp")
    finally:
        await kernel.close()
