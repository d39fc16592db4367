"""Per-turn latency, usage and cost from a session's events, both directions.

:class:`Metrics` reads every :class:`~realtime_widget.messages.EventRecord` (the widget feeds it
as events reach the kernel) and keeps one :class:`TurnMetrics` per response: its timeline on the
kernel's clock (speech stopped → committed → response created → first delta → audio started →
stopped → done), the time its tool calls took, its ``usage`` and what that cost.

>>> m = Metrics()
>>> m.apply(EventRecord("in", {"type": "response.created", "response": {"id": "r1"}}, 0, 1000))
>>> started = {"type": "output_audio_buffer.started", "response_id": "r1"}
>>> m.apply(EventRecord("in", started, 0, 1400))
>>> m.turns[0].segments()
{'to_audio': 400.0}

Prices: :data:`PRICES` holds USD per million tokens. Only ``gpt-realtime`` and
``gpt-realtime-mini`` have figures from OpenAI's published pricing (August 2025); the newer
models (``gpt-realtime-2``, ``-2.1``, ``-2.1-mini``, ``-1.5``) are **assumed** to cost the same as
``gpt-realtime`` (or ``gpt-realtime-mini`` for the mini) until someone checks: pass real prices
with ``Metrics(prices={...})`` or ``cost(..., prices={...})``. An unknown model gets no cost
(``None``), never a guess.
"""

from __future__ import annotations

import bisect
import difflib
import importlib
import itertools
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape
from typing import Any

from .log import EventRecord

__all__ = ["LIVE_PRICES", "PRICES", "LivePrices", "Metrics", "Prices", "TurnMetrics", "cost"]


@dataclass(frozen=True)
class Prices:
    """USD per one million tokens, by modality.

    >>> Prices(4.0, 0.4, 16.0, 32.0, 0.4, 64.0).audio_output
    64.0
    """

    text_input: float
    text_cached_input: float
    text_output: float
    audio_input: float
    audio_cached_input: float
    audio_output: float
    image_input: float | None = None  # None: image tokens make the cost unknown
    image_cached_input: float | None = None
    # Figures taken from another model's published price, not this model's own: costs made
    # with them say so wherever they are shown.
    assumed: bool = False


# Published (gpt-realtime GA, August 2025, images $5 / $0.50 cached; gpt-realtime-mini,
# October 2025, images $0.80 / $0.08 cached).
_GPT_REALTIME = Prices(4.00, 0.40, 16.00, 32.00, 0.40, 64.00, 5.00, 0.50)
_GPT_REALTIME_MINI = Prices(0.60, 0.06, 2.40, 10.00, 0.30, 20.00, 0.80, 0.08)

_ASSUMED = replace(_GPT_REALTIME, assumed=True)
_ASSUMED_MINI = replace(_GPT_REALTIME_MINI, assumed=True)

PRICES: dict[str, Prices] = {
    # ASSUMED: not in our references. These reuse gpt-realtime's (or gpt-realtime-mini's)
    # figures; override them with the real prices (Metrics(prices=...)) before trusting a cost.
    "gpt-realtime-2": _ASSUMED,
    "gpt-realtime-2.1": _ASSUMED,
    "gpt-realtime-2.1-mini": _ASSUMED_MINI,
    "gpt-realtime-1.5": _ASSUMED,
    # Published.
    "gpt-realtime": _GPT_REALTIME,
    "gpt-realtime-mini": _GPT_REALTIME_MINI,
}

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class LivePrices:
    """GPT-Live's price in USD per minute: active time, and (gpt-live-1.1, WebRTC sessions
    configured for it) standby time, billed per second (docs: voice-latency-cost)."""

    active_per_minute: float
    standby_per_minute: float | None = None


LIVE_PRICES: dict[str, LivePrices] = {
    "gpt-live-1": LivePrices(0.05),
    "gpt-live-1.1": LivePrices(0.05, 0.02),
}


def live_cost(usage: Mapping[str, Any], model: str | None) -> float | None:
    """The cost of a Live session's cumulative ``usage`` (``seconds``; ``active_seconds`` and
    ``paused_seconds`` when reported); None for a model with no known price.

    >>> live_cost({"seconds": 120}, "gpt-live-1")
    0.1
    """
    price = LIVE_PRICES.get(model or "") or LIVE_PRICES.get(_DATE_SUFFIX.sub("", model or ""))
    seconds = _finite(usage.get("seconds"))
    if price is None or seconds is None:
        return None
    paused = _finite(usage.get("paused_seconds")) or 0.0
    active = _finite(usage.get("active_seconds"))
    active = seconds - paused if active is None else active
    standby = price.standby_per_minute if price.standby_per_minute is not None else 0.0
    return round((active * price.active_per_minute + paused * standby) / 60, 6)


def _price_for(model: str | None, prices: Mapping[str, Prices] | None) -> Prices | None:
    if not isinstance(model, str):
        return None
    table: Mapping[str, Prices] = PRICES if prices is None else {**PRICES, **prices}
    found = table.get(model)
    if found is None:
        found = table.get(_DATE_SUFFIX.sub("", model))
    return found if isinstance(found, Prices) else None


def _count(value: Any) -> int:
    """A token count, or 0 for anything that isn't a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def cost(usage: Any, model: str, prices: Mapping[str, Prices] | None = None) -> float | None:
    """The USD cost of one ``response.done`` usage, or ``None`` if it can't be known.

    ``prices`` replaces or adds entries of :data:`PRICES`; a model name with a date suffix
    matches its base (``gpt-realtime-2025-08-28`` → ``gpt-realtime``). ``None`` for an unknown
    model, a usage that is not a dict, input or output tokens without their per-modality details,
    cached tokens without ``cached_tokens_details``, or image tokens on a model whose image price
    is unknown.

    >>> usage = {"input_tokens": 100, "output_tokens": 50,
    ...          "input_token_details": {"text_tokens": 100, "audio_tokens": 0, "cached_tokens": 0},
    ...          "output_token_details": {"text_tokens": 0, "audio_tokens": 50}}
    >>> round(cost(usage, "gpt-realtime"), 6)  # 100 × $4/M + 50 × $64/M
    0.0036
    >>> cost(usage, "some-other-model") is None
    True
    """
    price = _price_for(model, prices)
    if price is None or not isinstance(usage, dict):
        return None
    details_in = _dict(usage.get("input_token_details"))
    details_out = _dict(usage.get("output_token_details"))
    text_in = _count(details_in.get("text_tokens"))
    audio_in = _count(details_in.get("audio_tokens"))
    text_out = _count(details_out.get("text_tokens"))
    audio_out = _count(details_out.get("audio_tokens"))
    image_in = _count(details_in.get("image_tokens"))
    if image_in and (price.image_input is None or price.image_cached_input is None):
        return None
    if _count(usage.get("input_tokens")) > text_in + audio_in + image_in:
        return None  # tokens we can't attribute to a modality
    if _count(usage.get("output_tokens")) > text_out + audio_out:
        return None
    cached = _count(details_in.get("cached_tokens"))
    cached_details = details_in.get("cached_tokens_details")
    if cached and not isinstance(cached_details, dict):
        return None
    cached_details = _dict(cached_details)
    cached_text = min(_count(cached_details.get("text_tokens")), text_in)
    cached_audio = min(_count(cached_details.get("audio_tokens")), audio_in)
    cached_image = min(_count(cached_details.get("image_tokens")), image_in)
    dollars = (
        (text_in - cached_text) * price.text_input
        + cached_text * price.text_cached_input
        + text_out * price.text_output
        + (audio_in - cached_audio) * price.audio_input
        + cached_audio * price.audio_cached_input
        + audio_out * price.audio_output
    )
    if image_in:
        assert price.image_input is not None and price.image_cached_input is not None
        dollars += (image_in - cached_image) * price.image_input
        dollars += cached_image * price.image_cached_input
    return dollars / 1_000_000


def prices_for(model: str | None, prices: Mapping[str, Prices] | None = None) -> Prices | None:
    """The price table's entry for a model (a dated snapshot matches its base), or None.

    >>> prices_for("gpt-realtime-2").assumed
    True
    """
    return _price_for(model, prices)


# The marks of a turn, in the order they usually happen (ties keep this order).
MARKS = (
    "speech_stopped",
    "committed",
    "requested",
    "response_created",
    "first_delta",
    "audio_started",
    "audio_stopped",
    "done",
)

# Names of the intervals between two consecutive marks; other pairs are named "a→b".
_SEGMENT_NAMES = {
    ("speech_stopped", "committed"): "vad",
    ("speech_stopped", "requested"): "to_request",
    ("committed", "requested"): "to_request",
    ("speech_stopped", "response_created"): "to_response",
    ("committed", "response_created"): "to_response",
    ("requested", "response_created"): "to_response",
    ("response_created", "first_delta"): "first_delta",
    ("response_created", "audio_started"): "to_audio",
    ("first_delta", "audio_started"): "to_audio",
    ("audio_started", "first_delta"): "to_first_delta",
    ("audio_started", "audio_stopped"): "speaking",
    ("audio_started", "done"): "speaking",
    ("first_delta", "done"): "streaming",
    ("response_created", "done"): "generating",
    ("done", "audio_stopped"): "playout",
    ("audio_stopped", "done"): "to_done",
}


@dataclass
class TurnMetrics:
    """One response: its timeline (ms since the epoch, kernel clock; ``None`` when not seen),
    tool time, usage and cost.

    ``requested`` is the ``response.create`` this side sent for the turn, when there was one.

    >>> t = TurnMetrics("resp_1", speech_stopped=0.0, committed=300.0, response_created=320.0,
    ...                 audio_started=900.0, done=2000.0)
    >>> t.segments()
    {'vad': 300.0, 'to_response': 20.0, 'to_audio': 580.0, 'speaking': 1100.0}
    >>> t.total_ms, t.latency_ms
    (2000.0, 900.0)
    """

    response_id: str
    status: str | None = None
    speech_stopped: float | None = None
    committed: float | None = None
    requested: float | None = None
    response_created: float | None = None
    first_delta: float | None = None
    audio_started: float | None = None
    audio_stopped: float | None = None
    done: float | None = None
    tool_ms: float = 0.0
    usage: dict[str, Any] | None = None
    cost: float | None = None
    model: str | None = None

    def marks(self) -> dict[str, float]:
        """The known marks, in time order (ties in the usual order of events)."""
        known = [(name, getattr(self, name)) for name in MARKS]
        ordered = sorted(
            ((t, MARKS.index(name), name) for name, t in known if t is not None),
        )
        return {name: t for t, _, name in ordered}

    def segments(self) -> dict[str, float]:
        """Named intervals (ms) between consecutive known marks; they add up to ``total_ms``."""
        marks = list(self.marks().items())
        out: dict[str, float] = {}
        for (a, ta), (b, tb) in itertools.pairwise(marks):
            name = _SEGMENT_NAMES.get((a, b), f"{a}→{b}")
            if name in out:  # not with the table above, but never lose an interval
                name = f"{a}→{b}"
            out[name] = tb - ta
        return out

    @property
    def total_ms(self) -> float | None:
        """First known mark to last known mark."""
        times = list(self.marks().values())
        return times[-1] - times[0] if times else None

    @property
    def latency_ms(self) -> float | None:
        """What the user waits: from speech stopped (or, for a typed turn, the
        ``response.create`` sent) to audio started (or the first delta, for a text reply)."""
        start = self.speech_stopped if self.speech_stopped is not None else self.requested
        end = self.audio_started if self.audio_started is not None else self.first_delta
        if start is None or end is None:
            return None
        return end - start

    def _tokens(self, key: str) -> int:
        return _count(_dict(self.usage).get(key))


_DELTAS = frozenset(
    {
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
    }
)
_MAX_PENDING_REQUESTS = 64
# The incoming events metrics reads (the session routes only these, and response.create
# going out, to it).
FOLLOWS = _MARKED = _DELTAS | {
    "response.created",
    "response.done",
    "output_audio_buffer.started",
    "output_audio_buffer.stopped",
    "output_audio_buffer.cleared",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "rate_limits.updated",
    "session.created",
    "session.updated",
    "error",
}


def _sorted_median(values: list[float]) -> float:
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _local_zone() -> Any:
    return datetime.now().astimezone().tzinfo


def _refuse_unknown(unknown: Mapping[str, Any], valid: tuple[str, ...]) -> None:
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(valid)})"
        raise TypeError(f"Metrics() got an unknown keyword argument {name!r}{hint}")


class Metrics:
    """Turns, usage, cost and rate limits of a session, built from its events.

    Thread-safe (events arrive on comm threads while cells read); memory is bounded: the last
    ``maxlen`` turns are kept, while :meth:`totals` counts the whole session. ``model`` overrides
    the session's model (from ``session.created``/``updated``) for pricing; ``prices`` replaces
    or adds entries of :data:`PRICES`.

    >>> m = Metrics(model="gpt-realtime")
    >>> for direction, t, event in [
    ...     ("out", 1000, {"type": "response.create"}),
    ...     ("in", 1050, {"type": "response.created", "response": {"id": "r1"}}),
    ...     ("in", 1300, {"type": "response.output_text.delta", "response_id": "r1"}),
    ...     ("in", 1500, {"type": "response.done", "response": {"id": "r1"}}),
    ... ]:
    ...     m.apply(EventRecord(direction, event, t, t))
    >>> m.turns[0].latency_ms, m.totals()["turns"]
    (300.0, 1)
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        prices: Mapping[str, Prices] | None = None,
        maxlen: int = 10_000,
        default_model: str | None = None,
        **unknown: Any,
    ) -> None:
        _refuse_unknown(unknown, ("model", "prices", "maxlen", "default_model"))
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self.model = model
        # The model asked for, until the server says which it runs (session.created).
        self.default_model = default_model
        self.prices: dict[str, Prices] = {**PRICES, **(prices or {})}
        self.maxlen = maxlen
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._turns: OrderedDict[str, TurnMetrics] = OrderedDict()
        # The kept turns' known latencies, sorted, so totals() (run on every response.done) takes
        # the median without walking every turn: a long session stays linear.
        self._latency_of: dict[str, float] = {}
        self._latencies: list[float] = []
        self._session_model: str | None = None
        self._rate_limits: list[dict[str, Any]] = []
        self._speech_stopped: float | None = None
        self._committed: float | None = None
        self._requests: list[tuple[float, str | None]] = []  # (t, event_id) of sent creates
        self._count = 0
        self._input_tokens = 0
        self._output_tokens = 0
        self._cost = 0.0
        self._priced = 0
        self._unpriced = 0
        self._assumed = 0  # priced with assumed (not published) figures
        # GPT-Live: billed seconds and cost of the calls before this one, and of this call.
        self._live_before = (0.0, 0.0)
        self._live_now = (0.0, 0.0)
        self._live_seen = False

    # --- reading ------------------------------------------------------------------------------

    @property
    def turns(self) -> list[TurnMetrics]:
        """The kept turns, oldest first (copies: later events don't change them)."""
        with self._lock:
            return [
                replace(t, usage=dict(t.usage) if t.usage else t.usage)
                for t in self._turns.values()
            ]

    @property
    def rate_limits(self) -> list[dict[str, Any]]:
        """The latest ``rate_limits.updated`` (``[{name, limit, remaining, reset_seconds}]``)."""
        with self._lock:
            return [dict(r) for r in self._rate_limits]

    @property
    def session_model(self) -> str | None:
        """The model the server reported in ``session.created``/``session.updated``."""
        return self._session_model

    @property
    def pricing_model(self) -> str | None:
        """The model costs are computed for: ``model=`` if given, else the session's (as the
        server reported it, or as asked for until it has)."""
        if self.model is not None:
            return self.model
        return self._session_model if self._session_model is not None else self.default_model

    def turn(self, response_id: str) -> TurnMetrics | None:
        """The kept turn of this response, if any."""
        with self._lock:
            found = self._turns.get(response_id)
            return replace(found) if found is not None else None

    def totals(self) -> dict[str, Any]:
        """Session totals, JSON-ready (the widget syncs them to the front end).

        Whole-session counts, including turns no longer kept: ``turns`` counts
        ``response.created``; ``input_tokens``, ``output_tokens``, ``total_tokens`` and ``cost``
        count every ``response.done`` (one whose start was missed too). ``cost`` sums the
        responses that could be priced (``None`` if some had usage but none could);
        ``cost_complete`` says whether all could, ``prices_assumed`` whether some were priced
        with assumed figures (see :data:`PRICES`). ``median_latency_ms`` is over the kept turns
        with a known latency.

        >>> Metrics().totals()["turns"]
        0
        """
        with self._lock:
            latencies = self._latencies
            no_cost = self._priced == 0 and self._unpriced > 0
            live = {}
            if self._live_seen:  # GPT-Live: billed by the second, not by the token
                seconds = self._live_before[0] + self._live_now[0]
                live = {"seconds": seconds}
            return {
                "turns": self._count,
                "input_tokens": self._input_tokens,
                "output_tokens": self._output_tokens,
                "total_tokens": self._input_tokens + self._output_tokens,
                "cost": None if no_cost else self._cost + self._live_before[1] + self._live_now[1],
                **live,
                "cost_complete": self._unpriced == 0,
                "prices_assumed": self._assumed > 0,
                "median_latency_ms": _sorted_median(latencies) if latencies else None,
            }

    # --- writing ------------------------------------------------------------------------------

    def add_tool_time(self, response_id: str, ms: float) -> None:
        """Add the time a tool call of this response took to run (ignored for unknown ids).

        >>> m = Metrics()
        >>> m.apply(EventRecord("in", {"type": "response.created", "response": {"id": "r"}}, 0, 0))
        >>> m.add_tool_time("r", 120.0)
        >>> m.turns[0].tool_ms
        120.0
        """
        value = _finite(ms)
        if value is None:
            return
        with self._lock:
            turn = self._turns.get(response_id) if isinstance(response_id, str) else None
            if turn is not None:
                turn.tool_ms += value

    def clear(self) -> None:
        """Forget everything (turns, totals, rate limits, pending marks)."""
        with self._lock:
            self._reset()

    def call_started(self) -> None:
        """A new call: marks waiting for a turn (speech stopped, a sent ``response.create``)
        belong to the old call and must not time the new call's first turn."""
        with self._lock:
            self._speech_stopped = self._committed = None
            self._requests.clear()
            before, now = self._live_before, self._live_now
            self._live_before = (before[0] + now[0], before[1] + now[1])
            self._live_now = (0.0, 0.0)

    # --- GPT-Live ------------------------------------------------------------------------------

    def live_caption(self, role: str, turn_id: str, t: float) -> None:
        """A GPT-Live caption delta: the user's mark when they last spoke; an assistant turn
        begins (its latency from the user's last words to its first) and grows."""
        with self._lock:
            if role == "user":
                self._speech_stopped = t
                return
            turn = self._turns.get(turn_id)
            if turn is None:
                turn = self._new_turn(turn_id)
                turn.speech_stopped, self._speech_stopped = self._speech_stopped, None
                turn.response_created = turn.first_delta = t
                self._track_latency({"response_id": turn_id})
            turn.done = t

    def live_usage(self, usage: Any) -> float | None:
        """A GPT-Live call's cumulative usage so far (``session.usage.updated`` or the final
        one of ``session.closed``): this call's seconds and cost are replaced, not summed."""
        if not isinstance(usage, dict):
            return None
        seconds = _finite(usage.get("seconds"))
        if seconds is None:
            return None
        with self._lock:
            self._live_seen = True
            cost = live_cost(usage, self.pricing_model)
            if cost is None:
                self._unpriced = max(self._unpriced, 1)
            self._live_now = (seconds, cost or 0.0)
            return cost

    @property
    def unpriced_model(self) -> str | None:
        """The pricing model, if the price table has no entry for it (costs are unknown)."""
        model = self.pricing_model
        return model if model is not None and _price_for(model, self.prices) is None else None

    def apply(self, record: EventRecord) -> None:
        """Take one event (either direction) into account; anything malformed is ignored."""
        event = getattr(record, "event", None)
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        outgoing = getattr(record, "direction", None) == "out"
        # Most events (audio and transcript deltas past the first) mark nothing: they leave
        # without the lock, so a long session costs little per event.
        if outgoing:
            if kind != "response.create":
                return
        elif kind not in _MARKED:
            return
        elif kind in _DELTAS:
            # Only a turn's first delta marks it: the rest leave at once (a dict read is atomic).
            turn = self._turn_of(event.get("response_id"))
            if turn is None or turn.first_delta is not None:
                return
        t = _finite(getattr(record, "t_kernel", None))
        if t is None:
            return
        with self._lock:
            if outgoing:
                event_id = event.get("event_id")
                self._requests.append((t, event_id if isinstance(event_id, str) else None))
                del self._requests[:-_MAX_PENDING_REQUESTS]
                return
            if self._apply_incoming(kind, event, t):
                self._track_latency(event)

    def _apply_incoming(self, kind: str, event: dict[str, Any], t: float) -> bool:
        """Apply an incoming event; True when it set a mark a turn's latency depends on."""
        if kind in _DELTAS:
            turn = self._turn_of(event.get("response_id"))
            if turn is not None and turn.first_delta is None:
                turn.first_delta = t
                return True
        elif kind == "response.created":
            self._created(_dict(event.get("response")), t)
            return True
        elif kind == "response.done":
            self._done(_dict(event.get("response")), t)
        elif kind == "output_audio_buffer.started":
            turn = self._turn_of(event.get("response_id"))
            if turn is not None and turn.audio_started is None:
                turn.audio_started = t
                return True
        elif kind in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            turn = self._turn_of(event.get("response_id"))
            if turn is not None and turn.audio_stopped is None:
                turn.audio_stopped = t
        elif kind == "input_audio_buffer.speech_stopped":
            self._speech_stopped, self._committed = t, None
        elif kind == "input_audio_buffer.committed":
            self._committed = t
        elif kind == "rate_limits.updated":
            limits = event.get("rate_limits")
            if isinstance(limits, list):
                self._rate_limits = [dict(r) for r in limits if isinstance(r, dict)]
        elif kind in ("session.created", "session.updated"):
            model = _dict(event.get("session")).get("model")
            if isinstance(model, str):
                self._session_model = model
        elif kind == "error":
            self._error(_dict(event.get("error")))
        return False

    def _track_latency(self, event: dict[str, Any]) -> None:
        response_id = event.get("response_id", _dict(event.get("response")).get("id"))
        turn = self._turn_of(response_id)
        if turn is None:
            return
        self._forget_latency(turn.response_id)
        latency = turn.latency_ms
        if latency is not None:
            self._latency_of[turn.response_id] = latency
            bisect.insort(self._latencies, latency)

    def _forget_latency(self, response_id: str) -> None:
        old = self._latency_of.pop(response_id, None)
        if old is not None:
            del self._latencies[bisect.bisect_left(self._latencies, old)]

    def _turn_of(self, response_id: Any) -> TurnMetrics | None:
        return self._turns.get(response_id) if isinstance(response_id, str) else None

    def _new_turn(self, response_id: str) -> TurnMetrics:
        turn = TurnMetrics(response_id, model=self.pricing_model)
        self._turns[response_id] = turn
        self._count += 1
        while len(self._turns) > self.maxlen:
            self._forget_latency(self._turns.popitem(last=False)[0])
        return turn

    def _created(self, response: dict[str, Any], t: float) -> None:
        response_id = response.get("id")
        if not isinstance(response_id, str) or response_id in self._turns:
            return
        turn = self._new_turn(response_id)
        turn.response_created = t
        turn.speech_stopped, turn.committed = self._speech_stopped, self._committed
        self._speech_stopped = self._committed = None
        if self._requests:
            turn.requested = self._requests.pop(0)[0]

    def _done(self, response: dict[str, Any], t: float) -> None:
        response_id = response.get("id")
        if not isinstance(response_id, str):
            return
        turn = self._turns.get(response_id)
        if turn is None:
            # Its start was missed, or it was dropped (maxlen): count its usage, keep no turn.
            turn = TurnMetrics(response_id)
        elif turn.done is not None:
            return
        turn.done = t
        status = response.get("status")
        turn.status = status if isinstance(status, str) else None
        usage = response.get("usage")
        if not isinstance(usage, dict):
            return
        turn.usage = usage
        turn.model = self.pricing_model
        turn.cost = cost(usage, turn.model or "", self.prices)
        self._input_tokens += _count(usage.get("input_tokens"))
        self._output_tokens += _count(usage.get("output_tokens"))
        if turn.cost is None:
            self._unpriced += 1
        else:
            self._priced += 1
            self._cost += turn.cost
            price = _price_for(turn.model, self.prices)
            if price is not None and price.assumed:
                self._assumed += 1

    def _error(self, error: dict[str, Any]) -> None:
        # A refused response.create never becomes a turn: forget when it was sent.
        event_id = error.get("event_id")
        for index, (_, sent_id) in enumerate(self._requests):
            if sent_id is not None and sent_id == event_id:
                del self._requests[index]
                return
        if error.get("code") == "conversation_already_has_active_response" and self._requests:
            self._requests.pop()

    # --- showing ------------------------------------------------------------------------------

    def _rows(self, marks: bool = False) -> list[dict[str, Any]]:
        rows = []
        for t in self.turns:
            times = t.marks()
            first = next(iter(times.values()), None)
            row: dict[str, Any] = {
                "started": first,
                "response_id": t.response_id,
                "status": t.status,
                "latency_ms": t.latency_ms,
                "total_ms": t.total_ms,
                "tool_ms": t.tool_ms,
                "input_tokens": t._tokens("input_tokens"),
                "output_tokens": t._tokens("output_tokens"),
                "cost": t.cost,
            }
            if marks:
                # Each mark as ms into the turn: comparable across turns, unlike epoch times.
                row.update(
                    {
                        f"{name}_ms": None if at is None or first is None else at - first
                        for name in MARKS
                        for at in [getattr(t, name)]
                    }
                )
            rows.append(row)
        return rows

    def to_dataframe(self, *, marks: bool = False) -> Any:
        """One row per kept turn: when it started (local time), its response id, status,
        latency, total and tool time (ms), tokens and cost. ``marks=True`` adds each mark of its
        timeline (speech stopped, committed, ...) as ms into the turn. Needs pandas.

        >>> widget.metrics.to_dataframe()  # doctest: +SKIP
        """
        try:
            pd = importlib.import_module("pandas")
        except ImportError:
            raise ImportError("Metrics.to_dataframe() needs pandas: pip install pandas") from None
        columns = [
            "started",
            "response_id",
            "status",
            "latency_ms",
            "total_ms",
            "tool_ms",
            "input_tokens",
            "output_tokens",
            "cost",
            *([f"{name}_ms" for name in MARKS] if marks else []),
        ]
        frame = pd.DataFrame(self._rows(marks), columns=columns)
        # Kernel-clock epoch ms -> local wall-clock time, to the millisecond.
        frame["started"] = (
            pd.to_datetime(frame["started"], unit="ms", utc=True)
            .dt.tz_convert(_local_zone())
            .dt.tz_localize(None)
            .dt.floor("ms")
        )
        return frame

    def plot(self, ax: Any = None) -> Any:
        """A stacked horizontal bar per turn of its segments (ms from its first mark); a tick
        marks the latency. The legend sits beside the bars, so none is hidden. Needs matplotlib.

        >>> widget.metrics.plot()  # doctest: +SKIP
        """
        try:
            plt = importlib.import_module("matplotlib.pyplot")
        except ImportError:
            raise ImportError("Metrics.plot() needs matplotlib: pip install matplotlib") from None
        turns = self.turns
        if ax is None:
            height = max(2.5, 0.4 * len(turns) + 1.2)
            _, ax = plt.subplots(figsize=(9, height), layout="constrained")
        colors: dict[str, Any] = {}
        cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        for row, turn in enumerate(turns):
            left = 0.0
            for name, width in turn.segments().items():
                color = colors.setdefault(name, cycle[len(colors) % len(cycle)])
                ax.barh(row, width, left=left, color=color, label=name, edgecolor="white")
                left += width
            first = next(iter(turn.marks().values()), None)
            start = turn.speech_stopped if turn.speech_stopped is not None else turn.requested
            if turn.latency_ms is not None and first is not None and start is not None:
                ax.plot(start - first + turn.latency_ms, row, "k|", markersize=14)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=False))
        if unique:
            ax.legend(
                unique.values(),
                unique.keys(),
                fontsize="small",
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                borderaxespad=0.0,
                title="segment",
            )
        ax.set_yticks(range(len(turns)))
        ax.set_yticklabels([f"{i + 1} {t.status or ''}".strip() for i, t in enumerate(turns)])
        ax.set_ylim(len(turns) - 0.5, -0.5)  # first turn on top, bars never clipped
        ax.set_xlabel("ms from the turn's first mark (| = latency)")
        ax.set_title("Turns")
        return ax

    def _totals_text(self) -> str:
        totals = self.totals()
        cost_text = "?" if totals["cost"] is None else f"${totals['cost']:.4f}"
        if not totals["cost_complete"] and totals["cost"] is not None:
            cost_text += " (partial)"
        if totals.get("prices_assumed"):
            cost_text += " (assumed prices)"
        median = totals["median_latency_ms"]
        latency = "–" if median is None else f"{median:.0f} ms"
        return (
            f"{totals['turns']} turns, {totals['total_tokens']} tokens, cost {cost_text}, "
            f"median latency {latency}"
        )

    def __repr__(self) -> str:
        return f"<Metrics: {self._totals_text()}>"

    def _repr_html_(self, last: int = 20) -> str:
        def cell(value: Any) -> str:
            if value is None:
                return "–"
            if isinstance(value, float):
                return f"{value:.4f}" if value < 1 else f"{value:.0f}"
            return escape(str(value))

        heads = ["#", "response", "status", "latency ms", "total ms", "tool ms", "in", "out", "$"]
        rows = self._rows()
        shown = rows[-last:]
        offset = len(rows) - len(shown)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{cell(v)}</td>"
                for v in (
                    offset + i + 1,
                    r["response_id"],
                    r["status"],
                    r["latency_ms"],
                    r["total_ms"],
                    r["tool_ms"],
                    r["input_tokens"],
                    r["output_tokens"],
                    r["cost"],
                )
            )
            + "</tr>"
            for i, r in enumerate(shown)
        )
        head = "".join(f"<th>{h}</th>" for h in heads)
        return (
            f"<div class='rtw-metrics'><p>{escape(self._totals_text())}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )
