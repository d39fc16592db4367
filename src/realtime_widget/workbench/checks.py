"""Checks over a finished run: what a scenario expects of the model's replies, tools and figures.

A check is a name and a function of the :class:`~realtime_widget.workbench.results.Run` that
gives ``(passed, detail)``. Any callable works as a check too: it may return a bool, or a
``(bool, str)`` pair; an exception in it fails the check with the error as its detail.

>>> from realtime_widget.workbench import check
>>> check.contains("hello").name
"contains('hello')"
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import Run

Verdict = tuple[bool, str]


@dataclass(frozen=True)
class Check:
    """A named test of a run."""

    name: str
    test: Callable[[Run], Verdict]

    def __call__(self, run: Run) -> Verdict:
        try:
            result = self.test(run)
        except Exception as exc:  # a broken check fails, with why, and the others still run
            return False, f"the check raised {type(exc).__name__}: {exc}"
        if isinstance(result, tuple):
            return bool(result[0]), str(result[1])
        return bool(result), ""


def as_check(expectation: Check | Callable[[Run], Any]) -> Check:
    """A check, from a :class:`Check` or any callable over a run (named after it)."""
    if isinstance(expectation, Check):
        return expectation
    if not callable(expectation):
        raise TypeError(
            f"An expectation is a check (check.contains(...), ...) or a function of the run, "
            f"not {expectation!r}."
        )
    name = getattr(expectation, "__name__", None) or repr(expectation)
    return Check(name, expectation)


def _said(run: Run) -> str:
    return " ".join(run.replies)


def contains(text: str, *, case: bool = False) -> Check:
    """The model's replies (all turns, joined) contain ``text`` (case-insensitive by default)."""

    def test(run: Run) -> Verdict:
        said = _said(run)
        found = text in said if case else text.lower() in said.lower()
        return found, "" if found else f"not in {said[:120]!r}"

    return Check(f"contains({text!r})", test)


def not_contains(text: str, *, case: bool = False) -> Check:
    """The model's replies never contain ``text``."""

    def test(run: Run) -> Verdict:
        said = _said(run)
        found = text in said if case else text.lower() in said.lower()
        return not found, f"found in {said[:120]!r}" if found else ""

    return Check(f"not_contains({text!r})", test)


def regex(pattern: str, flags: int = re.IGNORECASE) -> Check:
    """The model's replies match ``pattern`` somewhere (``re.search``)."""
    compiled = re.compile(pattern, flags)

    def test(run: Run) -> Verdict:
        said = _said(run)
        return compiled.search(said) is not None, f"no match in {said[:120]!r}"

    return Check(f"regex({pattern!r})", test)


def called(tool: str, **arguments: Any) -> Check:
    """The model called ``tool``, with at least these arguments (each equal) when given."""

    def test(run: Run) -> Verdict:
        calls = [c for c in run.tool_calls if c["name"] == tool]
        if not calls:
            names = sorted({c["name"] for c in run.tool_calls}) or "no tool"
            return False, f"{tool} was not called (called: {names})"
        for call in calls:
            args = call.get("arguments") or {}
            if all(args.get(k) == v for k, v in arguments.items()):
                return True, ""
        seen = "; ".join(json.dumps(c.get("arguments")) for c in calls)
        return False, f"{tool} was called with {seen}"

    shown = ", ".join([repr(tool), *(f"{k}={v!r}" for k, v in arguments.items())])
    return Check(f"called({shown})", test)


def latency_below(ms: float) -> Check:
    """Every turn's latency (request → first audio, or first text) was under ``ms``."""

    def test(run: Run) -> Verdict:
        known = [t for t in run.latencies_ms if t is not None]
        if not known:
            return False, "no turn's latency is known"
        worst = max(known)
        return worst < ms, f"the slowest turn took {worst:.0f} ms"

    return Check(f"latency_below({ms:g})", test)


def cost_below(usd: float) -> Check:
    """The run cost less than ``usd`` (at the session's prices)."""

    def test(run: Run) -> Verdict:
        return run.cost < usd, f"it cost ${run.cost:.4f}"

    return Check(f"cost_below({usd:g})", test)
