"""``realtime-widget serve`` and ``python -m realtime_widget.local`` as a user runs them."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "realtime_widget.local", "--port", "0"],
        [
            sys.executable,
            "-c",
            "from realtime_widget.cli import main; main()",
            "serve",
            "--port",
            "0",
        ],
    ],
)
def test_serve_prints_its_base_url_and_answers(command: list[str]) -> None:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server has bound its port
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line
        res = httpx.get(match.group(1).removesuffix("/v1") + "/", timeout=5)
        assert res.status_code == 200 and "local server" in res.text
    finally:
        process.terminate()
        process.wait(10)


def test_a_network_address_without_a_key_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "realtime_widget.local", "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0 and "--api-key" in done.stderr
