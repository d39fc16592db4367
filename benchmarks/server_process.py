"""The local server as its own process, as ``realtime-widget serve`` runs it for a room.

Benchmarks that measure the server under load run it this way: in the benchmark's own process its
event loop would share one interpreter lock with the clients, and each would wait on the other.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

KEY = "sk-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # The server must not outlive the benchmark, even when the benchmark is killed.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def serve(workers: int = 1) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``realtime-widget serve`` on a free loopback port: its URL (without ``/v1``) and process,
    once it answers; it stops with the block, and with the benchmark if that is killed."""
    port = _free_port()
    command = [sys.executable, "-m", "realtime_widget.local", "--port", str(port)]
    command += ["--workers", str(workers)]
    command += ["--api-key", KEY]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"the server exited: {log.read().decode()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("the server did not answer within 60 s")
                time.sleep(0.1)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that are still running."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for one in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def calls_held(url: str) -> int:
    """The calls the server (all its workers) holds now, those still closing included, from
    its status page: a measurement that starts while others close shares the server with them."""
    counts = httpx.get(url + "/?format=json", timeout=5).json()
    return int(counts["calls"]) + int(counts["closing"])
