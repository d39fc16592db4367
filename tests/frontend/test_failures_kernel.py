"""Failures of a live call, with a real ``RealtimeWidget`` as the kernel and the local server as
the provider. After each: the kernel's ``status`` and ``error`` say what happened and what to do,
the page's status line says the same, the microphone is released, no peer connection is left
open, the call is over on the server, and the conversation the kernel held is still there."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from realtime_widget import RealtimeWidget, events
from realtime_widget.events import InvalidEventError
from realtime_widget.local import LocalServer
from realtime_widget.providers import openai as auth

from .helpers import CALL
from .kernel import API_KEY
from .real_kernel import Open, RealKernel

pytestmark = pytest.mark.e2e

RELEASED = f"""() => rtw.track?.readyState === "ended" && rtw.pc?.connectionState === "closed"
                 && {CALL}.micTrack === null && {CALL}.pc === null
                 && document.querySelectorAll("audio[data-rtw]").length === 0"""


async def connected(widget: RealtimeWidget, kernel: RealKernel, page: Page) -> str:
    """Connect, hold on to the call's microphone track and peer connection, say one turn."""
    widget.connect()
    await kernel.wait(lambda: widget.status == "connected")
    await page.evaluate(f"() => {{ rtw.track = {CALL}.micTrack; rtw.pc = {CALL}.pc; }}")
    assert await page.evaluate("() => rtw.track?.readyState") == "live"
    widget.say("before the failure")
    await kernel.wait(lambda: len(widget.events.filter("response.done")) == 1)
    return widget.call_id


async def ended(
    widget: RealtimeWidget, page: Page, server: LocalServer, call_id: str, status: str, says: str
) -> None:
    """The failure is stated everywhere and nothing of the call is left."""
    with contextlib.suppress(TimeoutError):
        await RealKernel.until(lambda: widget.status == status)
    assert widget.status == status, (widget.status, widget.error)
    assert says in widget.error, widget.error
    await page.locator("#view-1 .rtw-error", has_text=says).wait_for(timeout=15_000)
    await page.wait_for_function(RELEASED, timeout=15_000)
    assert call_id not in server.realtime.calls
    texts = [t.text for t in widget.transcript]
    assert texts[:2] == ["before the failure", "You said: before the failure"]


async def test_a_server_hangup_ends_the_call_with_a_reason(
    open_page: Open, page: Page, local_server: LocalServer
) -> None:
    widget, kernel = await open_page(endpoint=local_server.base_url)
    call_id = await connected(widget, kernel, page)
    async with httpx.AsyncClient() as http:  # the provider ends the call (a cap, an operator)
        res = await http.post(
            f"{local_server.base_url}/realtime/calls/{call_id}/hangup",
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert res.status_code == 200
    await ended(widget, page, local_server, call_id, "closed", "the server closed the data channel")
    assert "hang-up" in widget.error


async def test_the_data_channel_dropping_mid_session_ends_the_call_with_a_reason(
    open_page: Open, page: Page, local_server: LocalServer
) -> None:
    widget, kernel = await open_page(endpoint=local_server.base_url)
    call_id = await connected(widget, kernel, page)
    asyncio.run_coroutine_threadsafe(
        local_server.realtime.drop_channel(call_id), local_server.loop
    ).result(10)
    await ended(widget, page, local_server, call_id, "closed", "closed the data channel")
    assert "dropped connection" in widget.error


@pytest.fixture(scope="module")
def short_server() -> Iterator[LocalServer]:
    with LocalServer(port=0, max_session_s=6) as server:
        yield server


async def test_the_session_time_cap_says_reconnect_continues(
    open_page: Open, page: Page, short_server: LocalServer
) -> None:
    widget, kernel = await open_page(endpoint=short_server.base_url)
    call_id = await connected(widget, kernel, page)
    await kernel.wait(lambda: bool(widget.events.filter("error")), timeout=15)
    assert widget.events.filter("error")[0].event["error"]["code"] == "session_expired"
    await ended(widget, page, short_server, call_id, "closed", "time limit (session_expired)")
    assert "w.reconnect()" in widget.error
    # reconnect() does continue it: a new call, the conversation replayed into it.
    widget.reconnect()

    def replayed() -> bool:
        said = [
            r
            for r in widget.events.filter("conversation.item.added", direction="in")
            if {"type": "input_text", "text": "before the failure"}
            in r.event.get("item", {}).get("content", [])
        ]
        return len(said) == 2  # once in the first call, once replayed into the second

    await kernel.wait(lambda: widget.call_id not in ("", call_id) and replayed())


async def test_a_refused_offer_in_relay_mode_is_an_sdp_error_that_says_what_to_do(
    open_page: Open, page: Page
) -> None:
    with LocalServer(port=0, api_key="sk-the-right-one") as guarded:
        widget, kernel = await open_page(endpoint=guarded.base_url, mode="relay")
        widget.connect()
        await kernel.wait(lambda: widget.status == "error")
    assert widget.error.startswith("[sdp]") and "401" in widget.error
    assert "OPENAI_API_KEY" in widget.error  # what to do
    await page.locator("#view-1 .rtw-error", has_text="401").wait_for()
    await page.wait_for_function(f"() => {CALL}.micTrack === null && {CALL}.pc === null")
    assert await page.locator("audio[data-rtw]").count() == 0
    assert API_KEY not in await page.content()


async def test_an_expired_client_secret_is_an_sdp_error_that_says_connect_again(
    open_page: Open, page: Page, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mint = auth.mint_client_secret

    async def mint_then_expire(*args: Any, **kwargs: Any) -> auth.ClientSecret:
        # The secret expires between the mint and the offer (a long microphone prompt, a
        # skewed clock): the provider refuses the offer with 401.
        secret = await mint(*args, **kwargs)
        local_server.realtime.secrets[secret.value].expires_at = 0
        return secret

    monkeypatch.setattr(auth, "mint_client_secret", mint_then_expire)
    widget, kernel = await open_page(endpoint=local_server.base_url)
    widget.connect()
    await kernel.wait(lambda: widget.status == "error")
    assert widget.error.startswith("[sdp]") and "(401)" in widget.error
    assert "unknown or has expired" in widget.error and "Connect again" in widget.error
    await page.locator("#view-2 .rtw-error", has_text="Connect again").wait_for()
    await page.wait_for_function(f"() => {CALL}.micTrack === null && {CALL}.pc === null")
    assert await page.locator("audio[data-rtw]").count() == 0


async def test_closing_the_widget_mid_call_ends_it_everywhere(
    open_page: Open, page: Page, local_server: LocalServer
) -> None:
    widget, kernel = await open_page(endpoint=local_server.base_url)
    call_id = await connected(widget, kernel, page)
    widget.close()
    assert widget.status == "closed" and widget.error == "The widget was closed."
    await page.wait_for_function("() => rtw.closed === true")
    await page.wait_for_function(
        """() => rtw.track.readyState === "ended" && rtw.pc.connectionState === "closed"
                 && window.__rtw_calls.size === 0"""
    )
    assert await page.locator(".rtw-root").count() == 0
    assert await page.locator("audio[data-rtw]").count() == 0
    await kernel.wait(lambda: call_id not in local_server.realtime.calls)
    assert next(t.text for t in widget.transcript) == "before the failure"


def unreachable_candidates(answer: str) -> str:
    """The answer with its ICE candidates pointed at TEST-NET-1, where nobody answers:
    signalling works, media never connects (a blocking firewall)."""
    lines = []
    for line in answer.split("\r\n"):
        if line.startswith("a=candidate:"):
            parts = line.split(" ")
            parts[4], parts[5] = "192.0.2.1", "9"  # connection-address, port
            line = " ".join(parts)
        lines.append(line)
    return "\r\n".join(lines)


async def test_ice_that_never_connects_fails_in_bounded_time_with_advice(
    open_page: Open, page: Page, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = auth.relay_offer

    async def relay_unreachable(*args: Any, **kwargs: Any) -> tuple[str, str]:
        answer, call_id = await relay(*args, **kwargs)
        return unreachable_candidates(answer), call_id

    monkeypatch.setattr(auth, "relay_offer", relay_unreachable)
    widget, kernel = await open_page(endpoint=local_server.base_url, mode="relay")
    started = time.monotonic()
    widget.connect()
    await page.wait_for_function(f"() => {CALL}.pc !== null", timeout=10_000)
    await page.evaluate(f"() => {{ rtw.track = {CALL}.micTrack; rtw.pc = {CALL}.pc; }}")
    await kernel.wait(lambda: widget.status == "error", timeout=30)  # the call's limit: 15 s
    took = time.monotonic() - started
    assert widget.error.startswith("[ice]") and "Check the network" in widget.error
    assert took < 25, took
    await page.locator("#view-1 .rtw-error", has_text="ICE").wait_for()
    await page.wait_for_function(
        """() => rtw.track.readyState === "ended" && rtw.pc.connectionState === "closed" """
    )
    # The server gave up on the call too (its peer never came): the kernel hangs it up if not.
    await kernel.wait(lambda: widget.call_id not in local_server.realtime.calls, timeout=30)


async def test_an_event_too_big_for_the_data_channel_is_refused_in_python_naming_the_field(
    open_page: Open, page: Page, local_server: LocalServer
) -> None:
    widget, kernel = await open_page(endpoint=local_server.base_url)
    await connected(widget, kernel, page)
    # The page told the kernel its call's limit (Chromium: 256 KiB).
    limit = await page.evaluate(f"() => {CALL}.pc.sctp.maxMessageSize")
    assert widget._browser.max_message_bytes == limit
    with pytest.raises(InvalidEventError, match=r"'item\.content\[0\]\.text' \(300,002 bytes\)"):
        widget.say("x" * 300_000)
    assert widget.status == "connected"
    # One that got past the kernel anyway is skipped in the page, and the rest still go.
    too_big = {**events.user_text("x" * 300_000), "event_id": "evt_too_big"}
    after = {"type": "response.create", "event_id": "evt_after"}
    await page.evaluate("(events) => rtw.deliver({kind: 'send', events})", [too_big, after])
    await kernel.wait(lambda: bool(widget.events.filter("response.done")[1:]))
    sent = [r.event.get("event_id") for r in widget.events.filter(direction="out")]
    assert "evt_after" in sent and "evt_too_big" not in sent
    assert widget.status == "connected"


async def test_a_network_drop_mid_call_ends_it_in_bounded_time_and_the_kernel_hangs_up(
    open_page: Open, page: Page, local_server: LocalServer
) -> None:
    widget, kernel = await open_page(endpoint=local_server.base_url)
    call_id = await connected(widget, kernel, page)
    started = time.monotonic()
    # The server goes silent without a word (no DTLS or SCTP close): a dropped network.
    asyncio.run_coroutine_threadsafe(
        local_server.realtime.go_silent(call_id), local_server.loop
    ).result(10)
    await kernel.wait(lambda: widget.status == "closed", timeout=30)
    took = time.monotonic() - started
    assert 8 < took < 20, took  # Chromium notices at ~5 s; then 8 s of grace
    # The provider never heard the call end: the kernel hung it up there.
    await ended(
        widget, page, local_server, call_id, "closed", "The connection to the server dropped"
    )
    assert "w.reconnect()" in widget.error
