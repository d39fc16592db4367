"""The workbench: 20 runs at concurrency 4 against the local server, an Experiment against bare
SDK WebSocket sessions doing the same turns, in the same run.

The baseline is what anyone would write by hand with the official client: open
``client.realtime.connect(model=...)``, send the session's config, and for each turn a
``conversation.item.create`` and ``response.create``, then wait for ``response.done`` (reading
raw JSON, not the SDK's typed models, which cost more than everything the Session does). The
experiment does the same turns through a Session (validation, the conversation, metrics, the
event log, checks) and a SocketTransport; the ratio is what all that costs per run.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from realtime_widget import Experiment, Scenario, check
from realtime_widget.local import LocalServer
from stats import median, p95

KEY = "sk-bench"
TURNS = ["hello", "how are you", "tell me more"]
SETTINGS = {"workbench.runs", "workbench.concurrency", "workbench.turns_per_run"}


async def bare_session(base_url: str) -> float:
    """One run by hand with the openai client; its wall time in ms."""
    from openai import AsyncOpenAI

    started = time.perf_counter()
    client = AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    async with client.realtime.connect(model="gpt-realtime-2") as connection:
        await connection.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
        for text in TURNS:
            await connection.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": text}],
                    },
                }
            )
            await connection.send({"type": "response.create"})
            while True:  # raw JSON, not the SDK's typed models: the cheapest way it offers
                event: Any = json.loads(await connection.recv_bytes())
                if event.get("type") == "response.done":
                    break
    return (time.perf_counter() - started) * 1000


async def bare(base_url: str, runs: int, concurrency: int) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> float:
        async with gate:
            return await bare_session(base_url)

    started = time.perf_counter()
    times = await asyncio.gather(*(one() for _ in range(runs)))
    return (time.perf_counter() - started) * 1000, list(times)


async def experiment(base_url: str, runs: int, concurrency: int) -> tuple[float, list[float]]:
    exp = Experiment(
        variants={"a": {}, "b": {"instructions": "Be warm."}},
        scenarios=[Scenario("chat", TURNS, expect=[check.contains("you said")])],
        repeats=runs // 2,
        endpoint=base_url,
        api_key=KEY,
    )
    started = time.perf_counter()
    results = await exp.run(concurrency=concurrency, progress=False)
    wall = (time.perf_counter() - started) * 1000
    failed = [r.error or r.checks for r in results if not r.passed]
    if failed:
        raise RuntimeError(f"benchmark runs failed: {failed[:3]}")
    return wall, [r.duration_ms for r in results]


async def run(quick: bool) -> dict[str, float]:
    runs, concurrency = 20, 4
    rounds = 2 if quick else 5
    bare_walls: list[float] = []
    exp_walls: list[float] = []
    bare_runs: list[float] = []
    exp_runs: list[float] = []
    with LocalServer(api_key=KEY) as server:
        await bare(server.base_url, 4, 4)  # warm both paths: imports, the server's first call
        await experiment(server.base_url, 4, 4)
        for _ in range(rounds):  # alternating, so a slow moment falls on both alike
            wall, times = await bare(server.base_url, runs, concurrency)
            bare_walls.append(wall)
            bare_runs += times
            wall, times = await experiment(server.base_url, runs, concurrency)
            exp_walls.append(wall)
            exp_runs += times
    return {
        "workbench.runs": float(runs),
        "workbench.concurrency": float(concurrency),
        "workbench.turns_per_run": float(len(TURNS)),
        "workbench.experiment_wall_ms_median": median(exp_walls),
        "workbench.bare_sdk_wall_ms_median": median(bare_walls),
        "workbench.experiment_over_bare_wall": median(exp_walls) / median(bare_walls),
        "workbench.experiment_run_ms_median": median(exp_runs),
        "workbench.experiment_run_ms_p95": p95(exp_runs),
        "workbench.bare_sdk_run_ms_median": median(bare_runs),
        "workbench.bare_sdk_run_ms_p95": p95(bare_runs),
        "workbench.overhead_ms_per_run": median(exp_runs) - median(bare_runs),
        "workbench.experiment_over_bare_run": median(exp_runs) / median(bare_runs),
    }
