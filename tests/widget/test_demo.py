"""``realtime-widget demo``: JupyterLab on a copy of the quickstart notebook."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.jupyter import free_port


def test_demo_serves_the_quickstart_and_never_overwrites_a_learners_copy(tmp_path: Path) -> None:
    import nbformat

    mine = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("learner's edits")])
    nbformat.write(mine, tmp_path / "quickstart.ipynb")
    port = free_port()
    command = [sys.executable, "-m", "realtime_widget.cli", "demo", "--no-browser",
               "--port", str(port), "--dir", str(tmp_path)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        # The demo prints the quickstart's own URL, logged in; JupyterLab logs when it serves.
        printed = [process.stdout.readline() for _ in range(2)][1]
        found = re.search(
            rf"http://127\.0\.0\.1:{port}/lab/tree/quickstart\.ipynb\?token=(\w+)", printed
        )
        assert found, printed
        token = found.group(1)
        for line in process.stderr:
            if f"127.0.0.1:{port}/lab" in line:
                break
        page = httpx.get(found.group(0), timeout=10)
        assert page.status_code == 200 and "JupyterLab" in page.text
        res = httpx.get(
            f"http://127.0.0.1:{port}/api/contents/quickstart.ipynb",
            params={"token": token},
            timeout=10,
        )
        assert res.status_code == 200
        cells = res.json()["content"]["cells"]
        assert cells[0]["source"] == "learner's edits"  # the existing copy was kept
    finally:
        process.terminate()
        process.wait(20)


def test_demo_copies_the_quickstart_into_a_new_folder(tmp_path: Path) -> None:
    from realtime_widget.demo import notebooks_source

    assert (notebooks_source() / "quickstart.ipynb").exists()


def test_by_default_the_demo_works_in_the_home_folder_not_the_current_one(tmp_path: Path) -> None:
    home, here = tmp_path / "home", tmp_path / "clone"
    home.mkdir()
    here.mkdir()
    command = [sys.executable, "-m", "realtime_widget.cli", "demo", "--no-browser",
               "--port", str(free_port())]  # fmt: skip
    env = {**os.environ, "HOME": str(home)}
    process = subprocess.Popen(command, cwd=here, env=env, stdout=subprocess.PIPE, text=True,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed once the notebooks are copied
        assert str(home / "realtime-widget-demo") in first
        assert (home / "realtime-widget-demo" / "quickstart.ipynb").exists()
        assert list(here.iterdir()) == []
    finally:
        process.terminate()
        process.wait(20)
