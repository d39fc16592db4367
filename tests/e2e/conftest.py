"""End-to-end fixtures: a real Jupyter server (JupyterLab, Notebook 7) and notebooks in it."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page

from .jupyter import JupyterServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("notebooks")
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)
    return root


@pytest.fixture(scope="session", params=["perCommTarget", "disabled"])
def jupyter(
    request: pytest.FixtureRequest, workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    server = JupyterServer(workdir, tmp_path_factory.mktemp("jupyter"), comms=request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_notebook(root: Path, name: str, cells: list[str]) -> str:
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(cells)
        ],
    }
    (root / name).write_text(json.dumps(notebook))
    return name


class Lab:
    """A notebook open in a real front end (JupyterLab or Notebook 7), with a line to its
    kernel for assertions."""

    def __init__(self, page: Page, server: JupyterServer, app: str = "lab") -> None:
        self.page = page
        self.server = server
        self.app = app

    async def open(self, notebook: str) -> None:
        if self.app == "lab":
            url = self.server.lab_url(notebook)
        else:
            url = self.server.notebook7_url(notebook)
        await self.page.goto(url)
        await self.page.wait_for_function(
            """(path) => {
                const app = window.jupyterapp;
                const w = app && app.shell && app.shell.currentWidget;
                const ctx = w && w.sessionContext;
                return !!(w && w.context && w.context.path === path && ctx && ctx.session &&
                          ctx.session.kernel && ctx.session.kernel.connectionStatus ===
                          'connected' && ctx.session.kernel.status === 'idle');
            }""",
            arg=notebook,
            timeout=60_000,
        )

    async def run_all(self) -> None:
        await self.page.evaluate(
            "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"
        )

    async def kernel(self, code: str, timeout: float = 30_000) -> str:
        """Run code in the notebook's kernel (beside its cells); returns what it printed."""
        result: dict[str, Any] = await self.page.evaluate(
            """async ([code, timeout]) => {
                const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                const future = kernel.requestExecute({code, store_history: false});
                let out = '', error = null;
                future.onIOPub = (msg) => {
                    const t = msg.header.msg_type;
                    if (t === 'stream') out += msg.content.text;
                    if (t === 'execute_result') out += msg.content.data['text/plain'];
                    if (t === 'error') error = msg.content.ename + ': ' + msg.content.evalue;
                };
                await Promise.race([future.done, new Promise((_, no) =>
                    setTimeout(() => no(new Error('kernel timeout')), timeout))]);
                return {out, error};
            }""",
            [code, timeout],
        )
        if result["error"]:
            raise AssertionError(f"kernel error: {result['error']}\n--- code ---\n{code}")
        return str(result["out"])

    async def outputs(self) -> list[str]:
        """Every code cell's outputs as text, from the notebook's model (JupyterLab renders
        only the cells in view, so the DOM does not have them all)."""
        texts: list[str] = await self.page.evaluate(
            """() => {
                const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
                const texts = [];
                for (let i = 0; i < cells.length; i++) {
                    const cell = cells.get(i);
                    if (cell.type !== 'code') continue;
                    for (const out of cell.outputs.toJSON()) {
                        const t = out.text ?? (out.data && out.data['text/plain']) ?? out.ename;
                        texts.push(String(Array.isArray(t) ? t.join('') : t ?? ''));
                    }
                }
                return texts;
            }"""
        )
        return texts

    async def kernel_json(self, expression: str) -> Any:
        return json.loads(await self.kernel(f"import json; print(json.dumps({expression}))"))

    async def wait_kernel(self, condition: str, timeout: float = 30.0) -> None:
        """Wait until a Python expression is true in the kernel (checked in the kernel)."""
        code = (
            "import asyncio, time\n"
            f"_deadline = time.monotonic() + {timeout}\n"
            f"while not ({condition}):\n"
            "    if time.monotonic() > _deadline:\n"
            f"        raise TimeoutError({('timed out waiting for: ' + condition)!r})\n"
            "    await asyncio.sleep(0.05)\n"
        )
        await self.kernel(code, timeout=(timeout + 10) * 1000)


@pytest_asyncio.fixture(params=["lab", "notebook7"])
async def lab(
    request: pytest.FixtureRequest, context: BrowserContext, jupyter: JupyterServer
) -> AsyncIterator[Lab]:
    page = await context.new_page()
    yield Lab(page, jupyter, request.param)
    await page.close()
    jupyter.shutdown_kernels()
