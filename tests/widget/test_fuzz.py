"""Malformed or unexpected input never breaks the widget's Python side (property-based)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_widget import RealtimeWidget

from .browser import FakeBrowser

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
SERVER_TYPES = st.sampled_from([
    "session.created", "session.updated", "conversation.item.added", "conversation.item.done",
    "conversation.item.deleted", "conversation.item.truncated", "response.created",
    "response.done", "response.output_audio_transcript.delta", "response.output_text.done",
    "response.function_call_arguments.done", "input_audio_buffer.speech_started",
    "output_audio_buffer.started", "rate_limits.updated", "error", "something.new",
])  # fmt: skip


def event_strategy() -> st.SearchStrategy[dict[str, Any]]:
    """Events of known types with fields of any shape (and any type's fields anywhere)."""
    fields = st.dictionaries(
        st.sampled_from(["item", "item_id", "response", "response_id", "delta", "session",
                         "error", "call_id", "name", "arguments", "previous_item_id",
                         "event_id", "transcript", "rate_limits", "audio_end_ms"]),
        JSON, max_size=6,
    )  # fmt: skip
    return st.builds(lambda t, f: {**f, "type": t}, SERVER_TYPES, fields)


WIDGET = RealtimeWidget(endpoint="local")
BROWSER = FakeBrowser(WIDGET)
WIDGET.connect()
BROWSER.status("connected", call_id="rtc_fuzz")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_strategy(), max_size=8))
def test_arbitrary_server_events_are_recorded_and_never_raise(events: list[dict[str, Any]]) -> None:
    before = WIDGET.events.total
    BROWSER.events(*events)
    assert WIDGET.events.total == before + len(events)
    # Everything a user reads stays readable.
    assert isinstance(WIDGET.transcript.to_markdown(), str)
    assert isinstance(WIDGET.metrics.totals(), dict)
    assert isinstance(repr(WIDGET.conversation), str)


KINDS = st.sampled_from(["hello", "events", "status", "request", "reply", "teleport"])
FIELDS = st.sampled_from(
    ["kind", "events", "status", "error", "step", "call_id", "muted", "microphone",
     "max_message_size", "id", "op", "sdp", "event", "dir"]
)  # fmt: skip
MESSAGES = JSON | st.builds(
    lambda kind, fields: {**fields, "kind": kind},
    KINDS | JSON,
    st.dictionaries(FIELDS, JSON, max_size=5),
)


@settings(max_examples=400, deadline=None)
@given(MESSAGES)
def test_arbitrary_browser_messages_are_refused_or_applied_never_raise(message: Any) -> None:
    # FakeBrowser.post calls the widget's handler itself: an exception here fails the test
    # (ipywidgets' dispatcher would have logged it and gone on).
    BROWSER.post(message)
    assert WIDGET.status in ("idle", "connecting", "connected", "closed", "error")


def test_a_kind_of_the_wrong_type_is_refused_not_raised() -> None:
    BROWSER.post({"kind": []})
    assert "unknown message kind []" in WIDGET.notices[-1]
