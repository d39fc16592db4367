"""Failures met in the page, against the local server: the provider's session time cap, and ICE
that never connects. After each the status says what happened and what to do, the microphone is
released and no peer connection is left open."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from realtime_widget.local import LocalServer

from .helpers import CALL, connect, kernel_saw, wait_status
from .kernel import API_KEY, FakeKernel

pytestmark = pytest.mark.e2e

RELEASED = f"""() => {CALL}.micTrack === null && rtw.track.readyState === "ended"
                 && rtw.pc.connectionState === "closed" && {CALL}.pc === null"""


async def keep_handles(page: Page) -> None:
    """Hold on to the call's microphone track and peer connection, to check them afterwards."""
    await page.evaluate(f"() => {{ rtw.track = {CALL}.micTrack; rtw.pc = {CALL}.pc; }}")


@pytest.fixture(scope="module")
def short_server() -> Iterator[LocalServer]:
    with LocalServer(port=0, max_session_s=2) as server:
        yield server


@pytest_asyncio.fixture()
async def short_kernel(
    page: Page, page_url: str, short_server: LocalServer
) -> AsyncIterator[FakeKernel]:
    fake = FakeKernel(page, short_server.base_url, API_KEY)
    await fake.attach()
    await page.goto(page_url)
    await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
    yield fake
    await fake.close()


async def test_the_session_time_cap_ends_the_call_and_says_reconnect_continues(
    page: Page, short_kernel: FakeKernel
) -> None:
    await connect(page, short_kernel)
    await keep_handles(page)
    expired = await kernel_saw(page, "in", "error")
    assert expired["error"]["code"] == "session_expired"
    closed = await wait_status(page, "closed")
    assert "time limit (session_expired)" in closed["error"] and "w.reconnect()" in closed["error"]
    await page.locator("#view-1 .rtw-error", has_text="session_expired").wait_for()
    await page.wait_for_function(RELEASED)


class UnreachableMediaKernel(FakeKernel):
    """Relays the offer, then points the answer's ICE candidates at an address nobody answers
    (TEST-NET-1): signalling works, media never connects, as behind a blocking firewall."""

    async def _relay(self, sdp: str) -> dict[str, Any]:
        answer = await super()._relay(sdp)
        lines = []
        for line in answer["sdp"].split("\r\n"):
            if line.startswith("a=candidate:"):
                parts = line.split(" ")
                parts[4], parts[5] = "192.0.2.1", "9"  # connection-address, port
                line = " ".join(parts)
            lines.append(line)
        return {**answer, "sdp": "\r\n".join(lines)}


async def test_ice_that_never_connects_fails_in_bounded_time_with_advice(
    page: Page, page_url: str, local_server: LocalServer
) -> None:
    kernel = UnreachableMediaKernel(page, local_server.base_url, API_KEY)
    await kernel.attach()
    try:
        await page.goto(page_url)
        await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
        await page.evaluate("() => rtw.model.set('mode', 'relay')")
        started = time.monotonic()
        await kernel.deliver({"kind": "connect"})
        await page.wait_for_function(f"() => {CALL}.pc !== null", timeout=10_000)
        await keep_handles(page)
        handle = await page.wait_for_function(
            """() => rtw.sent.find((m) => m.kind === "status" && m.status === "error")""",
            timeout=30_000,  # the call's own limit is 15 s
        )
        failed = await handle.json_value()
        took = time.monotonic() - started
        assert failed["step"] == "ice" and "Check the network" in failed["error"]
        assert took < 25, took
        await page.locator("#view-1 .rtw-error", has_text="ICE").wait_for()
        await page.wait_for_function(RELEASED)
    finally:
        await kernel.close()
