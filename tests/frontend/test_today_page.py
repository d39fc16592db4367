"""Today's API in the page, with a real widget behind it and the local server's simulated MCP
server: the transcript shows the server's tools, an approval request with its buttons (a click
answers it through the kernel, and the call runs), an MCP call with its result, an image as a
thumbnail, and a failed transcription on its turn."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.async_api import Page

from realtime_widget.local import LocalServer

from .helpers import CALL
from .real_kernel import Open

pytestmark = pytest.mark.e2e

DEMO = {"type": "mcp", "server_label": "demo", "server_url": "local://demo"}
VIEW = "#view-1"


async def test_mcp_approvals_calls_and_images_show_in_the_transcript(
    open_page: Open, page: Page, local_server: LocalServer
) -> None:
    widget, kernel = await open_page(
        endpoint=local_server.base_url, tools=[DEMO], output_modalities=["text"]
    )
    widget.connect()
    await kernel.wait(lambda: widget.status == "connected")
    await page.locator(f"{VIEW} .rtw-kind-listing", has_text="demo offers: add, echo").wait_for()

    widget.say("please call add with a=1, b=2")
    asked = page.locator(f"{VIEW} .rtw-kind-approval", has_text="approval asked for demo.add")
    await asked.wait_for()
    await asked.locator(".rtw-approve").click()  # the page asks the kernel, which answers
    await page.locator(f"{VIEW} .rtw-kind-mcp", has_text="→ 3").wait_for()
    await page.locator(f"{VIEW} .rtw-assistant", has_text="The add tool returned: 3").wait_for()
    await asked.locator(".rtw-verdict", has_text="approved").wait_for()
    assert await asked.locator(".rtw-approve").count() == 0
    await kernel.wait(
        lambda: any(i.type == "mcp_call" and i.output == "3" for i in widget.conversation.items)
    )
    assert [t.text for t in widget.transcript if t.text.startswith("demo.add")]

    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    widget.say("what colour is this?", image=red)
    row = page.locator(f"{VIEW} .rtw-user", has_text="what colour is this?")
    await row.locator("img.rtw-thumb").wait_for()
    src = await row.locator("img.rtw-thumb").get_attribute("src")
    assert src is not None and src.startswith("data:image/png;base64,")
    await page.locator(f"{VIEW} .rtw-assistant", has_text="I see an image.").wait_for()

    def images_priced() -> bool:
        for record in widget.events.filter("response.done"):
            usage = record.event["response"].get("usage") or {}
            if usage.get("input_token_details", {}).get("image_tokens", 0) > 0:
                return True
        return False

    await kernel.wait(images_priced)
    turn = widget.metrics.turns[-1]
    assert turn.cost is not None  # a turn with image tokens is priced


async def test_a_failed_transcription_shows_on_its_turn(page: Page, page_url: str) -> None:
    await page.goto(page_url)
    await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
    item = {"id": "item_u", "type": "message", "role": "user", "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}]}  # fmt: skip
    failed = {"type": "conversation.item.input_audio_transcription.failed", "item_id": "item_u",
              "content_index": 0, "error": {"type": "x", "message": "audio too short"}}  # fmt: skip
    await page.evaluate(
        f"""([item, failed]) => {{
            const call = {CALL};
            call.record("in", {{type: "conversation.item.added", item}});
            call.record("in", failed);
        }}""",
        [item, failed],
    )
    turn = page.locator(f"{VIEW} .rtw-user.rtw-failed")
    await turn.filter(has_text="(transcription failed: audio too short)").wait_for()


async def test_a_transcription_session_shows_live_captions_and_no_replies(
    open_page: Open, page: Page, local_server: LocalServer
) -> None:
    # The fake microphone's tone every 5 s is the speech; server VAD finds it.
    widget, kernel = await open_page(
        endpoint=local_server.base_url, session_type="transcription", turn_detection="default"
    )
    assert widget.session["type"] == "transcription"
    widget.connect()
    await kernel.wait(lambda: widget.status == "connected")
    await page.locator(f"{VIEW} .rtw-user", has_text="seconds of speech)").wait_for(timeout=20_000)
    await kernel.wait(lambda: any(t.role == "user" for t in widget.transcript))
    assert not widget.events.filter("response.created")
    with pytest.raises(RuntimeError, match="transcription session"):
        widget.say("hello?")
