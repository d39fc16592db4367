"""A saved session replayed into a widget: its events go to the page as a replay (never to a
server), with their original spacing scaled by ``speed``, and the widget's Python objects follow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from realtime_widget import RealtimeWidget, Session

from .browser import FakeBrowser


def _message(item_id: str, role: str, kind: str, text: str) -> dict[str, object]:
    content = [{"type": kind, "text": text}]
    return {
        "id": item_id,
        "type": "message",
        "role": role,
        "status": "completed",
        "content": content,
    }


def saved_session(path: Path, gap_ms: float = 200.0) -> Path:
    """A short saved session: a typed turn and its reply, the reply `gap_ms` after the turn."""
    t = 1_700_000_000_000.0
    user = _message("item_u", "user", "input_text", "hello")
    reply = _message("item_a", "assistant", "output_text", "You said: hello")
    usage = {"total_tokens": 10, "input_tokens": 6, "output_tokens": 4}
    done = {"id": "resp_1", "status": "completed", "output": [{"id": "item_a"}], "usage": usage}
    events = [
        ("in", t, {"type": "session.created", "session": {"model": "gpt-realtime-2"}}),
        ("out", t + 10, {"type": "conversation.item.create", "item": {**user, "id": None}}),
        ("in", t + 20, {"type": "conversation.item.done", "item": user}),
        ("out", t + 30, {"type": "response.create"}),
        ("in", t + 30 + gap_ms, {"type": "response.created", "response": {"id": "resp_1"}}),
        ("in", t + 40 + gap_ms, {"type": "conversation.item.done", "item": reply}),
        ("in", t + 50 + gap_ms, {"type": "response.done", "response": done}),
    ]
    with path.open("w") as out:
        for direction, at, event in events:
            record = {"direction": direction, "t_browser": at, "t_kernel": at, "event": event}
            out.write(json.dumps(record) + "\n")
    return path


def replayed(browser: FakeBrowser) -> list[dict[str, object]]:
    return [r for m in browser.custom("replay") for r in m["events"]]  # type: ignore[union-attr]


def test_at_once_every_event_reaches_the_page_and_python_follows(tmp_path: Path) -> None:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    w.replay(saved_session(tmp_path / "s.jsonl"), speed=None)
    events = replayed(browser)
    assert [e["event"]["type"] for e in events][-1] == "response.done"  # type: ignore[index]
    assert len(events) == 7 and browser.custom("send") == []  # drawn, not sent anywhere
    assert [(t.role, t.text) for t in w.transcript] == [
        ("user", "hello"),
        ("assistant", "You said: hello"),
    ]
    assert w.totals["turns"] == 1
    assert [m["figures"]["response_id"] for m in browser.custom("turn")] == ["resp_1"]  # type: ignore[index]


async def test_with_timing_the_events_keep_their_spacing_scaled_by_speed(tmp_path: Path) -> None:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = w.replay(saved_session(tmp_path / "s.jsonl", gap_ms=400), speed=2)
    await task
    took = loop.time() - started
    assert took >= 0.2  # the reply came 400 ms after its request: 200 ms at speed 2
    # What happened together travels together; what came later, in a later message.
    batches = [[e["event"]["type"] for e in m["events"]] for m in browser.custom("replay")]  # type: ignore[index, union-attr]
    split = next(i for i, b in enumerate(batches) if "response.created" in b)
    assert "response.create" in [t for b in batches[:split] for t in b]
    assert sum(len(b) for b in batches) == 7


def test_a_loaded_session_shows_in_a_widget_that_cannot_call(tmp_path: Path) -> None:
    saved = Session.load(saved_session(tmp_path / "s.jsonl"))
    w = saved.show()
    browser = FakeBrowser(w)  # the page says hello: what was held for it arrives
    assert len(replayed(browser)) == 7
    assert w.session["model"] == "gpt-realtime-2"
    with pytest.raises(Exception, match="saved session: it has no call"):
        w.connect()


def test_a_replay_is_refused_during_a_call_and_with_a_wrong_speed(tmp_path: Path) -> None:
    path = saved_session(tmp_path / "s.jsonl")
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    with pytest.raises(ValueError, match="positive factor"):
        w.replay(path, speed=0)
    w.connect()
    browser.status("connected", call_id="rtc_1")
    with pytest.raises(RuntimeError, match="Disconnect first"):
        w.replay(path)
