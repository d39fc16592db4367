"""A saved session comes back as Python objects with no key and no call: Session.load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realtime_widget import Session
from realtime_widget.config import build_session, resolve_endpoint
from realtime_widget.transports.websocket import SocketTransport


def to_fahrenheit(celsius: float) -> float:
    """Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32


async def test_a_saved_session_loads_with_its_conversation_metrics_and_log(tmp_path: Path) -> None:
    live = Session(
        build_session(turn_detection=None, instructions="Be brief."),
        endpoint=resolve_endpoint("local", api_key=None),
        tools=[to_fahrenheit],
        log_path=tmp_path / "session.jsonl",
    )
    live.attach(SocketTransport(live))
    ready = live.wait_for("session.updated")
    live.connect()
    await ready
    await live.ask("hello")
    await live.ask("call to_fahrenheit with celsius=21")
    live.disconnect()

    saved = Session.load(tmp_path / "session.jsonl")
    assert [(t.role, t.text) for t in saved.transcript] == [
        (t.role, t.text) for t in live.transcript
    ]
    assert [(c.name, c.output) for c in saved.conversation.calls()] == [("to_fahrenheit", "69.8")]
    assert len(saved.metrics.turns) == len(live.metrics.turns) == 3
    assert saved.totals["cost"] == live.metrics.totals()["cost"] > 0
    assert len(saved.events) == len(live.events)
    assert saved.config["instructions"] == "Be brief."
    # A record: it neither calls nor sends, and says so.
    with pytest.raises(RuntimeError, match="has no call"):
        saved.connect()
    with pytest.raises(RuntimeError, match="Not connected"):
        saved.say("hello again")


def test_what_is_not_a_saved_session_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="to_jsonl"):
        Session.load(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"type": "session.created"}) + "\n")
    with pytest.raises(ValueError, match="line 1, is not an event record"):
        Session.load(bad)


async def test_hanging_up_while_the_socket_opens_closes_the_call() -> None:
    session = Session(
        build_session(turn_detection=None), endpoint=resolve_endpoint("local", api_key=None)
    )
    session.attach(SocketTransport(session))
    ended = session.wait_for("session.created", timeout=10)  # fails at once when the call ends
    session.connect()
    session.disconnect()  # before the socket is open
    with pytest.raises(Exception, match="ended before the event came"):
        await ended
    assert session.status == "closed"
