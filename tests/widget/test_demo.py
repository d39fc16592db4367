"""``realtime-widget demo``: JupyterLab on a copy of the quickstart notebook."""

from __future__ import annotations

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
        assert process.stderr is not None
        token = None
        for line in process.stderr:  # JupyterLab logs its URL once it serves
            found = re.search(rf"127\.0\.0\.1:{port}/lab\?token=(\w+)", line)
            if found:
                token = found.group(1)
                break
        assert token, "JupyterLab did not start"
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
