"""Run every benchmark in this folder and write one JSON file of named figures.

    python benchmarks/run.py --out results.json [--quick] [--only local]

Each ``bench_*.py`` module has ``run(quick: bool) -> dict[str, float]``; figures are medians,
p95s and ratios to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks reuse the test harness (tests/)
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="results.json")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", default=None, help="run the benchmark modules matching this")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    timings: dict[str, float] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and args.only not in path.stem:
            continue
        module = importlib.import_module(path.stem)
        started = time.monotonic()
        print(f"[{path.stem}] running…", flush=True)
        result = module.run(args.quick)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        timings[path.stem] = round(time.monotonic() - started, 1)
        for name, value in result.items():
            figures[name] = round(float(value), 3)
            print(f"  {name} = {figures[name]}", flush=True)
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "quick": args.quick,
        "seconds": timings,
    }
    Path(args.out).write_text(json.dumps({"figures": figures, "meta": meta}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
