"""Metrics from event sequences recorded on the local server (tests/data/*.jsonl, record.py).

Expected marks are read back from the recordings by a plain scan (the t_kernel of the event
that defines each mark); token counts and costs are written out by hand from the recorded usage.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from realtime_widget.session import metrics as metrics_module
from realtime_widget.session.log import EventRecord
from realtime_widget.session.metrics import PRICES, Metrics, Prices, TurnMetrics, cost

DATA = Path(__file__).parent.parent / "data"

# The published gpt-realtime prices (USD per 1M tokens); the recordings' model, gpt-realtime-2,
# is assumed to cost the same until real figures are known.
# OpenAI's published prices per million tokens: text in/cached/out, audio in/cached/out,
# image in/cached.
GPT_REALTIME = Prices(4.00, 0.40, 16.00, 32.00, 0.40, 64.00, 5.00, 0.50)
GPT_REALTIME_MINI = Prices(0.60, 0.06, 2.40, 10.00, 0.30, 20.00, 0.80, 0.08)
M = 1_000_000


def load(name: str) -> list[EventRecord]:
    records = []
    for line in (DATA / f"{name}.jsonl").read_text().splitlines():
        raw = json.loads(line)
        records.append(
            EventRecord(raw["direction"], raw["event"], raw["t_browser"], raw["t_kernel"])
        )
    return records


def replay(*names: str, **options: Any) -> Metrics:
    m = Metrics(**options)
    for name in names:
        for record in load(name):
            m.apply(record)
    return m


def t_of(records: list[EventRecord], type_: str, n: int = 0, direction: str = "in") -> float:
    """The kernel time of the n-th event of this type and direction."""
    found = [r.t_kernel for r in records if r.type == type_ and r.direction == direction]
    return found[n]


def check_segments(turn: TurnMetrics) -> None:
    segments = turn.segments()
    assert turn.total_ms is not None
    assert math.isclose(sum(segments.values()), turn.total_ms, abs_tol=1e-6)
    assert all(v >= 0 for v in segments.values())
    marks = list(turn.marks().values())
    assert turn.total_ms == marks[-1] - marks[0]


def test_the_price_table() -> None:
    assert PRICES["gpt-realtime"] == GPT_REALTIME
    assert PRICES["gpt-realtime-mini"] == GPT_REALTIME_MINI
    # The newer models are assumptions (same as their published relative), documented as such.
    for model in ("gpt-realtime-2", "gpt-realtime-2.1", "gpt-realtime-1.5"):
        assert PRICES[model] == replace(GPT_REALTIME, assumed=True)
    assert PRICES["gpt-realtime-2.1-mini"] == replace(GPT_REALTIME_MINI, assumed=True)
    assert not PRICES["gpt-realtime"].assumed
    assert "ASSUMED" in Path(metrics_module.__file__).read_text()
    assert "assumed" in (metrics_module.__doc__ or "")


def test_a_typed_turn_answered_in_speech() -> None:
    records = load("text_turn")
    m = replay("text_turn")
    [turn] = m.turns
    assert turn.status == "completed"
    assert (
        turn.response_id
        == records[[r.type for r in records].index("response.created")].event["response"]["id"]
    )
    assert turn.speech_stopped is None and turn.committed is None
    assert turn.requested == t_of(records, "response.create", direction="out")
    assert turn.response_created == t_of(records, "response.created")
    assert turn.first_delta == t_of(records, "response.output_audio_transcript.delta")
    assert turn.audio_started == t_of(records, "output_audio_buffer.started")
    assert turn.audio_stopped == t_of(records, "output_audio_buffer.stopped")
    assert turn.done == t_of(records, "response.done")
    # Recorded order: delta before playback starts, and the audio drains after response.done.
    assert list(turn.segments()) == [
        "to_response",
        "first_delta",
        "to_audio",
        "speaking",
        "playout",
    ]
    check_segments(turn)
    assert turn.total_ms == turn.audio_stopped - turn.requested
    assert turn.latency_ms == turn.audio_started - turn.requested
    # usage: text in 18; out text 4, audio 29.
    assert turn.usage is not None and turn.usage["total_tokens"] == 51
    expected = (18 * 4.00 + 4 * 16.00 + 29 * 64.00) / M
    assert turn.cost == pytest.approx(expected, abs=1e-12)
    assert round(turn.cost, 2) == 0.00
    assert turn.model == "gpt-realtime-2"
    assert m.session_model == "gpt-realtime-2"


def test_a_spoken_turn_is_timed_from_speech_stopped() -> None:
    records = load("voice_turn")
    m = replay("voice_turn")
    [turn] = m.turns
    assert turn.status == "completed"
    assert turn.speech_stopped == t_of(records, "input_audio_buffer.speech_stopped")
    assert turn.committed == t_of(records, "input_audio_buffer.committed")
    assert turn.requested is None
    assert turn.latency_ms == turn.audio_started - turn.speech_stopped  # type: ignore[operator]
    assert list(turn.segments()) == [
        "vad",
        "to_response",
        "first_delta",
        "to_audio",
        "speaking",
        "playout",
    ]
    check_segments(turn)
    assert turn.total_ms == turn.audio_stopped - turn.speech_stopped  # type: ignore[operator]
    # The transcription completed after the reply had started: it changes nothing here.
    assert (
        t_of(records, "conversation.item.input_audio_transcription.completed") > turn.audio_started
    )  # type: ignore[operator]
    # usage: in text 16, audio 9; out text 8, audio 53.
    expected = (16 * 4.00 + 9 * 32.00 + 8 * 16.00 + 53 * 64.00) / M
    assert turn.cost == pytest.approx(expected, abs=1e-12)


def test_a_barge_in_cancels_the_first_turn_and_times_the_second_from_speech() -> None:
    records = load("barge_in")
    m = replay("barge_in")
    first, second = m.turns
    assert [first.status, second.status] == ["cancelled", "completed"]
    # The cut reply: cleared, never stopped; the speech that cut it belongs to the next turn.
    assert first.audio_stopped == t_of(records, "output_audio_buffer.cleared")
    assert first.speech_stopped is None and first.committed is None
    assert first.requested == t_of(records, "response.create", direction="out")
    assert first.latency_ms == first.audio_started - first.requested  # type: ignore[operator]
    assert second.speech_stopped == t_of(records, "input_audio_buffer.speech_stopped")
    assert second.committed == t_of(records, "input_audio_buffer.committed")
    assert second.requested is None
    assert second.audio_stopped == t_of(records, "output_audio_buffer.stopped")
    assert second.latency_ms == second.audio_started - second.speech_stopped  # type: ignore[operator]
    for turn in (first, second):
        check_segments(turn)
    assert first.cost == pytest.approx((32 * 4.00 + 4 * 16.00 + 91 * 64.00) / M, abs=1e-12)
    assert second.cost == pytest.approx(
        (36 * 4.00 + 10 * 32.00 + 8 * 16.00 + 54 * 64.00) / M, abs=1e-12
    )
    assert m.rate_limits == [
        {"name": "requests", "limit": 5000, "remaining": 4998, "reset_seconds": 60.0},
        {"name": "tokens", "limit": 400000, "remaining": 399765, "reset_seconds": 60.0},
    ]


def test_a_tool_round_with_tool_time_and_cached_input() -> None:
    records = load("tool_call")
    m = replay("tool_call")
    call, answer = m.turns
    assert [call.status, answer.status] == ["completed", "completed"]
    # The call streams arguments and has no audio: its latency ends at the first delta.
    assert call.first_delta == t_of(records, "response.function_call_arguments.delta")
    assert call.audio_started is None and call.audio_stopped is None
    assert call.latency_ms == call.first_delta - call.requested  # type: ignore[operator]
    assert list(call.segments()) == ["to_response", "first_delta", "streaming"]
    assert answer.requested == t_of(records, "response.create", 1, direction="out")
    assert answer.first_delta == t_of(records, "response.output_audio_transcript.delta")
    for turn in (call, answer):
        check_segments(turn)
    m.add_tool_time(call.response_id, 120.0)
    m.add_tool_time(call.response_id, 5.5)
    m.add_tool_time("resp_unknown", 99.0)  # ignored
    assert m.turn(call.response_id).tool_ms == 125.5  # type: ignore[union-attr]
    assert m.turn(answer.response_id).tool_ms == 0.0  # type: ignore[union-attr]
    # usage 1: text in 75; out text 5. usage 2: text in 90 of which 64 cached; out text 18,
    # audio 100.
    assert call.cost == pytest.approx((75 * 4.00 + 5 * 16.00) / M, abs=1e-12)
    assert answer.usage["input_token_details"]["cached_tokens"] == 64  # type: ignore[index]
    expected = (26 * 4.00 + 64 * 0.40 + 18 * 16.00 + 100 * 64.00) / M
    assert answer.cost == pytest.approx(expected, abs=1e-12)
    assert answer.cost == pytest.approx(0.0068176, abs=1e-12)


@pytest.mark.parametrize("with_event_id", [True, False])
def test_a_refused_response_create_makes_no_turn_and_is_forgotten(with_event_id: bool) -> None:
    records = load("queued_response")
    if not with_event_id:  # then the error's code alone says which create was refused
        records = [
            EventRecord(
                r.direction,
                {k: v for k, v in r.event.items() if k != "event_id"}
                if r.type == "response.create"
                else r.event,
                r.t_browser,
                r.t_kernel,
            )
            for r in records
        ]
    errors = [r.event for r in records if r.type == "error"]
    assert errors[0]["error"]["code"] == "conversation_already_has_active_response"
    m = Metrics()
    for record in records:
        m.apply(record)
    [turn] = m.turns
    assert turn.requested == t_of(records, "response.create", 0, direction="out")
    assert m.totals()["turns"] == 1
    # A later server-started response is not given the refused create's time.
    m.apply(EventRecord("in", {"type": "response.created", "response": {"id": "r_vad"}}, 0, 9e12))
    assert m.turn("r_vad").requested is None  # type: ignore[union-attr]


def test_totals_of_all_the_recordings() -> None:
    names = ["text_turn", "voice_turn", "barge_in", "tool_call", "queued_response"]
    m = replay(*names)
    totals = m.totals()
    assert totals["turns"] == 7
    assert totals["input_tokens"] == 18 + 25 + 32 + 46 + 75 + 90 + 18
    assert totals["output_tokens"] == 33 + 61 + 95 + 62 + 5 + 118 + 33
    assert totals["total_tokens"] == 304 + 407
    by_hand = 0.001992 + 0.003872 + 0.006016 + 0.004048 + 0.000380 + 0.0068176 + 0.001992
    assert totals["cost"] == pytest.approx(by_hand, abs=1e-12)
    assert round(totals["cost"], 2) == 0.03
    assert totals["cost_complete"] is True
    latencies = [t.latency_ms for t in m.turns]
    assert None not in latencies
    assert totals["median_latency_ms"] == statistics.median(latencies)  # type: ignore[type-var]
    json.dumps(totals)  # a synced trait
    assert "7 turns" in repr(m) and "7 turns" in m._repr_html_()


def test_model_override_unknown_models_and_date_suffixes() -> None:
    mini = replay("text_turn", model="gpt-realtime-mini")
    expected = (18 * 0.60 + 4 * 2.40 + 29 * 20.00) / M
    assert mini.turns[0].cost == pytest.approx(expected, abs=1e-12)
    custom = replay("text_turn", prices={"gpt-realtime-2": Prices(1, 1, 1, 1, 1, 1)})
    assert custom.turns[0].cost == pytest.approx(51 / M, abs=1e-12)
    unknown = replay("text_turn", "voice_turn", model="someone-elses-model")
    assert [t.cost for t in unknown.turns] == [None, None]
    assert unknown.totals()["cost"] is None
    assert unknown.totals()["cost_complete"] is False
    assert unknown.totals()["total_tokens"] == 51 + 86
    usage = load("text_turn")[-3].event["response"]["usage"]
    assert cost(usage, "gpt-realtime-2025-08-28") == cost(usage, "gpt-realtime")
    assert cost(usage, "gpt-realtime-mini-2025-12-15") == cost(usage, "gpt-realtime-mini")
    assert cost(usage, "gpt-4o-realtime-preview") is None


def test_partial_cost_when_the_model_changes_to_an_unknown_one() -> None:
    m = replay("text_turn")
    m.apply(EventRecord("in", {"type": "session.updated", "session": {"model": "x-1"}}, 0, 0))
    for record in load("voice_turn")[1:]:  # skip its session.created
        m.apply(record)
    totals = m.totals()
    assert totals["cost"] == pytest.approx(0.001992, abs=1e-12)
    assert totals["cost_complete"] is False


def test_cost_refuses_to_guess() -> None:
    full = {
        "input_tokens": 10,
        "output_tokens": 5,
        "input_token_details": {
            "text_tokens": 4,
            "audio_tokens": 6,
            "cached_tokens": 3,
            "cached_tokens_details": {"text_tokens": 1, "audio_tokens": 2},
        },
        "output_token_details": {"text_tokens": 2, "audio_tokens": 3},
    }
    expected = (3 * 4.00 + 1 * 0.40 + 4 * 32.00 + 2 * 0.40 + 2 * 16.00 + 3 * 64.00) / M
    assert cost(full, "gpt-realtime") == pytest.approx(expected, abs=1e-15)
    no_details = {"input_tokens": 10, "output_tokens": 5}
    assert cost(no_details, "gpt-realtime") is None
    cached_unsplit = json.loads(json.dumps(full))
    del cached_unsplit["input_token_details"]["cached_tokens_details"]
    assert cost(cached_unsplit, "gpt-realtime") is None
    images = json.loads(json.dumps(full))
    images["input_tokens"] = 17
    images["input_token_details"]["image_tokens"] = 7
    images["input_token_details"]["cached_tokens_details"]["image_tokens"] = 2
    with_images = expected + (5 * 5.00 + 2 * 0.50) / M
    assert cost(images, "gpt-realtime") == pytest.approx(with_images, abs=1e-15)
    no_image_price = {"x": Prices(4.0, 0.4, 16.0, 32.0, 0.4, 64.0)}
    assert cost(images, "x", no_image_price) is None  # image tokens with no image price
    assert cost("usage", "gpt-realtime") is None
    assert cost({}, "gpt-realtime") == 0.0


def test_segments_follow_the_marks_whatever_their_order() -> None:
    turn = TurnMetrics(
        "r", requested=0.0, response_created=10.0, audio_started=30.0, first_delta=50.0, done=80.0
    )
    assert turn.segments() == {
        "to_response": 10.0,
        "to_audio": 20.0,
        "to_first_delta": 20.0,
        "streaming": 30.0,
    }
    assert turn.latency_ms == 30.0
    text_only = TurnMetrics("t", requested=100.0, response_created=110.0, first_delta=400.0)
    assert text_only.latency_ms == 300.0
    assert TurnMetrics("e").segments() == {} and TurnMetrics("e").total_ms is None
    for name in ["text_turn", "voice_turn", "barge_in", "tool_call", "queued_response"]:
        for t in replay(name).turns:
            check_segments(t)


def test_memory_is_bounded() -> None:
    m = Metrics(maxlen=100, model="gpt-realtime")
    for i in range(50_000):
        rid = f"r{i}"
        m.apply(EventRecord("out", {"type": "response.create"}, 0, i * 10.0))
        m.apply(
            EventRecord(
                "in", {"type": "response.created", "response": {"id": rid}}, 0, i * 10.0 + 1
            )
        )
        usage = {
            "input_tokens": 1,
            "output_tokens": 2,
            "input_token_details": {"text_tokens": 1, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 2, "audio_tokens": 0},
        }
        m.apply(
            EventRecord(
                "in",
                {
                    "type": "response.done",
                    "response": {"id": rid, "status": "completed", "usage": usage},
                },
                0,
                i * 10.0 + 5,
            )
        )
    turns = m.turns
    assert len(turns) == 100
    assert [t.response_id for t in turns] == [f"r{i}" for i in range(49_900, 50_000)]
    totals = m.totals()
    assert totals["turns"] == 50_000
    assert totals["total_tokens"] == 150_000
    assert totals["cost"] == pytest.approx(50_000 * (4.00 + 2 * 16.00) / M)
    assert len(m._turns) == 100
    # Creates that never get a response don't pile up either.
    for i in range(10_000):
        m.apply(EventRecord("out", {"type": "response.create"}, 0, float(i)))
    assert len(m._requests) <= 64


def test_the_median_latency_follows_kept_turns_as_marks_arrive_and_turns_are_dropped() -> None:
    m = Metrics(maxlen=5)
    expected: dict[str, float] = {}
    for i in range(40):
        rid, t0 = f"r{i}", i * 1000.0
        m.apply(EventRecord("out", {"type": "response.create"}, 0, t0))
        m.apply(EventRecord("in", {"type": "response.created", "response": {"id": rid}}, 0, t0))
        delta = {"type": "response.output_audio_transcript.delta", "response_id": rid}
        m.apply(EventRecord("in", delta, 0, t0 + 50 + i % 7))
        # Audio starting later replaces the first delta as the latency's end.
        if i % 3 == 0:
            started = {"type": "output_audio_buffer.started", "response_id": rid}
            m.apply(EventRecord("in", started, 0, t0 + 400 + i))
        expected[rid] = m.turn(rid).latency_ms  # type: ignore[union-attr]
        kept = [expected[t.response_id] for t in m.turns]
        assert m.totals()["median_latency_ms"] == statistics.median(kept)
    assert len(m.turns) == 5


def test_malformed_input_is_ignored() -> None:
    m = replay("text_turn")
    before = (m.turns, m.totals(), m.rate_limits)

    class Weird:
        def __init__(self) -> None:
            self.direction = "in"
            self.event = {"type": "response.created", "response": {"id": "weird"}}
            self.t_kernel = "noon"

    junk: list[Any] = [
        None,
        Weird(),
        EventRecord("in", [], 0, 0),  # type: ignore[arg-type]
        EventRecord("in", {}, 0, 0),
        EventRecord("in", {"type": 7}, 0, 0),
        EventRecord("in", {"type": "response.created"}, 0, 0),
        EventRecord("in", {"type": "response.created", "response": None}, 0, 0),
        EventRecord("in", {"type": "response.created", "response": {"id": 3}}, 0, 0),
        EventRecord("in", {"type": "response.created", "response": {"id": "nan"}}, 0, math.nan),
        EventRecord("in", {"type": "response.done", "response": "done"}, 0, 0),
        EventRecord("in", {"type": "response.done", "response": {"id": ["x"]}}, 0, 0),
        EventRecord("in", {"type": "response.output_text.delta", "response_id": {}}, 0, 0),
        EventRecord("in", {"type": "output_audio_buffer.started", "response_id": None}, 0, 0),
        EventRecord("in", {"type": "output_audio_buffer.stopped"}, 0, 0),
        EventRecord("in", {"type": "rate_limits.updated", "rate_limits": "many"}, 0, 0),
        EventRecord("in", {"type": "session.updated", "session": []}, 0, 0),
        EventRecord("in", {"type": "session.updated", "session": {"model": 5}}, 0, 0),
        EventRecord("in", {"type": "error"}, 0, 0),
        EventRecord("in", {"type": "error", "error": "boom"}, 0, 0),
        EventRecord("out", {"type": "response.create"}, 0, math.inf),
        EventRecord("sideways", {"type": "response.created"}, 0, 0),  # type: ignore[arg-type]
    ]
    for record in junk:
        m.apply(record)
    m.add_tool_time(None, 5)  # type: ignore[arg-type]
    m.add_tool_time(m.turns[0].response_id, "slow")  # type: ignore[arg-type]
    assert (m.turns, m.totals(), m.rate_limits) == before
    # A response.done with a strange usage still ends its turn, without a cost.
    odd = Metrics()
    odd.apply(
        EventRecord("in", {"type": "session.created", "session": {"model": "gpt-realtime"}}, 0, 0)
    )
    odd.apply(EventRecord("in", {"type": "response.created", "response": {"id": "r"}}, 0, 0))
    bad_usage = {"input_tokens": True, "output_tokens": -4, "input_token_details": "x"}
    odd.apply(
        EventRecord(
            "in", {"type": "response.done", "response": {"id": "r", "usage": bad_usage}}, 0, 1
        )
    )
    [turn] = odd.turns
    assert turn.done == 1 and turn.status is None and turn.cost == 0.0
    assert odd.totals()["total_tokens"] == 0
    # A response.done whose start was missed counts in the totals without making a turn.
    usage = load("text_turn")[-3].event["response"]["usage"]
    odd.apply(
        EventRecord("in", {"type": "response.done", "response": {"id": "r2", "usage": usage}}, 0, 2)
    )
    assert len(odd.turns) == 1
    assert odd.totals()["turns"] == 1 and odd.totals()["total_tokens"] == 51


def test_concurrent_writers_and_readers() -> None:
    m = Metrics(maxlen=1000)
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(2000):
                rid = f"{k}-{i}"
                m.apply(
                    EventRecord("in", {"type": "response.created", "response": {"id": rid}}, 0, i)
                )
                m.apply(
                    EventRecord("in", {"type": "response.done", "response": {"id": rid}}, 0, i + 1)
                )
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(200):
                m.totals()
                m.turns  # noqa: B018
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert m.totals()["turns"] == 8000
    assert len(m.turns) == 1000


def test_unknown_keywords_are_refused_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match="'maxlen'"):
        Metrics(max_len=5)
    with pytest.raises(ValueError):
        Metrics(maxlen=0)


def test_dataframe_and_plot() -> None:
    import matplotlib  # the analysis extra (in dev)

    matplotlib.use("Agg")
    m = replay("barge_in", "tool_call")
    df = m.to_dataframe()
    assert list(df["status"]) == ["cancelled", "completed", "completed", "completed"]
    assert list(df.columns[:4]) == ["started", "response_id", "status", "latency_ms"]
    assert str(df["started"].dtype).startswith("datetime64")  # readable times, not epoch floats
    assert "speech_stopped_ms" not in df.columns  # the marks only on request, relative
    marks = m.to_dataframe(marks=True)
    assert (marks["response_created_ms"].dropna() >= 0).all()
    assert df["cost"].sum() == pytest.approx(0.006016 + 0.004048 + 0.000380 + 0.0068176)
    ax = m.plot()
    bars = [p for p in ax.patches]
    assert len(bars) == sum(len(t.segments()) for t in m.turns)
    assert sum(b.get_width() for b in bars) == pytest.approx(sum(t.total_ms for t in m.turns))  # type: ignore[misc]
    legend = ax.get_legend()
    labels = {text.get_text() for text in legend.get_texts()}
    assert {"to_response", "speaking", "vad"} <= labels
    # The legend stands beside the axes, so it hides no bar (few turns: it used to cover them).
    ax.figure.canvas.draw()
    box = legend.get_window_extent()
    assert box.x0 >= ax.get_window_extent().x1


def test_missing_optional_dependencies_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(metrics_module.importlib, "import_module", refuse)
    with pytest.raises(ImportError, match="pip install pandas"):
        Metrics().to_dataframe()
    with pytest.raises(ImportError, match="pip install matplotlib"):
        Metrics().plot()


def test_marks_go_to_the_next_response_only() -> None:
    # A spoken turn, then a typed one: the speech marks are not carried over.
    m = replay("voice_turn", "text_turn")
    spoken, typed = m.turns
    assert spoken.speech_stopped is not None and spoken.requested is None
    assert typed.speech_stopped is None and typed.committed is None
    assert typed.requested is not None
    assert typed.latency_ms == typed.audio_started - typed.requested  # type: ignore[operator]
    # Two creates in flight: each response gets its own, in order.
    m = Metrics()
    m.apply(EventRecord("out", {"type": "response.create"}, 0, 100))
    m.apply(
        EventRecord(
            "out", {"type": "response.create", "response": {"conversation": "none"}}, 0, 200
        )
    )
    m.apply(EventRecord("in", {"type": "response.created", "response": {"id": "a"}}, 0, 250))
    m.apply(EventRecord("in", {"type": "response.created", "response": {"id": "b"}}, 0, 300))
    assert [t.requested for t in m.turns] == [100, 200]
