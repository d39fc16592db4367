"""Run every benchmark in this folder and write one JSON file of named figures.

    python benchmarks/run.py --out results.json [--quick] [--only local]

Each ``bench_*.py`` module has ``run(quick: bool) -> dict[str, float]``; figures are medians,
p95s and ratios to a baseline measured in the same run. What is an input rather than a
measurement (how many runs, events or turns were fed, a ring's size, a rate a timer sets) goes
under ``settings``: a module lists such names in ``SETTINGS``, and every ``*.runs`` is one. The
machine is described in ``meta``, so that a results file says where its figures hold.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import json
import os
import platform
import re
import subprocess
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
    settings: dict[str, float] = {}
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
        inputs = set(getattr(module, "SETTINGS", ()))
        for name, value in result.items():
            kept = settings if name in inputs or name.endswith(".runs") else figures
            kept[name] = round(float(value), 3)
            print(f"  {name} = {kept[name]}", flush=True)
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "seconds": timings,
        **machine(),
    }
    results = {"figures": figures, "settings": settings, "meta": meta}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def machine() -> dict[str, Any]:
    """Where the figures were measured: CPU, cores, memory, OS, Python, Chromium."""

    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', read("/etc/os-release"), re.M)
    try:
        chromium = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        chromium = ""
    return {
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "os": os_name.group(1) if os_name else platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "chromium": chromium,
    }


if __name__ == "__main__":
    main()
