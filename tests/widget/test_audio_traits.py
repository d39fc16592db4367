"""The audio controls from Python: push_to_talk and volume (synced traits the views also set),
turn_detection (the session's, changed live)."""

from __future__ import annotations

import pytest
import traitlets

from realtime_widget import RealtimeWidget
from realtime_widget.events import InvalidEventError

from .browser import FakeBrowser


def test_push_to_talk_and_volume_are_synced_and_set_from_either_side() -> None:
    w = RealtimeWidget(endpoint="local", push_to_talk=True, volume=0.5)
    state = w.get_state()
    assert (state["push_to_talk"], state["volume"]) == (True, 0.5)
    # A view's checkbox and slider arrive as state updates from the browser.
    w.set_state({"push_to_talk": False, "volume": 0.25})
    assert (w.push_to_talk, w.volume) == (False, 0.25)
    with pytest.raises(traitlets.TraitError):
        w.volume = 1.5


def test_turn_detection_reads_and_changes_the_session() -> None:
    w = RealtimeWidget(endpoint="local")
    assert w.turn_detection == {"type": "server_vad"}  # the API's default
    w.turn_detection = "semantic_vad"  # not in a call: the next one is made with it
    assert w.session["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}
    browser = FakeBrowser(w)
    w.connect()
    browser.status("connected")
    w.turn_detection = {"type": "server_vad", "silence_duration_ms": 800}
    event = browser.custom("send")[-1]["events"][0]
    assert event["type"] == "session.update"
    assert event["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 800
    w.turn_detection = None
    assert browser.custom("send")[-1]["events"][0]["session"]["audio"]["input"] == {
        "turn_detection": None
    }
    assert w.turn_detection is None
    with pytest.raises(InvalidEventError, match="semantic_vad"):
        w.turn_detection = {"type": "loud_vad"}
    assert w.turn_detection is None  # refused: nothing changed


def test_turn_detection_cannot_come_back_while_push_to_talk_holds_it_off() -> None:
    w = RealtimeWidget(endpoint="local", push_to_talk=True)
    with pytest.raises(ValueError, match="push_to_talk = False"):
        w.turn_detection = "server_vad"
    w.turn_detection = None  # agrees with push-to-talk


def test_push_to_talk_turns_the_next_calls_turn_detection_off_and_back() -> None:
    w = RealtimeWidget(endpoint="local", turn_detection={"type": "semantic_vad"}, push_to_talk=True)
    assert w.turn_detection is None  # the call is made (and its key minted) with VAD off
    w.push_to_talk = False
    assert w.turn_detection["type"] == "semantic_vad"  # the one it replaced
    w.set_state({"push_to_talk": True})  # a view's checkbox
    assert w.session["audio"]["input"]["turn_detection"] is None
