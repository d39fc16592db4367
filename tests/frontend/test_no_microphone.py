"""A front end with no microphone (denied, or none at all, as in VS Code's notebooks): the call
connects text only, says why and what to do, and text in / the model's voice out still work.

Chromium's fake-media switches grant a microphone whatever the permissions say, so these tests
launch their own Chromium without them: with no permission granted, getUserMedia is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from realtime_widget.local import LocalServer
from tests.conftest import CHROMIUM_FLAGS

from .helpers import CALL, connect, kernel_saw, say, shot
from .kernel import API_KEY, FakeKernel

pytestmark = pytest.mark.e2e

FAKE_UI = "--use-fake-ui-for-media-stream"  # accepts every permission prompt
FAKE_DEVICE = "--use-fake-device-for-media-stream"  # a microphone exists
# absent: no microphone at all (NotFoundError); denied: one exists, permission refused.
FLAGS = {
    "absent": [f for f in CHROMIUM_FLAGS if f not in (FAKE_UI, FAKE_DEVICE)],
    "denied": [f for f in CHROMIUM_FLAGS if f != FAKE_UI],
}
ADVICE = {"absent": "No microphone was found", "denied": "Microphone access was denied"}


@pytest_asyncio.fixture(scope="module", params=["absent", "denied"])
async def micless_browser(
    chromium_path: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[str, Browser]]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=FLAGS[request.param]
        )
        yield request.param, launched
        await launched.close()


@pytest_asyncio.fixture()
async def micless(
    micless_browser: tuple[str, Browser], page_url: str, local_server: LocalServer
) -> AsyncIterator[tuple[str, Page, FakeKernel]]:
    why, browser = micless_browser
    context = await browser.new_context()  # no microphone permission granted
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    kernel = FakeKernel(page, local_server.base_url, API_KEY)
    await kernel.attach()
    await page.goto(page_url)
    await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
    yield why, page, kernel
    await kernel.close()
    await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.mark.parametrize("mode", ["ephemeral", "relay"])
async def test_without_a_microphone_the_call_runs_text_only_and_says_why(
    micless: tuple[str, Page, FakeKernel], mode: str
) -> None:
    why, page, kernel = micless
    connected = await connect(page, kernel, mode)
    assert connected["microphone"].startswith(ADVICE[why])
    assert "connect again" in connected["microphone"]
    assert connected["error"] is None and connected["step"] is None
    notice = page.locator("#view-1 .rtw-mic-notice")
    await notice.filter(has_text="Text only, no microphone.").wait_for()
    assert "w.say" in (await notice.text_content() or "")
    assert await page.locator("#view-1 .rtw-mute").is_disabled()
    # No audio is sent (the sender has no track), yet the model's voice still comes; the
    # transceiver is negotiated both ways so that w.play() can speak a recording into it.
    transceivers = await page.evaluate(
        f"() => {CALL}.pc.getTransceivers().map((t) => [t.currentDirection, t.sender.track])"
    )
    assert transceivers == [["sendrecv", None]]
    # The Audio tab: nothing to pick or hold, but the model's voice still moves its meter.
    await page.locator("#view-2 .rtw-tab[data-tab='audio']").click()
    audio = page.locator("#view-2 .rtw-panel-audio")
    await audio.wait_for()
    assert await audio.locator(".rtw-ptt-toggle").is_disabled()
    assert await audio.locator(".rtw-mic-picker").is_disabled()
    voice_on_meter = asyncio.ensure_future(  # watched from before the reply starts
        page.wait_for_function(
            """() => Number(document.querySelector('#view-2 .rtw-meter-output')
                       .getAttribute('aria-valuenow')) > 1""",
            polling="raf",
            timeout=15_000,
        )
    )
    await say(kernel, "hello without a microphone")
    await page.locator(
        "#view-1 .rtw-assistant", has_text="You said: hello without a microphone"
    ).wait_for()
    await kernel_saw(page, "in", "output_audio_buffer.started")
    await page.wait_for_function(
        f"""async () => {{
             const stats = await {CALL}.pc.getStats();
             return [...stats.values()].some((r) => r.type === "inbound-rtp" && r.kind === "audio"
               && r.packetsReceived > 0);
           }}""",
        timeout=15_000,
    )
    await voice_on_meter
    await shot(page, f"no-microphone-{why}-{mode}", selector="body")
    await kernel.deliver({"kind": "disconnect"})
    await page.locator("#view-1 .rtw-mic-notice").wait_for(state="hidden")
