"""What a new user meets in the first hour, each reproduced and fixed: waiting on what already
happened, waiters that outlive a failed call, timings and budgets that cross calls, replies cut
short with no sign, messages to a page that is not listening yet, the event log's file, and the
base contract of ``Widget.send``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from realtime_widget import RealtimeWidget
from realtime_widget.session.budgets import BudgetExceeded
from realtime_widget.session.dispatch import CallEnded

from .browser import FakeBrowser

CREATED = {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}


def usage(tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": tokens,
        "output_tokens": 0,
        "total_tokens": tokens,
        "input_token_details": {"text_tokens": tokens, "audio_tokens": 0, "cached_tokens": 0},
        "output_token_details": {"text_tokens": 0, "audio_tokens": 0},
    }


def connected(w: RealtimeWidget, call_id: str = "rtc_first") -> FakeBrowser:
    browser = FakeBrowser(w)
    w.connect()
    browser.status("connected", call_id=call_id)
    return browser


async def test_waiting_for_session_created_after_it_came_settles_at_once() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    browser.events(CREATED)  # the user clicked Connect before running the cell that waits
    w.connect()  # a connected widget: nothing to do
    event = await asyncio.wait_for(w.wait_for("session.created", timeout=30), 1)
    assert event["event_id"] == "e0"
    # Other events are not replayed: the next response.done is the next one.
    browser.events({"type": "response.done", "event_id": "old", "response": {"id": "r0"}})
    later = w.wait_for("response.done", timeout=5)
    assert not later.done()


async def test_a_failed_call_fails_its_waiters_at_once_with_the_real_error() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    ready = w.wait_for("session.created", timeout=30)
    w.connect()
    asked_at = time.monotonic()
    browser.status("error", step="key", error="Minting a client secret failed: could not reach")
    with pytest.raises(CallEnded, match=r"\[key\] Minting a client secret failed"):
        await asyncio.wait_for(ready, 2)
    assert time.monotonic() - asked_at < 2  # at once, not after its 30 s
    # ask() in a live call fails the same way when the call drops.
    w.connect()
    browser.status("connected", call_id="rtc_drop")
    answer = w.ask("hello?", timeout=30)
    browser.status("closed", error="The connection to the server dropped")
    with pytest.raises(CallEnded, match="dropped"):
        await asyncio.wait_for(answer, 2)


async def test_a_waiter_made_after_reconnect_waits_for_the_new_call() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w, "rtc_old")
    browser.events(CREATED)
    w.reconnect()
    ready = w.wait_for("session.created", timeout=5)  # the new call's, not the old one's
    assert not ready.done()
    browser.status("closed")  # the old call ends: this waiter is not the old call's
    await asyncio.sleep(0)
    assert not ready.done()
    assert browser.custom("connect")[-1] == {"kind": "connect"}  # the new call is asked for
    browser.status("connected", call_id="rtc_new")
    browser.events({**CREATED, "event_id": "e1"})
    assert (await asyncio.wait_for(ready, 2))["event_id"] == "e1"


async def test_a_timeout_says_what_is_going_on() -> None:
    w = RealtimeWidget(endpoint="local")
    FakeBrowser(w, hello=False)  # displayed nowhere yet
    w.connect()
    waiting = w.wait_for("session.created", timeout=0.05)
    with pytest.raises(TimeoutError, match="not on a page yet: display it"):
        await waiting
    idle = RealtimeWidget(endpoint="local")
    with pytest.raises(TimeoutError, match=r"no call is under way \(status: idle\)"):
        await idle.wait_for("response.done", timeout=0.05)


def test_per_turn_timing_does_not_cross_calls() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w, "rtc_a")
    browser.events({"type": "input_audio_buffer.speech_stopped", "event_id": "s", "item_id": "i"})
    browser.status("closed")  # the call ends before that speech got a response
    time.sleep(0.05)
    w.connect()
    browser.status("connected", call_id="rtc_b")
    browser.events({"type": "response.create", "event_id": "c1"}, direction="out")
    browser.events(
        {"type": "response.created", "event_id": "e1", "response": {"id": "r1"}},
        {"type": "response.output_text.delta", "event_id": "e2", "response_id": "r1"},
    )
    turn = w.metrics.turns[-1]
    assert turn.speech_stopped is None  # the old call's mark stayed with the old call
    assert turn.latency_ms is not None and turn.latency_ms < 50


def test_max_cost_caps_the_whole_session_and_connect_refuses_until_raised() -> None:
    w = RealtimeWidget(endpoint="local", model="gpt-realtime", max_cost=0.001)
    browser = connected(w)
    done = {"id": "r1", "status": "completed", "usage": usage(500)}  # 500 x $4/M = $0.002
    browser.events({"type": "response.done", "event_id": "d", "response": done})
    assert browser.custom("disconnect")  # the cap ended the call
    browser.status("closed")
    assert "max_cost=$0.001" in w.error and "all its calls" in w.error
    with pytest.raises(BudgetExceeded, match="raise it"):
        w.connect()  # a reconnect would spend again: refused while over the cap
    w.max_cost = 0.01
    w.connect()
    assert w.status == "connecting"


def test_max_cost_on_a_model_without_a_price_warns() -> None:
    with pytest.warns(RuntimeWarning, match="can't be enforced"):
        w = RealtimeWidget(endpoint="local", model="my-azure-deployment", max_cost=1.0)
    assert "my-azure-deployment" in w.notices[-1]


def test_local_costs_are_labelled_as_what_openai_would_charge() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    done = {"id": "r1", "status": "completed", "usage": usage(100)}
    browser.events({"type": "response.done", "event_id": "d", "response": done})
    assert w.totals["cost_basis"] == "openai-equivalent"
    assert w.totals["prices_assumed"] is True  # gpt-realtime-2's prices are assumed


async def test_an_interrupted_reply_says_so() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    answer = w.ask("tell me a long story")
    tag = browser.custom("send")[-1]["events"][-1]["response"]["metadata"]
    item = {"id": "item_a", "type": "message", "role": "assistant", "content": []}
    response = {"id": "r1", "status": "cancelled", "metadata": tag, "output": [item]}
    ids = {"response_id": "r1", "item_id": "item_a", "output_index": 0, "content_index": 0}
    browser.events(
        {"type": "response.created", "event_id": "1", "response": {"id": "r1", "metadata": tag}},
        {"type": "conversation.item.added", "event_id": "2", "item": item},
        {"type": "response.output_audio_transcript.delta", "event_id": "3", **ids, "delta": "The"},
        {"type": "response.done", "event_id": "4", "response": response},
    )
    reply = await asyncio.wait_for(answer, 2)
    assert reply == "The" and reply.interrupted and reply.status == "cancelled"
    assert "(interrupted)" in repr(reply)
    assert w.transcript[-1].interrupted
    assert w.transcript.to_markdown().endswith("**assistant:** The *(interrupted)*")


async def test_wait_for_a_reply_to_one_request_ignores_other_responses() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = connected(w)
    request = w.say("first")
    reply = w.wait_for("response.done", reply_to=request, timeout=5)
    other = {"id": "r_vad", "status": "completed", "metadata": None, "output": []}
    browser.events({"type": "response.done", "event_id": "a", "response": other})
    assert not reply.done()  # a response server VAD started is not this request's reply
    mine = {"id": "r1", "status": "completed", "metadata": request.event["response"]["metadata"]}
    browser.events({"type": "response.done", "event_id": "b", "response": {**mine, "output": []}})
    assert (await asyncio.wait_for(reply, 2))["response"]["id"] == "r1"


def test_messages_to_a_page_that_has_not_said_hello_wait_for_it() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w, hello=False)
    w.connect()  # as a dashboard does in the cell that displays the widget
    assert browser.custom("connect") == []  # nobody listens yet: held, not lost
    browser.hello()
    assert browser.custom("connect") == [{"kind": "connect"}]
    browser.hello()  # another view loads before any page took the call: nobody to probe
    assert browser.custom("ping") == []
    browser.status("connecting")
    browser.status("connected", call_id="rtc_x")
    assert w.status == "connected"
    browser.hello()  # a page loads while a page holds the call: is that one still there?
    assert browser.custom("ping") == [{"kind": "ping"}]


def test_the_event_log_writes_jsonl_and_close_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    w = RealtimeWidget(endpoint="local", log_path=path)
    browser = connected(w)
    browser.events(CREATED, {"type": "response.done", "event_id": "d", "response": {}})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"]["type"] for line in lines] == ["session.created", "response.done"]
    assert {"direction", "t_browser", "t_kernel", "event"} <= set(lines[0])
    copy = w.events.to_jsonl(tmp_path / "copy.jsonl")
    assert copy.read_text() == path.read_text()
    log_file = w.events._file
    assert log_file is not None
    w.close()
    assert log_file.closed and w.events._file is None


def test_send_keeps_the_base_contract_for_custom_messages() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    # anywidget replies to its commands through Widget.send: a dict without a "type".
    w.send({"id": 1, "kind": "anywidget-command-response", "response": "ok"}, [b"buf"])
    assert browser.sent[-1]["content"] == {"id": 1, "kind": "anywidget-command-response",
                                            "response": "ok"}  # fmt: skip
    with pytest.raises(RuntimeError, match="Not connected"):
        w.send({"type": "response.create"})


def test_mute_refuses_what_is_not_a_boolean_and_budgets_refuse_nonsense() -> None:
    w = RealtimeWidget(endpoint="local")
    with pytest.raises(TypeError, match="True or False"):
        w.mute("yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_duration must be a positive number"):
        RealtimeWidget(endpoint="local", max_duration=-1)
