"""End-to-end fixtures: a real Jupyter server, Debian's Chromium with a fake microphone, pages."""

from __future__ import annotations

import json
import shutil
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from .jupyter import JupyterServer

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Real host candidates instead of mDNS .local names, and loopback allowed: without these
    # two, ICE with a peer on 127.0.0.1 never completes on a host whose only interface is lo.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
]  # fmt: skip


def write_speech_wav(path: Path, rate: int = 48000) -> Path:
    """The fake microphone's loop: 1.5 s silence, 1 s of a 440 Hz tone, 2.5 s silence."""
    t = np.arange(rate) / rate
    burst = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    pcm = np.concatenate(
        [np.zeros(int(1.5 * rate), np.int16), burst, np.zeros(int(2.5 * rate), np.int16)]
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "End-to-end tests need Debian's Chromium at /usr/bin/chromium: "
            "apt-get install chromium (./scripts/test does it on Debian)."
        )
    return CHROMIUM


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


@pytest_asyncio.fixture(scope="session")
async def browser(
    chromium_path: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Browser]:
    wav = write_speech_wav(tmp_path_factory.mktemp("mic") / "speech.wav")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
        )
        yield launched
        await launched.close()


@pytest_asyncio.fixture()
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(permissions=["microphone"])
    yield ctx
    await ctx.close()


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
