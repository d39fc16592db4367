"""The local server as a workshop's practice server: how many calls one machine holds.

The server runs as a workshop would run it (``realtime-widget serve``, its own process, one
event loop), then again as ``serve --workers 2`` (a process per core behind one front:
``capacity.workers_2.*``). Chromium plays the room: one page, each
call its own peer connection with the fake microphone (the test tone: a second of 440 Hz every
five seconds, which the server's VAD takes for a turn and answers aloud), so audio flows both
ways in every call, as in a room of people talking. Calls are added in steps; after each step,
over a window of steady talk:

- ``cpu_cores``: the server's CPU (all its processes, ``/proc``), in cores;
- ``cpu_ms_per_call_s``: that per call-second, and ``calls_per_core`` from it;
- ``machine_busy``: how busy the whole machine was (the room shares it with the server);
- ``concealed_ratio``: of the audio the page played, the share its jitter buffer had to invent
  because a packet was late or lost (WebRTC's ``concealedSamples`` over ``totalSamplesReceived``,
  all calls, inbound-rtp): the continuity of what the page hears; 0 is none;
- ``replies``: answers the server spoke in the window (each call should get one per tone);
- ``connect_median_ms``: offer posted → data channel open, for the calls added at that step
  (``connect_failed``: those not up within 20 s); ``*_over_alone``: against the first step,
  one call alone, in the same run;
- ``rtt_median_ms``: an event's round trip on one call, loaded (the server's event loop lag;
  10,000 when one got no answer within 10 s).

The figure of merit, ``max_calls``, is the largest step up to which every step held: concealment
at most 1%, replies keeping up, events answered within 250 ms (median). A step whose window
failed is measured over a second window of the same calls (``second_window_*``) and counts if
that one held: one noisy window must not sink the figure. The room shares the machine's two
cores with the server, so past about 30 calls the page's own load shows in the concealment too
(compare ``machine_busy`` and the server's ``cpu_cores``). Servers listen on 127.0.0.1 and end
with the benchmark (and with its process: ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Page
from tests.conftest import write_speech_wav

from room import open_room
from server_process import cpu_seconds, serve
from stats import median

SETTINGS = {"capacity.window_s", "capacity.tone_period_s"}
WINDOW_S = 12.0
TONE_PERIOD_S = 5.0
CONTINUITY = 0.01  # at most 1% of the played audio concealed
RESPONSIVE_MS = 250  # an event answered within this (median)


def machine_times() -> tuple[float, float]:
    """The whole machine's busy and total CPU time so far (``/proc/stat``), in ticks."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


async def window(page: Page, process: subprocess.Popen[bytes]) -> dict[str, float]:
    """The calls held now, over a window of steady talk."""
    before, cpu0 = await page.evaluate("() => bench.stats()"), cpu_seconds(process.pid)
    busy0, total0 = machine_times()
    t0 = time.monotonic()
    await asyncio.sleep(WINDOW_S)
    after, cpu1 = await page.evaluate("() => bench.stats()"), cpu_seconds(process.pid)
    elapsed = time.monotonic() - t0
    busy1, total1 = machine_times()
    rtt: list[float] = await page.evaluate("(n) => bench.rtt(n)", 20) or [10_000.0]
    calls = float(after["open"])
    cores = (cpu1 - cpu0) / elapsed
    samples = after["samples"] - before["samples"]
    return {
        "calls": calls,
        "cpu_cores": cores,
        # The room (Chromium) shares the machine: how busy all of it was.
        "machine_busy": (busy1 - busy0) / max(total1 - total0, 1.0),
        "cpu_ms_per_call_s": cores * 1000 / calls,
        "calls_per_core": calls / cores if cores else 0.0,
        "concealed_ratio": (after["concealed"] - before["concealed"]) / max(samples, 1),
        "packets_lost": float(after["lost"] - before["lost"]),
        "replies": float(after["replies"] - before["replies"]),
        "replies_expected": calls * WINDOW_S / TONE_PERIOD_S,
        "rtt_median_ms": median(rtt),
    }


def window_held(result: dict[str, float], calls: int) -> bool:
    kept_up = result["replies"] >= 0.8 * result["replies_expected"]
    answers = result["rtt_median_ms"] < RESPONSIVE_MS
    return (
        result["calls"] == calls and result["concealed_ratio"] <= CONTINUITY and kept_up and answers
    )


async def step(page: Page, process: subprocess.Popen[bytes], add: int) -> dict[str, float]:
    added = await page.evaluate("(n) => bench.add(n)", add)
    connects: list[float] = added["times"] or [float("nan")]
    await asyncio.sleep(TONE_PERIOD_S)  # every new call past its first tone and reply
    return await window(page, process) | {
        "connect_median_ms": median(connects),
        "connect_failed": float(len(added["failed"])),
    }


async def ladder(steps: list[int], workers: int = 1) -> dict[str, float]:
    # One server process is the baseline; ``--workers 2`` (a process per core) is named so.
    prefix = "capacity" if workers == 1 else f"capacity.workers_{workers}"
    figures: dict[str, float] = {}
    best = previous = 0
    alone: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder, serve(workers) as (url, process):
        tone = write_speech_wav(Path(folder) / "tone.wav")
        async with open_room(url, microphone=tone) as page:
            held = 0
            for calls in steps:
                result = await step(page, process, calls - held)
                held = calls
                alone = alone or result  # the first step is one call alone: the baseline
                result["connect_over_alone"] = (
                    result["connect_median_ms"] / alone["connect_median_ms"]
                )
                result["cpu_per_call_over_alone"] = (
                    result["cpu_ms_per_call_s"] / alone["cpu_ms_per_call_s"]
                )
                name = f"{prefix}.calls_{calls}"
                for key, value in result.items():
                    if key != "calls":
                        figures[f"{name}.{key}"] = value
                ok = window_held(result, calls)
                if not ok and result["calls"] == calls:
                    # The room shares the machine: one noisy window must not sink a step that
                    # holds. The same calls, a second window; the step counts if that one held.
                    again = await window(page, process)
                    figures[f"{name}.second_window_concealed_ratio"] = again["concealed_ratio"]
                    figures[f"{name}.second_window_rtt_median_ms"] = again["rtt_median_ms"]
                    ok = window_held(again, calls)
                    figures[f"{name}.second_window_held"] = float(ok)
                if ok and best == previous:  # this step and every one before it held
                    best = calls
                previous = calls
                print(f"    calls={calls}: {result}", flush=True)
                if result["calls"] < calls:
                    break  # calls no longer come up: the server is past what it holds
    figures[f"{prefix}.max_calls"] = float(best)
    return figures


async def run(quick: bool) -> dict[str, float]:
    steps = [1, 10, 20] if quick else [1, 10, 20, 30, 40, 50]
    figures: dict[str, Any] = {
        "capacity.window_s": WINDOW_S,
        "capacity.tone_period_s": TONE_PERIOD_S,
    }
    figures |= await ladder(steps)
    figures |= await ladder(steps if quick else [1, 20, 30, 40, 50, 60], workers=2)
    return figures
