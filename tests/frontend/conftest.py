"""Fixtures for the front-end tests: the built widget.js in a plain page with a fake model.

The page (``page/``) imports the bundle the package build makes, hands ``initialize`` and two
``render`` calls a fake anywidget model, and lets the test play the kernel (``kernel.py``). The
Chromium launched by ``tests/conftest.py`` (session-scoped, fake microphone) is shared; each test
gets a fresh context and page. The page server and the local Realtime server listen on 127.0.0.1
only and stop at teardown.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page

from realtime_widget import RealtimeWidget
from realtime_widget.local import LocalServer

from .kernel import API_KEY, FakeKernel
from .page_server import STATIC, serve_page
from .real_kernel import QUIET, Open, RealKernel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def static_dir() -> Path:
    """The built front end; rebuilt from js/ first when its node_modules are installed."""
    js = ROOT / "js"
    if (js / "node_modules").is_dir() and shutil.which("npm"):
        subprocess.run(["npm", "run", "--silent", "build"], cwd=js, check=True)
    if not (STATIC / "widget.js").exists():
        pytest.fail(
            "No built front end at src/realtime_widget/static/widget.js: "
            "run `pip install -e .` (it runs the JS build) or `cd js && npm ci && npm run build`."
        )
    return STATIC


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    with LocalServer(port=0) as server:
        yield server


@pytest_asyncio.fixture(scope="session")
async def page_url(static_dir: Path) -> AsyncIterator[str]:
    runner, url = await serve_page(static_dir)
    yield url
    await runner.cleanup()


@pytest_asyncio.fixture()
async def page(context: BrowserContext, page_url: str) -> AsyncIterator[Page]:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    await page.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest_asyncio.fixture()
async def kernel(page: Page, page_url: str, local_server: LocalServer) -> AsyncIterator[FakeKernel]:
    """The page, loaded, with a fake kernel answering its requests from the local server."""
    fake = FakeKernel(page, local_server.base_url, API_KEY)
    await fake.attach()
    await page.goto(page_url)
    await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
    yield fake
    await fake.close()


@pytest_asyncio.fixture()
async def open_page(page: Page, page_url: str) -> AsyncIterator[Open]:
    """Load the page with a real widget behind it: ``await open_page(endpoint=…, …)``."""
    kernels: list[RealKernel] = []

    async def open_(**options: Any) -> tuple[RealtimeWidget, RealKernel]:
        widget = RealtimeWidget(**{"api_key": API_KEY, **QUIET, **options})
        kernel = RealKernel(page, widget)
        await kernel.attach()
        kernels.append(kernel)
        await page.goto(page_url)
        await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
        await kernel.sync()
        return widget, kernel

    yield open_
    for kernel in kernels:
        await kernel.stop()
