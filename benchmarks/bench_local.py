"""The local server: connect time (offer → data channel open) and a data-channel round trip
of a small event, from an aiortc client and from Chromium on the plain page."""

from __future__ import annotations

import time
from typing import Any

from realtime_widget.local import LocalServer
from realtime_widget.local.client import RealtimeCall
from stats import summary

KEY = "sk-bench"
QUIET = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


async def aiortc_figures(server: LocalServer, connects: int, trips: int) -> dict[str, float]:
    connect_ms: list[float] = []
    rtt_ms: list[float] = []
    for i in range(connects):
        call = RealtimeCall(server.base_url, api_key=KEY, session=QUIET)
        await call.connect()
        connect_ms.append((call.timings["open"] - call.timings["offer"]) * 1000)
        if i == 0:
            await call.wait_for("session.created")
            for n in range(trips):
                t0 = time.perf_counter()
                call.send(
                    {
                        "type": "conversation.item.retrieve",
                        "item_id": "item_missing",
                        "event_id": f"evt_{n}",
                    }
                )
                await call.wait_for("error", count=n + 1)
                rtt_ms.append((time.perf_counter() - t0) * 1000)
        await call.close()
    return {**summary("connect.aiortc", connect_ms), **summary("rtt.aiortc", rtt_ms)}


async def chromium_figures(server: LocalServer, connects: int, trips: int) -> dict[str, float]:
    from playwright.async_api import async_playwright
    from tests.browser.page_server import PageServer
    from tests.conftest import CHROMIUM_FLAGS

    connect_ms: list[float] = []
    rtt_ms: list[float] = []
    with PageServer(server.base_url, KEY, QUIET) as page_server:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
            )
            context = await browser.new_context(permissions=["microphone"])
            for i in range(connects):
                page = await context.new_page()
                await page.goto(page_server.url)
                await page.evaluate("() => window.plain.connect()")
                t = await page.evaluate("() => window.plain.timings")
                connect_ms.append(t["open"] - t["offer"])
                if i == 0:
                    rtt_ms = await page.evaluate(
                        """async (n) => { const out = [];
                            for (let i = 0; i < n; i++) out.push(await window.plain.roundTrip());
                            return out; }""",
                        trips,
                    )
                await page.evaluate("() => window.plain.close()")
                await page.close()
            await browser.close()
    return {**summary("connect.chromium", connect_ms), **summary("rtt.chromium", rtt_ms)}


async def run(quick: bool) -> dict[str, Any]:
    connects, trips = (8, 50) if quick else (30, 300)
    with LocalServer() as server:
        figures = await aiortc_figures(server, connects, trips)
        figures |= await chromium_figures(server, connects, trips)
    return figures
