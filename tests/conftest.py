"""Fixtures shared by the browser suites: Debian's Chromium with a fake microphone."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Loopback ICE: on a host whose only interface is lo, Chromium gathers no candidate and ICE
    # stays "new" unless --allow-loopback-in-peer-connection is given (tried in `unshare -n`).
    # Hiding host candidates behind mDNS names does not block it (the server's 127.0.0.1
    # candidate is enough), but real host candidates keep the offer plain: keep both.
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
        if "tests/e2e" in str(item.fspath) or "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "End-to-end tests need Debian's Chromium at /usr/bin/chromium: "
            "apt-get install chromium (./scripts/test does it on Debian)."
        )
    return CHROMIUM


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
