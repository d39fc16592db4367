"""Headless Chromium on a plain page following OpenAI's browser WebRTC flow, against the local
server: the flow the widget reproduces inside a notebook, and its benchmark baseline.

Loopback ICE needs ``--allow-loopback-in-peer-connection`` (see CHROMIUM_FLAGS): Chromium
leaves 127.0.0.1 out of its candidates, so on a host whose only interface is ``lo`` (tried in an
``unshare -n`` namespace) it gathers nothing and ICE stays ``new``. Chromium also hides host
candidates behind mDNS ``.local`` names; that alone does not stop loopback calls (the server
offers 127.0.0.1 and learns the browser's address from its checks), and
``--disable-features=WebRtcHideLocalIpsWithMdns`` turns it off anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page

from realtime_widget.local import LocalServer

from ..protocol import check_server_event
from .page_server import PageServer


@pytest.fixture(scope="module")
def page_server() -> Iterator[PageServer]:
    with (
        LocalServer() as realtime,
        PageServer(
            realtime.base_url,
            "sk-plain-page",
            {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        ) as page,
    ):
        yield page


@pytest_asyncio.fixture()
async def page(context: BrowserContext, page_server: PageServer) -> AsyncIterator[Page]:
    opened = await context.new_page()
    await opened.goto(page_server.url)
    yield opened
    await opened.evaluate("() => window.plain.close()")
    await opened.close()


async def test_the_plain_page_connects_exchanges_events_and_receives_audio(page: Page) -> None:
    await page.evaluate("() => window.plain.connect()")
    assert await page.evaluate("() => window.plain.status") == "connected"
    assert (await page.evaluate("() => window.plain.callId")).startswith("rtc_")
    await page.wait_for_function(
        "() => window.plain.events.some(e => e.type === 'session.created')"
    )
    reply = await page.evaluate(
        """async () => {
            const done = window.plain.next('output_audio_buffer.stopped');
            window.plain.send({type: 'conversation.item.create', item: {type: 'message',
                role: 'user', content: [{type: 'input_text', text: 'hello'}]}});
            window.plain.send({type: 'response.create'});
            await done;
            const kind = 'response.output_audio_transcript.delta';
            return window.plain.events.filter(e => e.type === kind).map(e => e.delta).join('');
        }"""
    )
    assert reply == "You said: hello"
    audio = await page.evaluate("() => window.plain.inboundAudio()")
    assert audio["packets"] > 50 and audio["energy"] > 0.001, audio
    events = await page.evaluate("() => window.plain.events.map(({__t, ...e}) => e)")
    for event in events:
        check_server_event(event)


async def test_a_data_channel_round_trip_is_fast(page: Page) -> None:
    await page.evaluate("() => window.plain.connect()")
    times = await page.evaluate(
        """async () => {
            const t = [];
            for (let i = 0; i < 20; i++) t.push(await window.plain.roundTrip());
            return t;
        }"""
    )
    assert sorted(times)[10] < 50, times  # median well under a frame on loopback
