"""Responses queued behind the active one, and Python tools run by the kernel, driven through
the browser's messages."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from realtime_widget import RealtimeWidget

from .browser import FakeBrowser


def connected(widget: RealtimeWidget) -> FakeBrowser:
    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", call_id="rtc_test")
    return browser


def sent_events(browser: FakeBrowser) -> list[dict[str, Any]]:
    return [e for message in browser.custom("send") for e in message["events"]]


def sent_types(browser: FakeBrowser) -> list[str]:
    return [e["type"] for e in sent_events(browser)]


async def sends(browser: FakeBrowser, count: int) -> list[dict[str, Any]]:
    """Wait until the kernel has sent ``count`` events in all."""

    async def wait() -> list[dict[str, Any]]:
        while len(sent_events(browser)) < count:
            await browser.wait_custom("send", count=len(browser.custom("send")) + 1)
        return sent_events(browser)

    return await asyncio.wait_for(wait(), 10)


def created(browser: FakeBrowser, response_id: str, metadata: dict[str, Any] | None = None) -> None:
    browser.events(
        {
            "type": "response.created",
            "event_id": "e",
            "response": {"id": response_id, "conversation_id": "conv_1", "metadata": metadata},
        }
    )


def done(
    browser: FakeBrowser,
    response_id: str,
    output: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    browser.events(
        {
            "type": "response.done",
            "event_id": "e",
            "response": {
                "id": response_id,
                "status": "completed",
                "output": output or [],
                "metadata": metadata,
            },
        }
    )


def call(
    browser: FakeBrowser, response_id: str, name: str, arguments: str, call_id: str = "call_1"
) -> None:
    browser.events(
        {
            "type": "response.function_call_arguments.done",
            "event_id": "e",
            "response_id": response_id,
            "item_id": "item_c",
            "output_index": 0,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }
    )


def test_say_while_a_response_is_active_waits_for_it() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    w.say("first")
    created(browser, "resp_1")
    w.say("second")
    assert sent_types(browser) == [
        "conversation.item.create",
        "response.create",
        "conversation.item.create",
    ]
    done(browser, "resp_1")
    assert sent_types(browser)[-1] == "response.create"


def test_a_response_the_server_refused_in_a_race_is_sent_again_after_the_next_one() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    w.say("hello")
    refused = sent_events(browser)[-1]
    browser.events(
        {
            "type": "error",
            "event_id": "e",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "Conversation already has an active response in progress: resp_vad.",
                "param": None,
                "event_id": refused["event_id"],
            },
        }
    )
    assert sent_types(browser).count("response.create") == 1
    created(browser, "resp_vad")
    done(browser, "resp_vad")
    assert sent_events(browser)[-1] == refused


async def test_a_python_tool_is_run_and_its_output_answered_then_a_reply_requested() -> None:
    w = RealtimeWidget(endpoint="local")
    seen: list[str] = []

    @w.tool
    def get_weather(city: str, days: int = 1) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"sunny in {city} for {days} days"

    assert w.session["tools"][0]["name"] == "get_weather"
    assert w.session["tools"][0]["parameters"]["required"] == ["city"]
    browser = connected(w)
    created(browser, "resp_1")
    call(browser, "resp_1", "get_weather", json.dumps({"city": "Paris", "days": 3}))
    events = await sends(browser, 1)
    assert events[0]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "sunny in Paris for 3 days",
    }
    assert seen == ["Paris"]
    assert "response.create" not in sent_types(browser)  # the response is still active
    done(browser, "resp_1")
    assert sent_types(browser)[-1] == "response.create"
    assert w.metrics.turns[-1].tool_ms is not None


async def test_a_failing_tool_tells_the_model_and_the_session_goes_on() -> None:
    w = RealtimeWidget(endpoint="local")

    @w.tool
    def lookup(key: str) -> str:
        """Look a key up."""
        raise LookupError(f"no {key}")

    browser = connected(w)
    created(browser, "resp_1")
    done(browser, "resp_1")
    created(browser, "resp_2")
    call(browser, "resp_2", "lookup", '{"key": "k"}')
    call(browser, "resp_2", "missing_tool", "{}", call_id="call_2")
    done(browser, "resp_2")
    events = await sends(browser, 3)
    outputs = {
        e["item"]["call_id"]: json.loads(e["item"]["output"])
        for e in events
        if e["type"] == "conversation.item.create"
    }
    assert "LookupError" in outputs["call_1"]["error"]
    assert "missing_tool" in json.dumps(outputs["call_2"])
    assert events[-1]["type"] == "response.create"
    assert any("lookup" in n for n in w.notices)


async def test_a_tool_past_its_timeout_answers_with_a_timeout() -> None:
    release = threading.Event()
    w = RealtimeWidget(endpoint="local", tool_timeout=0.2)

    @w.tool
    def slow() -> str:
        """Never finishes in time."""
        release.wait(10)
        return "late"

    browser = connected(w)
    created(browser, "resp_1")
    call(browser, "resp_1", "slow", "{}")
    try:
        events = await sends(browser, 1)
        assert "0.2" in events[0]["item"]["output"]
    finally:
        release.set()


def test_adding_a_tool_mid_session_redeclares_the_tools() -> None:
    w = RealtimeWidget(
        endpoint="local",
        tools=[{"type": "function", "name": "declared_only", "parameters": {"type": "object"}}],
    )
    browser = connected(w)

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    w.tool(add)
    update = sent_events(browser)[-1]
    assert update["type"] == "session.update"
    assert [t["name"] for t in update["session"]["tools"]] == ["declared_only", "add"]
    w.remove_tool("add")
    assert [t["name"] for t in sent_events(browser)[-1]["session"]["tools"]] == ["declared_only"]
    with pytest.raises(KeyError):
        w.remove_tool("add")


def reply_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text}],
    }


async def test_ask_resolves_to_the_reply_text() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    answer = w.ask("what is 2+2?")
    tag = sent_events(browser)[-1]["response"]["metadata"]
    item = reply_item("item_a", "4")
    created(browser, "resp_1", tag)
    browser.events({"type": "conversation.item.added", "event_id": "e", "item": item})
    done(browser, "resp_1", [item], tag)
    assert await asyncio.wait_for(answer, 5) == "4"


async def test_ask_waits_through_other_responses_and_its_tool_calls_for_the_reply() -> None:
    w = RealtimeWidget(endpoint="local")

    @w.tool
    def to_fahrenheit(celsius: float) -> float:
        """Celsius to Fahrenheit."""
        return celsius * 9 / 5 + 32

    browser = connected(w)
    created(browser, "resp_vad")  # a response server VAD started: ask's request waits behind it
    answer = w.ask("convert 21 C")
    assert sent_types(browser)[-1] == "conversation.item.create"
    other = reply_item("item_other", "something else")
    browser.events({"type": "conversation.item.added", "event_id": "e", "item": other})
    done(browser, "resp_vad", [other])
    assert not answer.done()
    tag = sent_events(browser)[-1]["response"]["metadata"]
    assert set(tag) == {"realtime_widget_turn"}
    created(browser, "resp_tool", tag)
    call(browser, "resp_tool", "to_fahrenheit", '{"celsius": 21}')
    function_call = {"id": "item_c", "type": "function_call", "call_id": "call_1"}
    done(browser, "resp_tool", [function_call], tag)
    follow_up = (await sends(browser, 4))[-1]
    assert follow_up["type"] == "response.create"
    assert follow_up["response"]["metadata"] == tag  # the reply continues the tagged request
    await asyncio.sleep(0)
    assert not answer.done()
    item = reply_item("item_r", "69.8 degrees")
    created(browser, "resp_reply", tag)
    browser.events({"type": "conversation.item.added", "event_id": "e", "item": item})
    done(browser, "resp_reply", [item], tag)
    assert await asyncio.wait_for(answer, 5) == "69.8 degrees"


def test_each_response_done_sends_its_figures_and_syncs_the_totals() -> None:
    w = RealtimeWidget(endpoint="local", model="gpt-realtime")
    browser = connected(w)
    session = {"type": "realtime", "id": "sess_1", "model": "gpt-realtime"}
    browser.events({"type": "session.created", "event_id": "e", "session": session})
    for n in range(3):
        w.say(f"turn {n}")
        browser.events(*sent_events(browser)[-2:], direction="out")  # the browser's echo
        created(browser, f"resp_{n}")
        browser.events(
            {
                "type": "response.output_text.delta",
                "event_id": "e",
                "response_id": f"resp_{n}",
                "item_id": f"item_{n}",
                "delta": "hi",
            }
        )
        usage = {
            "input_tokens": 10,
            "output_tokens": 20,
            "total_tokens": 30,
            "input_token_details": {"text_tokens": 10, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 20, "audio_tokens": 0},
        }
        browser.events(
            {
                "type": "response.done",
                "event_id": "e",
                "response": {
                    "id": f"resp_{n}",
                    "status": "completed",
                    "output": [],
                    "usage": usage,
                },
            }
        )
    figures = [m["figures"] for m in browser.custom("turn")]
    assert [f["response_id"] for f in figures] == ["resp_0", "resp_1", "resp_2"]
    for f in figures:
        turn = w.metrics.turn(f["response_id"])
        assert turn is not None and turn.latency_ms is not None and turn.cost is not None
        assert f == {
            "response_id": turn.response_id,
            "latency_ms": turn.latency_ms,
            "cost": turn.cost,
        }
    assert w.totals["turns"] == 3 and w.totals["total_tokens"] == 90
    assert w.get_state()["totals"] == w.totals  # synced to the views
