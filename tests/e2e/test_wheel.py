"""The wheel, as a user installs it: built once, installed with pip into a fresh venv that has no
Node and no repository, then the quickstart run top to bottom in that install's JupyterLab.

This is the path `pip install 'realtime-widget[demo]'` takes: the front end must be in the wheel
(built at package time), the server extension enabled by the install, and the notebooks shipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext

from .conftest import REPO, Lab
from .jupyter import JupyterServer

# Building the wheel and installing it with its dependencies take minutes on a cold pip cache.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return next(out.glob("realtime_widget-*.whl"))


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = only_the_venv(venv)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[demo]"],
        capture_output=True,
        text=True,
        env=env,
        cwd=venv,  # not the repository: nothing may come from it
        timeout=900,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    return venv


def only_the_venv(venv: Path) -> dict[str, str]:
    """The environment of a user of that venv alone: its bin on PATH, and nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = str(venv / "bin")
    return env


@pytest.fixture(scope="module")
def fresh_jupyter(
    fresh_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp("fresh-notebooks")
    server = JupyterServer(
        root,
        tmp_path_factory.mktemp("fresh-jupyter"),
        python=str(fresh_venv / "bin" / "python"),
        path=str(fresh_venv / "bin"),
    )
    # The quickstart as the install ships it, copied where `realtime-widget demo` would put it.
    shipped = subprocess.run(
        [server.python, "-c", "from realtime_widget.demo import notebooks_source as s; print(s())"],
        capture_output=True,
        text=True,
        env=only_the_venv(fresh_venv),
        cwd=root,
        check=True,
    ).stdout.strip()
    assert shipped.startswith(str(fresh_venv)), shipped
    shutil.copy(Path(shipped) / "quickstart.ipynb", root / "quickstart.ipynb")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture()
async def fresh_lab(context: BrowserContext, fresh_jupyter: JupyterServer) -> AsyncIterator[Lab]:
    page = await context.new_page()
    yield Lab(page, fresh_jupyter, "lab")
    await page.close()
    fresh_jupyter.shutdown_kernels()


def test_the_wheel_holds_the_built_front_end_the_notebooks_and_the_server_extension(
    wheel: Path,
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "realtime_widget/static/widget.js",
        "realtime_widget/static/widget.css",
        "realtime_widget/notebooks/quickstart.ipynb",
    } <= names
    assert any(
        n.endswith("etc/jupyter/jupyter_server_config.d/realtime_widget.json") for n in names
    )


def test_the_install_needs_no_node_and_enables_the_server_extension(fresh_venv: Path) -> None:
    env = only_the_venv(fresh_venv)
    assert shutil.which("node", path=env["PATH"]) is None  # what follows ran without Node
    listed = subprocess.run(
        [str(fresh_venv / "bin" / "jupyter"), "server", "extension", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)  # its colours
    assert "realtime_widget.server_extension enabled" in out, out
    assert re.search(r"realtime_widget\.server_extension\s+OK", out), out


async def test_the_quickstart_runs_top_to_bottom_from_the_installed_wheel(fresh_lab: Lab) -> None:
    lab = fresh_lab
    await lab.open("quickstart.ipynb")
    where = await lab.kernel_json("__import__('realtime_widget').__file__")
    assert "/fresh" in where and "/venv/" in where and str(REPO) not in where, where
    await lab.run_all()
    await lab.wait_kernel("'widget' in globals() and widget.status == 'closed'", timeout=90)
    transcript = await lab.kernel_json("[[t.role, t.text] for t in widget.transcript]")
    assert transcript[:2] == [["user", "hello"], ["assistant", "You said: hello"]]
    assert transcript[-1] == ["assistant", "The to_fahrenheit tool returned: 69.8"]
    # Its GPT-Live section ran too, with the installed local server and front end.
    await lab.wait_kernel("'live' in globals() and live.status == 'closed'", timeout=90)
    assert await lab.kernel_json("[r.output for r in live.tool_results]") == ["69.8"]
    # The page drew it, from the wheel's front end.
    await lab.page.locator(
        ".rtw-transcript", has_text="The to_fahrenheit tool returned"
    ).first.wait_for()
