"""Experiments: variants of a session × scenarios of turns, each run a session of its own,
straight from the kernel to the provider over the Realtime WebSocket (no page, no browser), so
they run wherever Python runs: a notebook, nbclient or papermill, pytest, CI.

>>> exp = Experiment(                                                    # doctest: +SKIP
...     variants={"terse": {"instructions": "Be brief."}, "warm": {"voice": "marin"}},
...     scenarios=[Scenario("greeting", ["Hi there"], expect=[check.contains("hello")])],
...     endpoint="local", repeats=3, max_cost=2.00,
... )
>>> results = await exp.run(concurrency=4)                               # doctest: +SKIP
>>> results.compare()                                                    # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Endpoint, build_session, resolve_endpoint
from ..redact import redact
from ..session.core import Session
from ..session.metrics import Prices
from ..session.tools import Tool
from ..transports.websocket import SocketTransport
from .audio import is_audio_path, pcm16
from .checks import Check, as_check
from .results import Results, Run

# What a variant may set besides the session's own fields (which go through as they are).
_KWARGS = ("model", "instructions", "voice", "output_modalities", "turn_detection", "transcription")
Turn = Any  # text, an audio file's path, or (samples, rate)


@dataclass(frozen=True)
class Case:
    """One run of an experiment's plan, named for a test id: ``variant/scenario#repeat``."""

    variant: str
    scenario: str
    repeat: int = 0

    def __str__(self) -> str:
        return f"{self.variant}/{self.scenario}#{self.repeat}"


@dataclass
class Scenario:
    """A situation to try: its user turns in order (text, or recorded speech: an audio file's
    path or ``(samples, rate)``), and what each run of it is expected to show."""

    name: str
    turns: Sequence[Turn]
    expect: Sequence[Check | Callable[[Run], Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.turns, str):
            self.turns = [self.turns]  # one turn, not one turn per character
        if not self.turns:
            raise ValueError(f"Scenario {self.name!r} has no turns.")
        for turn in self.turns:
            if is_audio_path(turn) and not Path(turn).expanduser().exists():
                raise FileNotFoundError(f"Scenario {self.name!r}: no audio file at {turn}.")
        self.checks = [as_check(e) for e in self.expect]


class Experiment:
    """Every variant on every scenario, ``repeats`` times; see the module docstring.

    A variant is a dict of session settings: ``model``, ``instructions``, ``voice``,
    ``output_modalities``, ``turn_detection``, ``transcription``, ``tools`` (its own list), or
    any other field of the session config (``reasoning``, ``max_output_tokens``, ...). Keyword
    arguments are the defaults every variant starts from. Each is checked when the experiment
    is made, so a typo fails here, naming the variant, not in every run.

    ``max_cost`` (USD) caps the whole experiment: once spent, the runs not yet started are
    recorded as not run, with why. A run that fails is recorded with its error; the rest go on.
    """

    def __init__(
        self,
        variants: dict[str, dict[str, Any]],
        scenarios: Sequence[Scenario],
        *,
        tools: list[Callable[..., Any] | Tool | dict[str, Any]] | None = None,
        repeats: int = 1,
        max_cost: float | None = None,
        endpoint: str | Endpoint | None = None,
        api_key: str | None = None,
        azure_resource: str | None = None,
        prices: dict[str, Prices] | None = None,
        turn_timeout: float = 60.0,
        **defaults: Any,
    ) -> None:
        if not variants:
            raise ValueError("An experiment needs at least one variant: {'name': {...}}.")
        if not scenarios:
            raise ValueError("An experiment needs at least one Scenario.")
        names = [s.name for s in scenarios]
        if len(set(names)) != len(names):
            raise ValueError(f"Scenario names must differ: {names}.")
        if repeats < 1:
            raise ValueError(f"repeats is 1 or more, not {repeats}.")
        if max_cost is not None and max_cost < 0:
            raise ValueError(f"max_cost is a positive amount in USD, not {max_cost}.")
        self.endpoint = resolve_endpoint(endpoint, api_key=api_key, azure_resource=azure_resource)
        self.scenarios = list(scenarios)
        self.repeats = repeats
        self.max_cost = max_cost
        self.prices = prices
        self.turn_timeout = turn_timeout
        self.tools = tools
        # Scripted turns: the server's VAD would cut recorded speech into turns of its own.
        defaults.setdefault("turn_detection", None)
        self.variants: dict[str, tuple[dict[str, Any], Any]] = {}
        for name, settings in variants.items():
            merged = {**defaults, **settings}
            variant_tools = merged.pop("tools", tools)
            kwargs = {k: merged.pop(k) for k in _KWARGS if k in merged}
            extra = {**merged.pop("session", {}), **merged}
            try:
                config = build_session(**kwargs, extra=extra or None)
            except ValueError as exc:
                raise type(exc)(f"Variant {name!r}: {exc}") from None
            self.variants[name] = (config, variant_tools)
        self._spent = 0.0

    def cases(self) -> list[Case]:
        """The runs as pytest cases: a prompt regression suite in a repository.

        >>> @pytest.mark.parametrize("case", exp.cases(), ids=str)   # doctest: +SKIP
        ... async def test_prompts(case):
        ...     (await exp.run_case(case)).assert_passed()
        """
        return [Case(variant, scenario.name, repeat) for variant, scenario, repeat in self.plan()]

    async def run_case(self, case: Case) -> Run:
        """One run of the plan, on its own (a pytest case); the cost cap counts across cases."""
        scenario = next((s for s in self.scenarios if s.name == case.scenario), None)
        if scenario is None or case.variant not in self.variants:
            raise KeyError(f"{case} is not a case of this experiment: see exp.cases().")
        run = await self._run_one(case.variant, scenario, case.repeat)
        self._spent += run.cost
        return run

    def plan(self) -> list[tuple[str, Scenario, int]]:
        """The runs, in order: every variant × scenario × repeat."""
        return [
            (variant, scenario, repeat)
            for variant in self.variants
            for scenario in self.scenarios
            for repeat in range(self.repeats)
        ]

    async def run(self, concurrency: int = 4, progress: bool = True) -> Results:
        """Run everything, at most ``concurrency`` sessions at once; the results come in plan
        order whatever order the runs finish in."""
        if concurrency < 1:
            raise ValueError(f"concurrency is 1 or more, not {concurrency}.")
        plan = self.plan()
        gate = asyncio.Semaphore(concurrency)
        bar = _Progress(len(plan)) if progress else None
        self._spent = 0.0

        async def one(variant: str, scenario: Scenario, repeat: int) -> Run:
            async with gate:
                run = await self._run_one(variant, scenario, repeat)
            self._spent += run.cost
            if bar is not None:
                bar.step(run)
            return run

        runs = await asyncio.gather(*(one(*entry) for entry in plan))
        if bar is not None:
            bar.close()
        return Results(list(runs))

    async def _run_one(self, variant: str, scenario: Scenario, repeat: int) -> Run:
        config, tools = self.variants[variant]
        run = Run(variant, scenario.name, repeat, config=json.loads(json.dumps(config)))
        if self.max_cost is not None and self._spent >= self.max_cost:
            run.error = (
                f"Not run: the experiment's max_cost (${self.max_cost:g}) was spent "
                f"(${self._spent:.4f}). Raise max_cost to run it."
            )
            return run
        session = Session(
            config, endpoint=self.endpoint, tools=tools, prices=self.prices, log_size=100_000
        )
        session.attach(SocketTransport(session))
        started = time.monotonic()
        try:
            ready = session.wait_for("session.updated", timeout=self.turn_timeout)
            session.connect()
            await ready
            for turn in scenario.turns:
                if isinstance(turn, tuple) or is_audio_path(turn):
                    reply = await session.ask(audio=pcm16(turn), timeout=self.turn_timeout)
                else:
                    reply = await session.ask(str(turn), timeout=self.turn_timeout)
                run.replies.append(str(reply))
                run.interrupted.append(reply.interrupted)
        except Exception as exc:  # the run fails with why; the experiment goes on
            run.error = redact(f"{type(exc).__name__}: {exc}")
        finally:
            await _hang_up(session)
        run.duration_ms = (time.monotonic() - started) * 1000
        _fill(run, session)
        if not run.error:
            run.checks = {check.name: check(run) for check in scenario.checks}
        return run


async def _hang_up(session: Session, timeout: float = 10.0) -> None:
    if session.status not in ("connecting", "connected"):
        return
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()

    def on_status(change: Any) -> None:
        if change["new"] in ("closed", "error"):
            loop.call_soon_threadsafe(ended.set)

    session.observe(on_status, names=["status"])
    session.disconnect()
    try:
        await asyncio.wait_for(ended.wait(), timeout)
    except asyncio.TimeoutError:
        pass  # the socket's close is its own; what the run holds is already in the session
    finally:
        session.unobserve(on_status, names=["status"])


def _fill(run: Run, session: Session) -> None:
    """The session's record of the run, as plain data."""
    run.transcript = [(t.role, t.text) for t in session.transcript]
    for call in session.conversation.calls():
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = {"(unparsed)": call.arguments}
        run.tool_calls.append({"name": call.name, "arguments": arguments, "output": call.output})
    run.latencies_ms = [t.latency_ms for t in session.metrics.turns]
    totals = session.metrics.totals()
    run.input_tokens = int(totals["input_tokens"])
    run.output_tokens = int(totals["output_tokens"])
    run.cost = float(totals["cost"] or 0.0)
    run.events = [{"dir": r.direction, "t": r.t_kernel, "event": r.event} for r in session.events]


class _Progress:
    """A progress bar under the running cell (ipywidgets), or nothing outside a notebook."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.bar: Any = None
        try:
            from IPython import get_ipython

            if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
                return
            import ipywidgets
            from IPython.display import display

            self.bar = ipywidgets.IntProgress(value=0, max=total, description="runs")
            display(self.bar)  # type: ignore[no-untyped-call]
        except Exception:  # no front end for it: the runs go on without a bar
            self.bar = None

    def step(self, run: Run) -> None:
        self.done += 1
        self.failed += bool(run.error)
        if self.bar is not None:
            self.bar.value = self.done
            failed = f", {self.failed} failed" if self.failed else ""
            self.bar.description = f"{self.done}/{self.total}{failed}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.bar_style = "danger" if self.failed else "success"
