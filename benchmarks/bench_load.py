"""Load: many calls at once, and an hour of a session on each side of the comm.

- connect time (offer → data channel open, as bench_local measures it) of one call alone, and
  of each of ten calls connecting at once to the same local server; the alone baseline is
  measured in the same run. The server runs as ``realtime-widget serve`` runs it for a room, in
  its own process (in the benchmark's, its loop and the clients would share one interpreter lock
  and time each other's waits for it, not the server). The room is Chromium (``room.py``), as
  learners' browsers are; ``python_connect*`` is the same with the package's Python client;
- the kernel side of a one-hour voice session, time-compressed: about 12 server events a second
  for 3,600 s (43,200 events, the recorded turns of tests/data with fresh ids, their browser
  timestamps spread over the hour) through ``RealtimeWidget`` as the browser's bridge sends them.
  Process RSS (``/proc/self/statm``, one pass) and tracemalloc's current memory (another pass, so
  its own bookkeeping stays out of the RSS) after a collection at every 10 minutes; the figure is
  the growth from the 20- to the 60-minute mark per event;
- the page side of the same hour: the same events through the front end's ``call.record`` in the
  fake-model page (two views open, one on the event log), the JS heap after a forced collection
  (CDP ``HeapProfiler.collectGarbage``, then ``Performance.getMetrics``) at every 10 minutes. The
  log keeps 20,000 events, so past that the heap should barely grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from playwright.async_api import Page, async_playwright
from tests.conftest import CHROMIUM_FLAGS
from tests.frontend.page_server import serve_page
from tests.widget.browser import FakeBrowser
from tests.widget.synthetic import batches, synthetic_events

from realtime_widget import RealtimeWidget
from realtime_widget.local.client import RealtimeCall
from room import chromium_cpu_seconds, open_room
from server_process import KEY, calls_held, cpu_seconds, serve
from stats import median, p95

# Figures that are inputs or follow from them (a rate a timer sets, a ring size): settings.
SETTINGS = {
    "load.hour.events",
    "load.hour.kernel_items_at_60min",
    "load.hour.page_log_records_at_60min",
}

QUIET = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
CONCURRENT = 10

HOUR_S = 3600
EVENTS_PER_S = 12  # a voice session: transcript deltas, buffer and item events, rate limits
MARK_MIN = 10  # memory is read every 10 minutes of session time
EVENTS_PER_MIN = EVENTS_PER_S * 60
HOUR_EVENTS = HOUR_S * EVENTS_PER_S

CALL = "[...window.__rtw_calls][0]"


# --- (a) connect time, alone and ten at once -----------------------------------------------------


async def _connect(url: str) -> tuple[RealtimeCall, dict[str, float]]:
    """One call up to session.created; its offer → open and whole connect() times (ms)."""
    call = RealtimeCall(url + "/v1", api_key=KEY, session=QUIET)
    await call.connect(timeout=30)
    await call.wait_for("session.created", timeout=30)
    t = call.timings
    return call, {"open": (t["open"] - t["offer"]) * 1000, "whole": (t["open"] - t["start"]) * 1000}


async def _drained(url: str, timeout: float = 15) -> None:
    """Wait until the server holds no call: each measurement starts from an idle server."""
    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(calls_held, url):
        if time.monotonic() > deadline:
            raise TimeoutError("the server kept calls after every client hung up")
        await asyncio.sleep(0.02)  # polled: the server is another process


def _compare(name: str, alone: list[float], ten: list[float]) -> dict[str, float]:
    return {
        f"load.{name}_alone.median_ms": median(alone),
        f"load.{name}_alone.p95_ms": p95(alone),
        f"load.{name}_ten.median_ms": median(ten),
        f"load.{name}_ten.p95_ms": p95(ten),
        f"load.{name}_ten.max_ms": max(ten),
        f"load.{name}_ten.median_over_alone": median(ten) / median(alone),
        f"load.{name}_ten.p95_over_alone": p95(ten) / p95(alone),
    }


class _CpuPerCall:
    """CPU the server and the clients spent while calls connected, per call (ms): on a 2-core
    machine that runs both, what bounds ten connects at once (the clients, here)."""

    def __init__(self, server_pid: int, clients: Callable[[], float]) -> None:
        self._server_pid, self._clients = server_pid, clients
        self.server = self.clients = 0.0
        self.calls = 0

    @contextlib.contextmanager
    def measure(self, calls: int) -> Iterator[None]:
        server, clients = cpu_seconds(self._server_pid), self._clients()
        yield
        self.server += cpu_seconds(self._server_pid) - server
        self.clients += self._clients() - clients
        self.calls += calls

    def figures(self, name: str) -> dict[str, float]:
        return {
            f"load.{name}_ten.server_cpu_ms_per_call": self.server * 1000 / self.calls,
            f"load.{name}_ten.clients_cpu_ms_per_call": self.clients * 1000 / self.calls,
        }


async def _room_connects(url: str, pid: int, alone_runs: int, rounds: int) -> dict[str, float]:
    """Chromium as the room (each learner's browser in one page): offer → data channel open."""
    cpu = _CpuPerCall(pid, chromium_cpu_seconds)

    async def add(page: Page, count: int) -> list[float]:
        with cpu.measure(count) if count == CONCURRENT else contextlib.nullcontext():
            added = await page.evaluate("(n) => bench.add(n)", count)
        if added["failed"]:
            raise RuntimeError(f"calls did not come up: {added['failed']}")
        times: list[float] = added["times"]
        await page.evaluate("() => bench.close()")
        await _drained(url)
        return times

    alone: list[float] = []
    ten: list[float] = []
    async with open_room(url) as page:
        await add(page, 1)  # warm-up: the page's microphone, the server's first call
        for _ in range(alone_runs):
            alone += await add(page, 1)
        for _ in range(rounds):
            ten += await add(page, CONCURRENT)
    return (
        {"load.connect_alone.runs": float(len(alone)), "load.connect_ten.runs": float(len(ten))}
        | _compare("connect", alone, ten)
        | cpu.figures("connect")
    )


async def _python_connects(url: str, pid: int, alone_runs: int, rounds: int) -> dict[str, float]:
    """The package's Python client as the room: ``python_connect`` is offer → open,
    ``python_connect_whole`` the whole ``connect()`` (with the mint, and for ten at once the
    wait for the others' offers). Ten aiortc clients in one process cost more CPU than the
    server does: a figure for scripted runs more than for the server."""
    cpu = _CpuPerCall(pid, time.process_time)
    alone: list[dict[str, float]] = []
    ten: list[dict[str, float]] = []
    call, _ = await _connect(url)  # warm-up: imports, codecs, the first ICE agent
    await call.close()
    await _drained(url)
    for _ in range(alone_runs):
        call, times = await _connect(url)
        alone.append(times)
        await call.close()
        await _drained(url)
    for _ in range(rounds):
        with cpu.measure(CONCURRENT):
            pairs = await asyncio.gather(*(_connect(url) for _ in range(CONCURRENT)))
        ten.extend(times for _, times in pairs)
        if len({c.call_id for c, _ in pairs}) != CONCURRENT:
            raise RuntimeError("concurrent calls shared a call id")
        await asyncio.gather(*(c.close() for c, _ in pairs))
        await _drained(url)
    figures = cpu.figures("python_connect")
    for name, key in (("python_connect", "open"), ("python_connect_whole", "whole")):
        figures |= _compare(name, [t[key] for t in alone], [t[key] for t in ten])
    return figures


async def connect_figures(alone_runs: int, rounds: int) -> dict[str, float]:
    """Ten calls connecting at once to one server process, against one alone, same run."""
    with serve() as (url, process):
        figures = await _room_connects(url, process.pid, alone_runs, rounds)
        figures |= await _python_connects(url, process.pid, alone_runs, rounds)
    return figures


# --- (b) an hour through the kernel side ---------------------------------------------------------


def _hour_of_messages() -> list[dict[str, Any]]:
    """The hour's events in bridge batches, their browser clocks spread over the past hour."""
    messages = batches(list(synthetic_events(HOUR_EVENTS)))
    start = time.time() * 1000 - HOUR_S * 1000
    n = 0
    for message in messages:
        for entry in message["events"]:
            entry["t"] = start + n * 1000 / EVENTS_PER_S
            n += 1
    return messages


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _kernel_pass(messages: list[dict[str, Any]], measure: Any) -> dict[int, tuple[float, int]]:
    """Post the hour; at every mark, (``measure()`` after a collection, conversation items)."""
    widget = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", call_id="rtc_bench_hour")
    # What the kernel sends goes to a real front end and is gone; the fake must not hoard it.
    widget.comm.send = lambda *args, **kwargs: None  # type: ignore[method-assign]
    marks: dict[int, tuple[float, int]] = {}
    gc.collect()
    marks[0] = (measure(), len(widget.conversation.items))
    received = 0
    next_mark = MARK_MIN
    for content in messages:
        browser.post(content)
        received += len(content["events"])
        if received >= next_mark * EVENTS_PER_MIN:
            gc.collect()
            marks[next_mark] = (measure(), len(widget.conversation.items))
            next_mark += MARK_MIN
    widget.close()
    return marks


def kernel_hour_figures() -> dict[str, float]:
    messages = _hour_of_messages()
    figures: dict[str, float] = {"load.hour.events": float(HOUR_EVENTS)}
    started = time.perf_counter()
    rss = _kernel_pass(messages, _rss_bytes)
    figures["load.hour.kernel_seconds"] = time.perf_counter() - started
    tracemalloc.start()
    traced = _kernel_pass(messages, lambda: tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    span = (60 - 20) * EVENTS_PER_MIN
    for minute in (10, 20, 30, 40, 50, 60):
        figures[f"load.hour.kernel_rss_mib_at_{minute}min"] = rss[minute][0] / 2**20
        figures[f"load.hour.kernel_traced_mib_at_{minute}min"] = (
            traced[minute][0] - traced[0][0]
        ) / 2**20
    figures["load.hour.kernel_items_at_60min"] = float(traced[60][1])
    figures["load.hour.kernel_rss_growth_20_to_60min_bytes_per_event"] = (
        rss[60][0] - rss[20][0]
    ) / span
    figures["load.hour.kernel_traced_growth_20_to_60min_bytes_per_event"] = (
        traced[60][0] - traced[20][0]
    ) / span
    return figures


# --- (c) an hour through the page ----------------------------------------------------------------

# One minute of events through the call's real path (recorded, batched to the "kernel", folded
# into the log and the transcript), then a rendered frame, so the views keep up as they would.
RECORD = """async (events) => {
  const call = __CALL__;
  for (const event of events) call.record("in", event);
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return call.log.records;
}""".replace("__CALL__", CALL)

# The views' work in the frame after one more transcript delta: a frame callback queued before
# the delta runs before the views draw, one queued after it runs after they have drawn.
DRAW = """async () => {
  const call = __CALL__;
  const ms = [];
  for (let i = 0; i < 9; i++) {
    const item = call.transcript.list.at(-1)?.id ?? "item_none";
    const done = new Promise((resolve) => {
      let before = 0;
      requestAnimationFrame(() => { before = performance.now(); });
      call.record("in", { type: "response.output_audio_transcript.delta", item_id: item,
                          response_id: "resp_draw", output_index: 0, content_index: 0,
                          delta: ".", event_id: "event_draw" + i });
      requestAnimationFrame(() => resolve(performance.now() - before));
    });
    ms.push(await done);
  }
  ms.sort((a, b) => a - b);
  return { ms: ms[4], turns: call.transcript.list.length,
           shown: document.querySelectorAll(".rtw-turn").length };
}""".replace("__CALL__", CALL)


async def page_hour_figures() -> dict[str, float]:
    events = list(synthetic_events(HOUR_EVENTS))
    runner, url = await serve_page()
    heap: dict[int, float] = {}
    nodes: dict[int, float] = {}
    held: dict[int, int] = {}
    draws: dict[int, dict[str, float]] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS
            )
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(url)
            await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
            # The fake model keeps every message it is sent (for tests); a comm sends and forgets.
            await page.evaluate(
                "() => { window.rtw.model.send = (m) => { JSON.stringify(m); }; "
                "window.rtw.sent.length = 0; }"
            )
            await page.locator("#view-1 .rtw-tab[data-tab='log']").click()
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("Performance.enable")

            async def measure(minute: int) -> None:
                draws[minute] = await page.evaluate(DRAW)
                for _ in range(2):  # a second pass frees what the first one's finalizers left
                    await cdp.send("HeapProfiler.collectGarbage")
                metrics = await cdp.send("Performance.getMetrics")
                values = {m["name"]: m["value"] for m in metrics["metrics"]}
                heap[minute] = values["JSHeapUsedSize"]
                nodes[minute] = values["Nodes"]

            await measure(0)
            for minute in range(1, HOUR_S // 60 + 1):
                chunk = events[(minute - 1) * EVENTS_PER_MIN : minute * EVENTS_PER_MIN]
                held[minute] = await page.evaluate(RECORD, chunk)
                if minute % MARK_MIN == 0:
                    await measure(minute)
            await browser.close()
            if errors:
                raise RuntimeError(f"errors in the page: {errors}")
    finally:
        await runner.cleanup()
    span = (60 - 20) * EVENTS_PER_MIN
    figures: dict[str, float] = {}
    for minute in (0, 10, 20, 30, 40, 50, 60):
        figures[f"load.hour.page_heap_mib_at_{minute}min"] = heap[minute] / 2**20
    figures["load.hour.page_heap_growth_20_to_60min_bytes_per_event"] = (heap[60] - heap[20]) / span
    figures["load.hour.page_dom_nodes_at_20min"] = nodes[20]
    figures["load.hour.page_dom_nodes_at_60min"] = nodes[60]
    figures["load.hour.page_log_records_at_60min"] = float(held[60])
    for minute in (20, 60):
        figures[f"load.hour.page_transcript_turns_at_{minute}min"] = draws[minute]["turns"]
        figures[f"load.hour.page_turn_elements_at_{minute}min"] = draws[minute]["shown"]
        figures[f"load.hour.page_draw_ms_after_a_delta_at_{minute}min"] = draws[minute]["ms"]
    return figures


def run(quick: bool) -> dict[str, float]:
    alone_runs, rounds = (8, 2) if quick else (30, 6)
    figures = kernel_hour_figures()  # first: the process's memory is least disturbed here
    figures |= asyncio.run(connect_figures(alone_runs, rounds))
    figures |= asyncio.run(page_hour_figures())
    return figures


if __name__ == "__main__":
    for name, value in run(quick=True).items():
        print(f"{name} = {value:.3f}")
