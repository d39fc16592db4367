"""Today's API features in the session: MCP servers' listings, calls, failures and approvals,
images as user turns, input transcription failures and diarised segments."""

from __future__ import annotations

import base64
import builtins
import struct
import zlib
from typing import Any

import numpy as np
import pytest

from realtime_widget import RealtimeWidget
from realtime_widget.images import ImageError, data_url, image_turn

from .browser import FakeBrowser


def connected() -> tuple[RealtimeWidget, FakeBrowser]:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    w.connect()
    browser.status("connected", call_id="rtc_features")
    return w, browser


def test_mcp_listings_calls_and_failures_build_the_conversation_and_transcript() -> None:
    w, browser = connected()
    listing = {"id": "item_l", "type": "mcp_list_tools", "server_label": "demo", "tools": []}
    tools = [{"name": "add", "input_schema": {}}, {"name": "echo", "input_schema": {}}]
    call = {"id": "item_c", "type": "mcp_call", "server_label": "demo", "name": "add",
            "arguments": ""}  # fmt: skip
    failed = {"id": "item_f", "type": "mcp_call", "server_label": "demo", "name": "echo",
              "arguments": "{}"}  # fmt: skip
    browser.events(
        {"type": "conversation.item.added", "event_id": "1", "item": listing},
        {"type": "mcp_list_tools.in_progress", "event_id": "2", "item_id": "item_l"},
        {"type": "conversation.item.done", "event_id": "3", "item": {**listing, "tools": tools}},
        {"type": "mcp_list_tools.completed", "event_id": "4", "item_id": "item_l"},
        {"type": "conversation.item.added", "event_id": "5", "item": call},
        {"type": "response.mcp_call_arguments.delta", "event_id": "6", "item_id": "item_c",
         "delta": '{"a": 1,', "response_id": "r1", "output_index": 0},
        {"type": "response.mcp_call_arguments.done", "event_id": "7", "item_id": "item_c",
         "arguments": '{"a": 1, "b": 2}', "response_id": "r1", "output_index": 0},
        {"type": "response.mcp_call.in_progress", "event_id": "8", "item_id": "item_c",
         "output_index": 0},
        {"type": "response.mcp_call.completed", "event_id": "9", "item_id": "item_c",
         "output_index": 0},
        {"type": "conversation.item.done", "event_id": "10",
         "item": {**call, "arguments": '{"a": 1, "b": 2}', "output": "3"}},
        {"type": "conversation.item.added", "event_id": "11", "item": failed},
        {"type": "response.mcp_call.failed", "event_id": "12", "item_id": "item_f",
         "output_index": 1},
        {"type": "conversation.item.done", "event_id": "13",
         "item": {**failed, "error": {"type": "mcp_tool_execution_error", "message": "boom"}}},
    )  # fmt: skip
    listed, added, broken = w.conversation.items
    assert listed.status == "completed" and [t["name"] for t in listed.tools] == ["add", "echo"]
    assert added.status == "completed" and added.output == "3"
    assert added.arguments == '{"a": 1, "b": 2}'
    assert broken.status == "failed" and broken.error == "boom"
    assert w.conversation.mcp_calls() == [added, broken]
    assert [t.text for t in w.transcript] == [
        "demo offers: add, echo",
        'demo.add({"a": 1, "b": 2})',
        "→ 3",
        "demo.echo({})",
        "✗ boom",
    ]


async def test_an_approval_callback_answers_the_mcp_server_and_the_response_goes_on() -> None:
    seen: list[Any] = []

    def approve_adds(request: Any) -> tuple[bool, str]:
        seen.append(request)
        return request.name == "add", "only adding is allowed"

    w = RealtimeWidget(endpoint="local", mcp_approval=approve_adds)
    browser = FakeBrowser(w)
    w.connect()
    browser.status("connected", call_id="rtc_approve")
    request = {"id": "mcpr_1", "type": "mcp_approval_request", "server_label": "demo",
               "name": "add", "arguments": '{"a": 1}'}  # fmt: skip
    browser.events(
        {"type": "conversation.item.added", "event_id": "1", "item": request},
        {"type": "conversation.item.done", "event_id": "2", "item": request},
    )
    sent = await browser.wait_custom("send")
    answer = sent["events"][0]
    assert seen[0].name == "add" and seen[0].server_label == "demo"
    assert answer["type"] == "conversation.item.create"
    assert answer["item"].pop("id").startswith("item_")
    assert answer["item"] == {
        "type": "mcp_approval_response",
        "approval_request_id": "mcpr_1",
        "approve": True,
        "reason": "only adding is allowed",
    }
    follow = await browser.wait_custom("send", count=2)
    assert follow["events"][0]["type"] == "response.create"  # the model is asked to go on


def test_an_image_turn_is_a_data_url_that_fits_one_message() -> None:
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[:, :, 0] = 255
    url = data_url(pixels, limit=10_000)
    assert url.startswith("data:image/png;base64,")
    png = base64.b64decode(url.split(",", 1)[1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (6, 4)
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    assert zlib.decompress(idat)[:4] == b"\x00\xff\x00\x00"  # row filter, then a red pixel
    turn = image_turn(pixels, "what colour?", limit=10_000)
    kinds = [part["type"] for part in turn["item"]["content"]]
    assert kinds == ["input_image", "input_text"]


def test_an_image_too_big_is_scaled_down_or_refused_saying_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    shrunk = data_url(noise, limit=60_000)  # Pillow (in the analysis extra) scales it down
    assert shrunk.startswith("data:image/jpeg;base64,") and len(shrunk) <= 60_000 + 64
    real_import = builtins.__import__

    def no_pillow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("PIL"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pillow)
    with pytest.raises(ImageError, match="install Pillow"):
        data_url(noise, limit=60_000)
    with pytest.raises(ImageError, match="not a PNG, JPEG"):
        data_url(b"plain text", limit=60_000)


def test_an_image_goes_to_the_call_as_a_user_turn_and_shows_in_the_transcript() -> None:
    w, browser = connected()
    w.say("what is this?", image=np.zeros((2, 2), dtype=np.uint8))
    event = browser.custom("send")[-2]["events"][0]  # the turn, then its response.create
    assert event["item"]["content"][0]["image_url"].startswith("data:image/png;base64,")
    browser.events({"type": "conversation.item.added", "event_id": "i", "item": {
        "id": "item_i", **event["item"]}})  # fmt: skip
    assert w.transcript[-1].text == "[image] what is this?"
    assert w.conversation.items[-1].images == [event["item"]["content"][0]["image_url"]]


def test_a_failed_transcription_shows_on_its_turn_and_segments_are_kept() -> None:
    w, browser = connected()
    audio = {"id": "item_u", "type": "message", "role": "user",
             "content": [{"type": "input_audio", "transcript": None}]}  # fmt: skip
    browser.events(
        {"type": "conversation.item.added", "event_id": "1", "item": audio},
        {"type": "conversation.item.input_audio_transcription.segment", "event_id": "2",
         "item_id": "item_u", "content_index": 0, "id": "seg_1", "speaker": "A",
         "text": "hi", "start": 0.0, "end": 0.4},
        {"type": "conversation.item.input_audio_transcription.failed", "event_id": "3",
         "item_id": "item_u", "content_index": 0,
         "error": {"type": "transcription_error", "message": "audio too short"}},
    )  # fmt: skip
    item = w.conversation.items[0]
    assert item.segments == [{"id": "seg_1", "speaker": "A", "text": "hi", "start": 0.0,
                              "end": 0.4}]  # fmt: skip
    assert w.transcript[0].text == "(transcription failed: audio too short)"
