"""Medians and percentiles for benchmark figures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))])


def summary(name: str, values: Sequence[float]) -> dict[str, float]:
    return {
        f"{name}.median_ms": median(values),
        f"{name}.p95_ms": p95(values),
        f"{name}.runs": float(len(values)),
    }
