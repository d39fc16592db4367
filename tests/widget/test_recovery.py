"""Reconnecting with the conversation replayed, and budget caps that end a call server-side."""

from __future__ import annotations

import asyncio
from typing import Any

from realtime_widget import RealtimeWidget
from realtime_widget.session.conversation import Conversation
from realtime_widget.session.recovery import replay_events

from .browser import FakeBrowser
from .test_turns import connected, sent_events


def conversation_events() -> list[dict[str, Any]]:
    user = {
        "id": "item_u",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    spoken = {
        "id": "item_a",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "You said: hello"}],
    }
    heard = {
        "id": "item_v",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    call = {
        "id": "item_c",
        "type": "function_call",
        "name": "get_weather",
        "call_id": "call_1",
        "arguments": '{"city": "Paris"}',
    }
    output = {
        "id": "item_o",
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "sunny",
    }
    return [
        {"type": "conversation.item.added", "event_id": "e", "item": i}
        for i in (user, spoken, heard, call, output)
    ]


def test_replay_rebuilds_text_transcripts_and_tool_calls_with_the_same_ids() -> None:
    conversation = Conversation()
    for event in conversation_events():
        conversation.apply(event)
    events = replay_events(conversation)
    items = [e["item"] for e in events]
    assert [i["id"] for i in items] == ["item_u", "item_a", "item_c", "item_o"]  # no audio-only
    assert items[1]["content"] == [{"type": "output_text", "text": "You said: hello"}]
    assert items[2]["arguments"] == '{"city": "Paris"}' and items[3]["output"] == "sunny"


def test_reconnect_ends_the_call_then_starts_one_with_the_conversation_replayed() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    browser.events(*conversation_events())
    before = len(w.events)
    w.reconnect()
    assert browser.custom()[-1] == {"kind": "disconnect"}
    browser.status("closed")
    assert browser.custom()[-1] == {"kind": "connect"}
    assert w.status == "connecting"
    browser.status("connected", call_id="rtc_second")
    replayed = [
        e["item"]["id"] for e in sent_events(browser) if e["type"] == "conversation.item.create"
    ]
    assert replayed == ["item_u", "item_a", "item_c", "item_o"]
    assert len(w.events) == before and len(w.conversation) == 5  # nothing lost


def test_auto_reconnect_after_a_drop_but_not_after_a_user_disconnect_or_in_a_loop() -> None:
    w = RealtimeWidget(endpoint="local", auto_reconnect=True)
    browser = connected(w)
    w.disconnect()
    browser.status("closed")
    assert browser.custom()[-1] == {"kind": "disconnect"}  # the user's choice stands
    for attempt in range(4):
        w.connect()
        browser.status("connected", call_id=f"rtc_{attempt}")
        browser.status("closed", error="The call ended: the server closed the data channel.")
        expected = {"kind": "connect"} if attempt < 3 else None
        last = browser.custom()[-1]
        if expected:
            assert last == expected and w.status == "connecting"
    assert w.status == "closed"
    assert "3 times" in w.notices[-1]


async def test_max_duration_hangs_up_on_the_server_and_says_why() -> None:
    from realtime_widget.config import shared_local_server
    from realtime_widget.local.client import RealtimeCall

    server = shared_local_server()
    call = RealtimeCall(server.base_url, api_key="sk-x")
    await call.connect()
    w = RealtimeWidget(endpoint="local", max_duration=0.3)
    browser = FakeBrowser(w)
    w.connect()
    browser.status("connected", call_id=call.call_id)
    try:
        await asyncio.wait_for(call.closed.wait(), 10)  # ended on the server
    finally:
        await call.close()
    assert {"kind": "disconnect"} in browser.custom()
    browser.status("closed", error="The call ended: the server closed the data channel.")
    assert w.status == "closed"
    assert "max_duration=0.3 s" in w.error and "kernel" in w.error


def test_max_cost_ends_the_call_after_the_response_that_reached_it() -> None:
    w = RealtimeWidget(endpoint="local", model="gpt-realtime", max_cost=0.01)
    browser = connected(w)
    browser.events(
        {
            "type": "session.created",
            "event_id": "e",
            "session": {"type": "realtime", "model": "gpt-realtime"},
        }
    )
    usage = {
        "total_tokens": 2000,
        "input_tokens": 1000,
        "output_tokens": 1000,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 1000, "cached_tokens": 0},
        "output_token_details": {"text_tokens": 0, "audio_tokens": 1000},
    }
    browser.events(
        {
            "type": "response.created",
            "event_id": "e",
            "response": {"id": "resp_1", "conversation_id": "c"},
        }
    )
    browser.events(
        {
            "type": "response.done",
            "event_id": "e",
            "response": {"id": "resp_1", "status": "completed", "output": [], "usage": usage},
        }
    )
    assert browser.custom()[-1] == {"kind": "disconnect"}
    browser.status("closed")
    assert "max_cost=$0.01" in w.error
