"""Session: one realtime conversation in the kernel, with no UI and no transport of its own.

Everything a notebook user scripts and inspects lives here, built from the session's events:
the conversation and transcript, the tools the model calls (run in the kernel), the queue of
responses, metrics and budgets, the event log, handlers and waiters. A transport moves the
events: the widget's page (a WebRTC call in the browser), or a WebSocket from the kernel (an
experiment's runs). ``RealtimeWidget`` is a session plus the browser transport plus traits.

Threads: events arrive on whichever thread delivers them (a comm subshell while cells run);
state shared with cells has one owner and a lock (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, overload

import traitlets

from .. import events as client_events
from ..config import ConfigError, Endpoint, model_warnings
from ..images import image_turn
from ..protocol import (
    SchemaError,
    is_live_model,
    live_update_problem,
    validate_live_session,
    validate_session,
)
from ..providers import openai as provider
from ..redact import redact
from .budgets import Budget, BudgetExceeded
from .conversation import FOLLOWS as CONVERSATION_FOLLOWS
from .conversation import Conversation, Item, Transcript
from .dispatch import CallEnded, Dispatcher, Handler
from .live import CLOSE_REASONS, DelegationHandler, LivePart, delegation_for, history_input
from .live import FOLLOWS as LIVE_FOLLOWS
from .log import EventLog, EventRecord
from .metrics import FOLLOWS as METRICS_FOLLOWS
from .metrics import LIVE_PRICES, Metrics, Prices, TurnMetrics, prices_for
from .recording import FOLLOWS as SPANS_FOLLOWS
from .recording import Recording, Tape, TurnSpans
from .recovery import replay_events
from .tools import Tool, ToolRegistry, ToolResult
from .turns import FOLLOWS as TURNS_FOLLOWS
from .turns import Turns

H = TypeVar("H", bound=Handler)
LIVE = ("connecting", "connected")
MAX_NOTICES = 5
# Chromium's data-channel message limit (SCTP max-message-size 256 KiB), until a call says its own.
DEFAULT_MAX_MESSAGE_BYTES = 262_144
_TAG = "realtime_widget_turn"  # the metadata key that ties a reply to its say()/ask()
# Server events the session itself reads (beyond its parts' FOLLOWS sets).
CORE_FOLLOWS = frozenset(
    {"session.created", "session.updated", "response.done", "conversation.item.done"}
)
# Server events the page's views read (js/ui/controls.ts: the speaking indicator and the
# Interrupt button; js/ui/session.ts: the rate limits).
PAGE_FOLLOWS = frozenset(
    {
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.cleared",
        "input_audio_buffer.timeout_triggered",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "rate_limits.updated",
    }
)
# Server events the SDK knows that the widget leaves alone on purpose, and why. The drift test
# (tests/test_protocol.py) requires every SDK event to be handled or listed here.
IGNORED_SERVER_EVENTS = {
    "conversation.created": "the beta shape's; GA servers start with session.created",
    "input_audio_buffer.dtmf_event_received": "SIP calls only; the widget makes WebRTC calls",
    "response.output_audio.delta": "WebSocket audio; a WebRTC call's audio is its media track",
    "response.output_audio.done": "the transcript's .done and output_audio_buffer.stopped say it",
    "response.content_part.added": "the item and delta events carry the same content",
    "response.content_part.done": "the item and delta events carry the same content",
}
# Outputs that make a response a step, not the reply: a follow-up response comes after them.
_WAITS = ("function_call", "mcp_approval_request")


class Transport(Protocol):
    """What carries a call: it opens and closes it, and delivers client events on it.

    It reports back through :meth:`Session.call_status` and :meth:`Session.receive`.
    """

    max_message_bytes: int

    def open_call(self) -> None: ...

    def close_call(self) -> None: ...

    def deliver(self, events: list[dict[str, Any]]) -> None: ...

    def waiting_problem(self) -> str | None:
        """Why awaiting an event can't work here (said at once), or None."""
        ...

    def wait_hint(self) -> str:
        """What may hold an awaited event back while the call connects (for timeouts)."""
        ...


class Reply(str):
    """What :meth:`Session.ask` gives: the reply's text, and how its response ended.

    ``interrupted`` is true when the reply was cut short (the user spoke over it, or
    ``interrupt()``): the text is what was said until then.
    """

    response: dict[str, Any]
    status: str | None
    interrupted: bool

    def __new__(cls, text: str, response: dict[str, Any], interrupted: bool) -> Reply:
        reply = super().__new__(cls, text)
        reply.response = response
        status = response.get("status")
        reply.status = status if isinstance(status, str) else None
        reply.interrupted = interrupted
        return reply

    def __repr__(self) -> str:
        return super().__repr__() + (" (interrupted)" if self.interrupted else "")


@dataclass(frozen=True)
class Request:
    """A user turn asked for with :meth:`Session.say`: ``wait_for("response.done",
    reply_to=request)`` waits for its reply (after any tool calls), not merely the next
    response to end."""

    tag: str
    event: dict[str, Any]


# Where a loaded session "is": nowhere to call (connect() says so).
SAVED_ENDPOINT = Endpoint("saved://session", None, "bearer", "saved")


class _Saved:
    """The transport of a loaded session: there is no call to make."""

    max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES

    def open_call(self) -> None:
        raise RuntimeError(
            "A loaded session is a record: it has no call. Make a RealtimeWidget (or an "
            "Experiment) to talk again."
        )

    def close_call(self) -> None:
        pass

    def deliver(self, events: list[dict[str, Any]]) -> None:
        raise RuntimeError("A loaded session is a record: it sends nothing.")

    def waiting_problem(self) -> str | None:
        return "A loaded session is a record: no event will come."

    def wait_hint(self) -> str:
        return "A loaded session has no call."


def merge_config(config: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A partial session update laid over a config: ``audio.input/output`` merge, the rest
    replaces."""
    merged = {**config}
    for key, value in fields.items():
        if key == "audio" and isinstance(value, dict):
            audio = {**merged.get("audio", {})}
            for side, part in value.items():
                audio[side] = {**audio.get(side, {}), **part} if isinstance(part, dict) else part
            merged["audio"] = audio
        else:
            merged[key] = value
    return merged


class Session(traitlets.HasTraits):
    """A realtime session: connect, talk, script and inspect it from Python.

    Observable traits: ``status`` (``idle``, ``connecting``, ``connected``, ``closed``,
    ``error``), ``error``, ``call_id``, ``config`` (what the next call is made with),
    ``totals`` and ``notices``.
    """

    status = traitlets.Unicode("idle", read_only=True)
    error = traitlets.Unicode("", read_only=True)
    call_id = traitlets.Unicode("", read_only=True)
    config = traitlets.Dict(read_only=True)
    totals = traitlets.Dict(read_only=True)
    notices = traitlets.List(traitlets.Unicode(), read_only=True)

    def __init__(
        self,
        config: dict[str, Any],
        *,
        endpoint: Endpoint,
        tools: list[Callable[..., Any] | Tool | dict[str, Any]] | None = None,
        tool_timeout: float = 30.0,
        log_size: int = 10_000,
        log_path: Any = None,
        max_duration: float | None = None,
        max_cost: float | None = None,
        prices: dict[str, Prices] | None = None,
        auto_reconnect: bool = False,
        mcp_approval: Callable[[Item], Any] | None = None,
        wrap_handler: Callable[[Handler], Handler] | None = None,
    ) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.tools = ToolRegistry()
        self._declared: list[dict[str, Any]] = []  # tools as given (MCP servers, schemas)
        self._tool_timeout = tool_timeout
        for entry in tools or []:
            if isinstance(entry, dict):
                self._declared.append(entry)
            elif isinstance(entry, Tool):
                self.tools.add(entry)
            else:
                self.tools.add(entry, timeout=tool_timeout)
        if tools is not None:
            config = self._validated({**config, **self._tools_fields(config)})
        self.set_trait("config", config)
        self._live = LivePart(self)
        self.events = EventLog(maxlen=log_size, path=log_path)
        self.metrics = Metrics(prices=prices, default_model=config.get("model"))
        # The server's view of the session (session.created/updated): ids and defaults
        # included; `config` stays what this session asks for.
        self.server_session: dict[str, Any] = {}
        self.conversation = Conversation(send=self.send)
        self._turns = Turns(
            send=self.send, spawn=self.spawn, tools=self.tools, on_tool_result=self._tool_done
        )
        self._dispatch = Dispatcher(report=self._notice)
        self._wrap_handler = wrap_handler
        self._wrapped: dict[tuple[str, int], Handler] = {}
        self._turn_listeners: list[Callable[[TurnMetrics], None]] = []
        self._transport: Transport | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self.budget = Budget(
            max_duration=max_duration, max_cost=max_cost, on_exceeded=self._over_budget
        )
        self.auto_reconnect = auto_reconnect
        self._call = 0  # the number of the current (or last) call
        self._ended_call = 0  # the last call whose end was handled
        self._ended_by = ""  # why the kernel ended the call, when it did
        self._user_ended = False
        self._reconnecting = False  # reconnect() asked while live: a new call follows the close
        self._reconnects: list[float] = []
        self._unpriced_said = False
        # Approving an MCP tool call: a Python callback, else the page asks the user.
        self.mcp_approval = mcp_approval
        self._approval_metadata: dict[str, dict[str, Any]] = {}
        # Both sides of the calls, as the page heard them (record=True; see recording.py).
        self.record = False
        self.tape = Tape()
        self._spans = TurnSpans()
        self._warn_if_uncapped()
        for text in model_warnings(config):
            self._notice(text)
            warnings.warn(text, FutureWarning, stacklevel=3)

    # --- a saved session ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: Any) -> Session:
        """A saved session (what ``log_path=`` or ``events.to_jsonl()`` wrote) back as Python
        objects: its conversation, transcript, metrics and event log, with no key and no call.

        >>> saved = Session.load("session.jsonl")  # doctest: +SKIP
        >>> saved.transcript.to_markdown(); saved.metrics.to_dataframe()  # doctest: +SKIP
        """
        records = EventLog.read_jsonl(path)
        config: dict[str, Any] = {}
        for record in records:  # the session as it was last asked for, else as the server had it
            session = record.event.get("session")
            if isinstance(session, dict) and record.type in ("session.update", "session.created"):
                config = {**config, **session} if record.direction == "out" else config or session
        saved = cls(
            {k: v for k, v in config.items() if k not in ("id", "object", "expires_at")},
            endpoint=SAVED_ENDPOINT,
            log_size=max(len(records), 1),
        )
        saved.attach(_Saved())
        saved._restore(records)
        return saved

    def _restore(self, records: list[EventRecord]) -> None:
        """Rebuild what the events say, running nothing (no tools, no handlers, no sends)."""
        self.events.extend(records)
        for record in records:
            if record.direction == "in":
                if record.type in CONVERSATION_FOLLOWS:
                    self.conversation.apply(record.event)
                if record.type in METRICS_FOLLOWS:
                    self.metrics.apply(record)
                if record.type in ("session.created", "session.updated"):
                    session = record.event.get("session")
                    if isinstance(session, dict):
                        self.server_session = session
                if record.type == "response.done":
                    response = record.event.get("response")
                    response_id = response.get("id") if isinstance(response, dict) else None
                    turn = self.metrics.turn(response_id) if isinstance(response_id, str) else None
                    for listener in self._turn_listeners if turn is not None else ():
                        listener(turn)  # type: ignore[arg-type]
            elif record.type == "response.create":
                self.metrics.apply(record)
        self.set_trait("totals", self.metrics.totals())

    def show(self) -> Any:
        """The widget's views of this (loaded) session: transcript, log, figures, no call.

        >>> Session.load("session.jsonl").show()  # doctest: +SKIP
        """
        from ..widget import RealtimeWidget

        widget = RealtimeWidget(endpoint=SAVED_ENDPOINT)
        if self.config:
            widget._core._set_config(dict(self.config))  # shown as it was, not re-validated
        widget.replay(self, speed=None)
        return widget

    # --- wiring -----------------------------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        """Give the session the transport that carries its calls."""
        self._transport = transport

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("This session has no transport: attach() one first.")
        return self._transport

    def on_turn(self, listener: Callable[[TurnMetrics], None]) -> None:
        """Call ``listener(turn)`` with each response's metrics when it is done."""
        self._turn_listeners.append(listener)

    # --- reading ----------------------------------------------------------------------------

    @property
    def transcript(self) -> Transcript:
        """The turns so far as ``(role, text)``; ``.to_markdown()`` for a cell. Recorded
        (``record=True``), each spoken turn's ``audio`` is its cut of the recording."""
        turns = self.conversation.transcript
        if self.tape.frames == 0:
            return turns
        return Transcript(
            replace(turn, audio=self._spans.clip(self.tape, turn.item_id))
            if turn.role in ("user", "assistant")
            else turn
            for turn in turns
        )

    @property
    def recording(self) -> Recording:
        """Both sides of the calls so far (stereo: the user left, the model right)."""
        return Recording(self.tape)

    def clip(self, item_id: str) -> Recording | None:
        """The recorded audio of one turn (by item id), or None."""
        return self._spans.clip(self.tape, item_id)

    def record_audio(self, t0: float, frame: int, pcm: bytes) -> None:
        """A chunk of the page's recording (see recording.py)."""
        self.tape.write(t0, frame, pcm)

    @property
    def session_type(self) -> str:
        """``realtime`` (a conversation) or ``transcription`` (live captions, no replies)."""
        return str(self.config.get("type", "realtime"))

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def is_live(self) -> bool:
        """A GPT-Live session (``/v1/live``): its model is ``gpt-live-*``."""
        model = self.config.get("model")
        return isinstance(model, str) and is_live_model(model)

    @property
    def max_cost(self) -> float | None:
        """The session's spending cap in USD across all its calls (None: no cap)."""
        return self.budget.max_cost

    @max_cost.setter
    def max_cost(self, value: float | None) -> None:
        checked = Budget(max_duration=None, max_cost=value, on_exceeded=lambda _: None)
        self.budget.max_cost = checked.max_cost
        self._unpriced_said = False
        self._warn_if_uncapped()

    @property
    def max_duration(self) -> float | None:
        """Each call's time cap in seconds (None: no cap); applies from the next call."""
        return self.budget.max_duration

    @max_duration.setter
    def max_duration(self, value: float | None) -> None:
        checked = Budget(max_duration=value, max_cost=None, on_exceeded=lambda _: None)
        self.budget.max_duration = checked.max_duration

    # --- the call ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Start a call. Returns at once; ``status`` follows it (``connecting`` →
        ``connected``), and events sent meanwhile wait for it."""
        if self.live:
            return
        if isinstance(self._transport, _Saved):
            self._transport.open_call()  # says why a loaded session cannot call
        refusal = self.budget.refusal(self.metrics.totals()["cost"])
        if refusal is not None:
            self._notice(refusal)
            raise BudgetExceeded(refusal)
        try:
            self.endpoint.headers()
        except ConfigError as exc:
            self._set_status("error", str(exc))
            raise
        self._begin_call()
        self.transport.open_call()

    def _begin_call(self) -> None:
        """A new call starts (asked from Python, or by a click in the page)."""
        with self._lock:
            self._call += 1
            self._ended_by = ""
            self._user_ended = False
            self._reconnecting = False
        self.set_trait("call_id", "")
        self._dispatch.call_started()
        self.metrics.call_started()
        self._live.call_started()
        self._set_status("connecting", "")

    def disconnect(self) -> None:
        """End the call (the transport releases what it holds: the page, its microphone)."""
        with self._lock:
            self._pending.clear()
            self._user_ended = True
        self.transport.close_call()

    def hangup(self) -> None:
        """End the call, and end it on the provider's side too (``/calls/{id}/hangup``; a
        GPT-Live session is closed gracefully first, then hung up)."""
        call_id = self.call_id
        self.disconnect()
        if call_id:
            self.spawn(self._hangup(call_id))

    def reconnect(self) -> None:
        """A new call, the session and tools restored, the conversation replayed.

        The Realtime API has no resume: the kernel re-creates the conversation's items (user
        and assistant text, tool calls and results; assistant audio as its transcript) so the
        model continues where it left off. ``conversation`` and ``events`` carry on.
        """
        if self.live:
            with self._lock:
                self._reconnecting = True
                self._user_ended = True
            self.transport.close_call()
            return
        if self.is_live:
            # GPT-Live takes history only at creation: the conversation so far becomes the new
            # session's `input` (text; tool calls as their results' words).
            turns = [(t.role, t.text) for t in self.transcript if t.role in ("user", "assistant")]
            config = {k: v for k, v in self.config.items() if k != "input"}
            if turns:
                config["input"] = history_input(turns)
            self._set_config(config)
            self.connect()
            return
        self.connect()
        replay = replay_events(self.conversation)
        if replay:
            self.send(replay)  # queued until the new call is up

    def call_status(self, status: str, error: str = "", *, call_id: str | None = None) -> None:
        """The transport's report of the call's state (``connecting``, ``connected``,
        ``closed``, ``error``)."""
        if status in LIVE and not self.live:
            # The transport started a call itself (a click on Connect in the page).
            self._begin_call()
            refusal = self.budget.refusal(self.metrics.totals()["cost"])
            if refusal is not None:
                self.end_call(refusal)
        if call_id:
            self.set_trait("call_id", call_id)
        if status in ("closed", "error") and self._ended_by:
            error = self._ended_by  # the kernel ended it, and knows why better
        elif status == "closed" and self._live.close_reason not in (None, "close_requested"):
            error = CLOSE_REASONS.get(str(self._live.close_reason), error)
        self._set_status(status, redact(error) if status in ("closed", "error") else "")
        if status == "connected":
            self.budget.start()
            with self._lock:
                pending, self._pending = self._pending, []
            if pending:
                self._deliver(pending)
        elif status in ("closed", "error"):
            self._call_ended(status)

    def _call_ended(self, status: str) -> None:
        with self._lock:
            if self._ended_call == self._call:
                return  # already handled (a page may report a close twice)
            self._ended_call = self._call
            user_ended, reconnecting = self._user_ended, self._reconnecting
        if self.call_id and (status == "error" or not user_ended):
            # A call that failed or dropped after the provider made it (ICE never connected,
            # the network went, the page went away): end it there too, or it lingers (and
            # bills) until the provider's own timeout. One the server ended already is 404.
            self.spawn(self._quiet_hangup(self.call_id))
        self.budget.stop()
        with self._lock:
            self._pending.clear()
        self._turns.reset()
        reason = self.error or (
            "The call was closed." if status == "closed" else "The call failed."
        )
        self._dispatch.call_ended(self._call, f"The call ended before the event came: {reason}")
        if reconnecting:
            self.reconnect()
            return
        dropped = status == "closed" and not user_ended and not self._ended_by
        if dropped and self.auto_reconnect:
            now = time.monotonic()
            self._reconnects = [t for t in self._reconnects if now - t < 60] + [now]
            if len(self._reconnects) <= 3:  # a call that keeps failing is left closed
                self._notice(f"The call dropped ({self.error}); reconnecting.")
                self.reconnect()
            else:
                self._notice("The call dropped 3 times within a minute; not reconnecting.")

    def end_call(self, reason: str) -> None:
        """The kernel ends the call (a budget, a lost page): on the provider and the transport,
        with ``reason`` as the call's error."""
        with self._lock:
            self._ended_by = reason
            self._user_ended = True
        call_id = self.call_id
        self.transport.close_call()
        if call_id:
            self.spawn(self._hangup(call_id))

    def _over_budget(self, reason: str) -> None:
        self.end_call(f"Ended by the kernel: {reason}.")

    # --- sending ----------------------------------------------------------------------------

    def send(self, event: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate client event(s) and send them on the call, in one message.

        Raises :class:`~realtime_widget.events.InvalidEventError` before anything is sent if
        the API would refuse one (all are checked first). While the call is connecting, events
        wait for it. Returns the events as sent, each with its ``event_id``.

        >>> w.send({"type": "response.create", "response": {"instructions": "Say hi."}})
        ... # doctest: +SKIP
        """
        batch = event if isinstance(event, list) else [event]
        live = self.is_live
        prepared = [client_events.prepare(e, live=live) for e in batch]
        for one in prepared:
            self._check_size(one)
        with self._lock:
            if self.status == "connecting":
                self._pending.extend(prepared)
                return prepared
            if self.status != "connected":
                raise RuntimeError(
                    f"Not connected (status: {self.status}): call connect() first, "
                    "or click Connect in the widget."
                )
        self._deliver(prepared)
        return prepared

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        self.transport.deliver(events)

    @property
    def _message_limit(self) -> int:
        transport = self._transport
        return transport.max_message_bytes if transport is not None else DEFAULT_MAX_MESSAGE_BYTES

    def _check_size(self, event: dict[str, Any]) -> None:
        """Refuse an event too big for one message of the transport, naming its largest field."""
        limit = self._message_limit
        size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
        if size <= limit:
            return
        path, biggest = _largest_field(event)
        raise client_events.InvalidEventError(
            f"Not sent: this {event.get('type')} event is {size:,} bytes as JSON, over the "
            f"{limit:,} bytes the call carries in one message; its largest field is '{path}' "
            f"({biggest:,} bytes). Shorten it or split it across several events.",
            param=path,
            code="message_too_large",
        )

    def update_session(self, **fields: Any) -> dict[str, Any]:
        """Change the session live (``session.update``), e.g. ``update_session(instructions=…)``.

        ``config`` (what calls are made with) changes at once; ``server_session`` follows when
        the server confirms with ``session.updated``. Outside a call it applies to the next.

        >>> w.update_session(instructions="Answer in French.")  # doctest: +SKIP

        GPT-Live fixes the model, voice, instructions and history at creation: during a call
        only ``delegation`` (within its type) and ``triggers`` change; the rest is refused with
        the API's reason, and applies to the next call when no call is under way.
        """
        if self.is_live:
            return self._update_live(fields)
        try:
            validate_session({"type": self.session_type, **fields})
        except SchemaError as exc:
            raise client_events.InvalidEventError(
                f"Not sent: {exc.message}", param=exc.param, code=exc.code
            ) from None
        self._set_config(merge_config(self.config, fields))
        update = client_events.session_update(fields, self.session_type)
        if not self.live:
            return update
        return self.send(update)[0]

    def _update_live(self, fields: dict[str, Any]) -> dict[str, Any]:
        try:
            if self.live:
                problem = live_update_problem(fields)
                if problem is not None:
                    raise problem
            else:
                validate_live_session(merge_config(self.config, fields))
        except SchemaError as exc:
            raise client_events.InvalidEventError(
                f"Not sent: {exc.message}", param=exc.param, code=exc.code
            ) from None
        self._set_config(merge_config(self.config, fields))
        update = {"type": "session.update", "session": fields}
        if not self.live:
            return update
        return self.send(update)[0]

    # --- GPT-Live's own commands ---------------------------------------------------------------

    def _live_only(self, what: str) -> None:
        if not self.is_live:
            raise RuntimeError(
                f"{what} is GPT-Live's (model='gpt-live-1.1'); a Realtime session takes "
                "instructions through update_session() and turns through say()."
            )

    def append_instructions(self, text: str) -> dict[str, Any]:
        """GPT-Live: trusted instructions added mid-call (``session.instructions.append``);
        they may interrupt what the model is saying."""
        self._live_only("append_instructions()")
        return self.send(client_events.live_append("instructions", text))[0]

    def think(self, text: str, *, delegation_id: str | None = None) -> dict[str, Any]:
        """GPT-Live: facts the model takes silently (``session.thinking.append``), e.g. the
        answer to a delegated task."""
        self._live_only("think()")
        return self.send(client_events.live_append("thinking", text, delegation_id))[0]

    def comment(self, text: str, *, delegation_id: str | None = None) -> dict[str, Any]:
        """GPT-Live: words for the model to say (``session.commentary.append``; it may
        paraphrase them)."""
        self._live_only("comment()")
        return self.send(client_events.live_append("commentary", text, delegation_id))[0]

    def play_fixture(self, pcm16: bytes) -> dict[str, Any]:
        """GPT-Live: play an exact clip as the model's voice (24 kHz mono PCM16, at most
        30 s; ``session.output_audio.fixture.play``, sent over the kernel's sideband)."""
        import base64

        self._live_only("play_fixture()")
        audio = base64.b64encode(pcm16).decode("ascii")
        return self.send({"type": "session.output_audio.fixture.play", "audio": audio})[0]

    def fork(self) -> None:
        """GPT-Live: a new call continuing the last one, which must be over and made with
        ``store=True`` (``session={"store": True}``): it keeps the model, voice, instructions
        and what was said, on OpenAI's side (``/live/sessions/{id}/fork``); ``conversation`` and
        ``events`` carry on here."""
        self._live_only("fork()")
        source = self.call_id
        if self.live:
            raise RuntimeError("fork() continues a session that has ended: disconnect first.")
        if not source or not self.server_session.get("store"):
            raise RuntimeError(
                "fork() needs a finished GPT-Live session made with store=True: create the "
                "widget with session={'store': True}, talk, disconnect, then fork(). "
                "w.reconnect() carries the conversation on without storing it."
            )
        self._live.fork_from = source
        self.connect()

    def on_delegation(self, handler: DelegationHandler) -> DelegationHandler:
        """GPT-Live with client delegation (no ``tools``): call ``handler(delegation)`` for
        each task the model hands over; it answers with ``delegation.say(text)``,
        ``delegation.think(text)``, or by returning the text to say.

        >>> @w.on_delegation  # doctest: +SKIP
        ... def look_up(delegation): return "The shop opens at nine."
        """
        # Its output shows in the cell that registered it, like an event handler's.
        wrap = self._wrap_handler
        wrapped = wrap(handler) if wrap is not None else handler  # type: ignore[arg-type]
        self._live.handlers.append(wrapped)  # type: ignore[arg-type]
        return handler

    def say(
        self, text: str = "", *, image: Any = None, audio: bytes | None = None, **response: Any
    ) -> Request:
        """Add a user turn (text, an image, or both) and ask for a response (``response``:
        per-response overrides such as ``instructions`` or ``reasoning``).

        ``image`` is a path, bytes, a PIL image or a numpy array (see ``images.py``);
        ``audio`` is a recorded spoken turn, 24 kHz mono PCM16 (``workbench.audio.pcm16``
        reads WAV, MP3 or OGG files into it). The
        response waits if one is active (the API allows one at a time) or tools are still
        running. Returns a :class:`Request`: ``wait_for("response.done", reply_to=request)``
        waits for its reply.

        >>> request = w.say("What is in this picture?", image="photo.jpg")  # doctest: +SKIP
        """
        return self._say(text, image, secrets.token_hex(6), response, audio)

    def _say(
        self,
        text: str,
        image: Any,
        tag: str,
        response: dict[str, Any],
        audio: bytes | None = None,
    ) -> Request:
        if self.is_live:
            raise RuntimeError(
                "GPT-Live hears the user only through the microphone and decides itself when "
                "to speak: there is no typed turn or response to ask for. Use w.play(recording) "
                "to speak into the call, w.comment(text) for words the model should say, "
                "w.think(text) for facts it should know, or w.append_instructions(text)."
            )
        if self.config.get("type") == "transcription":
            raise RuntimeError(
                "This is a transcription session (live captions, no replies): there is no "
                "response to ask for. Make a RealtimeWidget without session_type= to talk."
            )
        if audio is not None:
            if text or image is not None:
                raise ValueError("A spoken turn (audio=) is a turn of its own: no text or image.")
            if not audio:
                raise ValueError("audio= is empty: a spoken turn needs some PCM16 samples.")
        elif image is None and not text:
            raise ValueError("say() needs some text, an image, or both.")
        metadata = dict(response.pop("metadata", None) or {})
        metadata[_TAG] = tag
        create = client_events.prepare(client_events.response_create(**response, metadata=metadata))
        if audio is not None:
            turn = client_events.user_audio(audio)
        elif image is None:
            turn = client_events.user_text(text)
        else:
            limit = (
                self._transport.max_message_bytes if self._transport else DEFAULT_MAX_MESSAGE_BYTES
            )
            turn = image_turn(image, text, limit=limit - 2048)  # room for the event around it
        self.send(turn)
        self._turns.request_response(create)
        return Request(tag, create)

    def ask(
        self,
        text: str = "",
        *,
        image: Any = None,
        audio: bytes | None = None,
        timeout: float = 60.0,
        **response: Any,
    ) -> asyncio.Future[Reply]:
        """Like :meth:`say`, and a future of the reply (a :class:`Reply`: its text, and
        whether it was ``interrupted``).

        The reply is the response that answers this request, after any tool calls it made,
        not merely the next response to finish. If the call ends first, the future fails at
        once with the reason.

        >>> answer = await w.ask("What is 2 + 2?")  # doctest: +SKIP
        """
        tag = secrets.token_hex(6)
        done = self.wait_for("response.done", reply_to=tag, timeout=timeout)
        answer: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

        def settle(future: asyncio.Future[dict[str, Any]]) -> None:
            if answer.done():
                return
            if future.cancelled():
                answer.cancel()
            elif future.exception() is not None:
                answer.set_exception(future.exception())  # type: ignore[arg-type]
            else:
                answer.set_result(self._reply(future.result()))

        done.add_done_callback(settle)
        try:
            self._say(text, image, tag, response, audio)
        except Exception:
            done.cancel()
            raise
        return answer

    def _reply(self, event: dict[str, Any]) -> Reply:
        response = event.get("response")
        response = response if isinstance(response, dict) else {}
        outputs = response.get("output") or []
        ids = {o.get("id") for o in outputs if isinstance(o, dict)}
        items = [i for i in self.conversation.items if i.id in ids]
        text = " ".join(i.text for i in items if i.text)
        cut = response.get("status") in ("cancelled", "incomplete") or any(
            i.truncated or i.interrupted for i in items
        )
        return Reply(text, response, cut)

    def approve(self, request_id: str, approve: bool = True, reason: str | None = None) -> None:
        """Answer an MCP server's approval request (``require_approval``): the tool call runs,
        or the model hears it was denied (and ``reason``), and the response continues.

        >>> w.approve(w.conversation.items[-1].id)  # doctest: +SKIP
        """
        item: dict[str, Any] = {
            "id": "item_" + secrets.token_hex(12),  # the SDK's type requires one
            "type": "mcp_approval_response",
            "approval_request_id": request_id,
            "approve": bool(approve),
        }
        if reason:
            item["reason"] = reason
        self.send({"type": "conversation.item.create", "item": item})
        # The approval is an input like a tool's output: the model goes on when asked to, and
        # the reply keeps the tag of the request that led to it (so ask() still finds it).
        metadata = self._approval_metadata.pop(request_id, None)
        follow_up = client_events.response_create(**({"metadata": metadata} if metadata else {}))
        self._turns.request_response(client_events.prepare(follow_up))

    async def _decide(self, request: Item) -> None:
        decide = self.mcp_approval
        if decide is None:
            return
        try:
            verdict = decide(request)
            if asyncio.iscoroutine(verdict):
                verdict = await verdict
            approve, reason = verdict if isinstance(verdict, tuple) else (verdict, None)
        except Exception as exc:
            self._notice(f"The mcp_approval callback failed ({exc!r}): the call is denied.")
            approve, reason = False, "The approval check failed."
        try:
            self.approve(request.id, bool(approve), reason)
        except (ValueError, RuntimeError) as exc:  # refused by the schema, or the call ended
            self._notice(f"Answering the approval request {request.id} failed: {exc}")

    def interrupt(self) -> None:
        """Stop the model: cancel the response and clear the audio already queued to play."""
        if self.is_live:
            raise RuntimeError(
                "GPT-Live has no response to cancel: it stops when it is talked over. Steer it "
                "with w.append_instructions('Stop and listen.')."
            )
        self.send([{"type": "response.cancel"}, {"type": "output_audio_buffer.clear"}])

    # --- tools ------------------------------------------------------------------------------

    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Make a Python function a tool the model can call; the kernel runs it.

        Its schema comes from the signature, type hints and docstring. Mid-session the tools
        are redeclared with ``session.update``.

        >>> @w.tool  # doctest: +SKIP
        ... def get_weather(city: str) -> str:
        ...     "The weather in a city."
        ...     return "sunny"
        """

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.tools.add(
                function,
                name=name,
                description=description,
                timeout=self._tool_timeout if timeout is None else timeout,
            )
            self.update_session(**self._tools_fields(self.config))
            return function

        return register(fn) if fn is not None else register

    def remove_tool(self, name: str) -> None:
        """Stop offering a tool to the model (redeclares the tools mid-session)."""
        self.tools.remove(name)
        self.update_session(**self._tools_fields(self.config))

    def _tool_schemas(self) -> list[dict[str, Any]]:
        return [*self._declared, *self.tools.schemas()]

    def _tools_fields(self, config: dict[str, Any]) -> dict[str, Any]:
        """The session fields that declare the tools: ``tools`` (Realtime), or GPT-Live's
        Responses delegation with them as function tools."""
        model = config.get("model")
        if isinstance(model, str) and is_live_model(model):
            return {"delegation": delegation_for(self._tool_schemas(), config.get("delegation"))}
        return {"tools": self._tool_schemas()}

    def _tool_done(self, result: ToolResult, response_id: str) -> None:
        self.metrics.add_tool_time(response_id, result.seconds * 1000)
        if not result.ok:
            self._notice(f"Tool {result.name} failed: {result.error}")

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every tool call the kernel answered, with its full Python result."""
        return [*self._turns.results, *self._live.results]

    # --- events in --------------------------------------------------------------------------

    def receive(self, records: list[EventRecord]) -> None:
        """Take a batch of the call's events (both directions) into the session.

        Each part gets only the events it follows (their ``FOLLOWS`` sets), so an event costs
        a few set lookups beyond what its readers do: the hot path of a long call.
        """
        self.events.extend(records)
        conversation, turns, metrics = self.conversation, self._turns, self.metrics
        spans = self._spans if self.record else None
        for record in records:
            kind = record.type
            event = record.event
            if spans is not None and kind in SPANS_FOLLOWS:
                spans.apply(record)
            if record.direction == "in":
                if kind in CONVERSATION_FOLLOWS:
                    conversation.apply(event)
                if kind in TURNS_FOLLOWS:
                    turns.apply(event)
                if kind in METRICS_FOLLOWS:
                    metrics.apply(record)
                if kind == "response.done":
                    self._response_done(event)
                elif kind == "conversation.item.done":
                    self._item_done(event)
                elif kind in ("session.created", "session.updated", "session.started"):
                    session = event.get("session")
                    if isinstance(session, dict):
                        self.server_session = session
                if kind in LIVE_FOLLOWS:
                    self._live_event(record)
            elif kind == "response.create":
                metrics.apply(record)
            elif kind == "session.update":
                # Whoever sent it (Python, the composer, a panel), the config the next call
                # (reconnect) is made with follows it.
                self._follow_session_update(event.get("session"))
            for coroutine in self._dispatch.dispatch(record):
                self.spawn(coroutine)

    def _live_event(self, record: EventRecord) -> None:
        event, kind = record.event, record.type
        if kind in ("session.input_transcript.delta", "session.output_transcript.delta"):
            role = "user" if kind == "session.input_transcript.delta" else "assistant"
            caption = self._live.captions.apply(role, event.get("start_ms"), event.get("end_ms"))
            delta = event.get("delta")
            self.conversation.caption(
                role, caption.item_id, delta if isinstance(delta, str) else "", caption.closed
            )
            self.metrics.live_caption(role, caption.item_id, record.t_kernel)
            if self.record:
                self._spans.caption(role, caption.item_id, record.t_browser)
            if caption.closed is not None and role == "assistant":
                self._live_turn_done(caption.closed)
            return
        if kind in ("session.usage.updated", "session.closed"):
            self.metrics.live_usage(event.get("usage"))
            totals = self.metrics.totals()
            if self.endpoint.name == "local":
                totals["cost_basis"] = "openai-equivalent"
            self.set_trait("totals", totals)
            self.budget.check_cost(totals.get("cost"))
        if kind == "session.started":
            self.metrics.default_model = self.config.get("model")
        self._live.apply(event)

    def _live_turn_done(self, turn_id: str) -> None:
        turn = self.metrics.turn(turn_id)
        if turn is not None:
            for listener in self._turn_listeners:
                listener(turn)

    def _response_done(self, event: dict[str, Any]) -> None:
        totals = self.metrics.totals()
        if self.endpoint.name == "local":
            # Nothing is charged: the figure is what the same turn would cost on OpenAI.
            totals["cost_basis"] = "openai-equivalent"
        self.set_trait("totals", totals)
        response = event.get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        if isinstance(response, dict) and isinstance(response.get("metadata"), dict):
            for output in response.get("output") or []:
                if isinstance(output, dict) and output.get("type") == "mcp_approval_request":
                    self._approval_metadata[str(output.get("id"))] = response["metadata"]
        turn = self.metrics.turn(response_id) if isinstance(response_id, str) else None
        if turn is not None:
            for listener in self._turn_listeners:
                listener(turn)
            if turn.usage is not None and turn.cost is None:
                self._warn_unpriced()
        self.budget.check_cost(totals.get("cost"))

    def _item_done(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") != "mcp_approval_request":
            return
        request = self.conversation.get(str(item.get("id")))
        if request is not None and self.mcp_approval is not None:
            self.spawn(self._decide(request))

    def _follow_session_update(self, fields: Any) -> None:
        if not isinstance(fields, dict):
            return
        if self.is_live:
            if live_update_problem(fields) is None:
                self._set_config(merge_config(self.config, fields))
            return
        try:
            validate_session({"type": self.session_type, **fields})
        except SchemaError:
            return  # the server refuses it too: the config stays as it was
        fields = {k: v for k, v in fields.items() if k != "type"}
        self._set_config(merge_config(self.config, fields))

    # --- handlers and waiters ---------------------------------------------------------------

    @overload
    def on(self, event_type: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event_type: str, handler: H) -> H: ...

    def on(self, event_type: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Call ``handler(event)`` for every event of a type (``"*"``: all), both directions.

        >>> @w.on("response.done")  # doctest: +SKIP
        ... def done(event): print(event["response"]["usage"])
        """

        def register(fn: H) -> H:
            wrapped = self._wrap_handler(fn) if self._wrap_handler is not None else fn
            with self._lock:
                self._wrapped[(event_type, id(fn))] = wrapped
            self._dispatch.on(event_type, wrapped)
            return fn

        return register(handler) if handler is not None else register

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        """Remove one handler, or all handlers of a type."""
        if handler is None:
            with self._lock:
                for key in [k for k in self._wrapped if k[0] == event_type]:
                    del self._wrapped[key]
            self._dispatch.off(event_type)
            return
        with self._lock:
            wrapped = self._wrapped.pop((event_type, id(handler)), handler)
        self._dispatch.off(event_type, wrapped)

    def wait_for(
        self,
        event_type: str,
        *,
        where: Callable[[dict[str, Any]], bool] | None = None,
        reply_to: Request | str | None = None,
        timeout: float = 30.0,
    ) -> asyncio.Future[dict[str, Any]]:
        """A future of the next event of a type (for which ``where`` is true, if given),
        registered now: ``await`` it in a cell.

        ``reply_to=`` a :meth:`say` request: the ``response.done`` of its reply (after any tool
        calls), not whichever response ends first. An event that comes once per call
        (``session.created``) and already came in this call settles the future at once. If the
        call ends first, the future fails at once with the reason. Create it *before* the
        action it waits for::

            reply = w.wait_for("response.done")
            w.say("hello")
            event = await reply
        """
        problem = self._transport.waiting_problem() if self._transport is not None else None
        if problem is not None:
            raise RuntimeError(problem)
        if reply_to is not None:
            where = _replying_to(reply_to.tag if isinstance(reply_to, Request) else reply_to, where)
        with self._lock:
            live = self.live and not self._reconnecting
            call = self._call if live else self._call + 1

        def on_timeout() -> BaseException:
            return TimeoutError(self._timeout_message(event_type, timeout))

        return self._dispatch.wait_for(
            event_type, where=where, timeout=timeout, call=call, live=live, on_timeout=on_timeout
        )

    def _timeout_message(self, event_type: str, timeout: float) -> str:
        head = f"No {event_type} within {timeout:g} s"
        if self.status == "connected":
            return f"{head}; the call is connected ({self.call_id or 'no call id yet'})."
        if self.status == "connecting":
            hint = self._transport.wait_hint() if self._transport is not None else ""
            return f"{head}: the call is still connecting. {hint}".strip()
        detail = f": {self.error}" if self.error else ""
        return f"{head}: no call is under way (status: {self.status}{detail}). Run connect()."

    # --- ending -----------------------------------------------------------------------------

    def close(self, reason: str = "The session was closed.") -> None:
        """End everything: the call (hung up on the provider), timers, tasks and the log file."""
        live, call_id = self.live, self.call_id
        self.budget.stop()
        self._dispatch.call_ended(self._call + 1, reason)
        for task in list(self._tasks):
            task.cancel()
        if live:
            self._set_status("closed", reason)
        self.events.close()
        if live and call_id:
            # On our own loop: the cell's loop may be gone, and the tasks above were cancelled.
            asyncio.run_coroutine_threadsafe(self._quiet_hangup(call_id), background_loop())

    # --- plumbing ---------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine as a task on this thread's loop (kept until done), or on the
        session's own loop where none runs (a front end that delivers messages off-loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            future = asyncio.run_coroutine_threadsafe(coro, background_loop())
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hangup(self, call_id: str) -> None:
        try:
            await provider.hangup(self.endpoint, call_id, live=self.is_live)
        except (provider.RealtimeAuthError, ConfigError) as exc:
            self._notice(str(exc))

    async def _quiet_hangup(self, call_id: str) -> None:
        # A hang-up nobody asked for (a dropped or closed call): a failure changes nothing.
        with contextlib.suppress(Exception):
            await provider.hangup(self.endpoint, call_id, live=self.is_live)

    def _set_config(self, config: dict[str, Any]) -> None:
        self.set_trait("config", config)
        self.metrics.default_model = config.get("model")

    def _set_status(self, status: str, error: str) -> None:
        with self.hold_trait_notifications():
            self.set_trait("error", redact(error))
            self.set_trait("status", status)

    def _notice(self, text: str) -> None:
        text = redact(text)
        with self._lock:
            self.set_trait("notices", [*self.notices, text][-MAX_NOTICES:])

    def _validated(self, config: dict[str, Any]) -> dict[str, Any]:
        try:
            model = config.get("model")
            if isinstance(model, str) and is_live_model(model):
                return validate_live_session(config)
            return validate_session(config)
        except SchemaError as exc:
            raise ConfigError(f"Invalid session ({exc.param}): {exc.message}") from None

    def _warn_if_uncapped(self) -> None:
        model = self.config.get("model")
        if model in LIVE_PRICES:
            return
        if self.budget.max_cost is not None and prices_for(model, self.metrics.prices) is None:
            self._warn_unpriced()

    def _warn_unpriced(self) -> None:
        if self.budget.max_cost is None or self._unpriced_said:
            return
        self._unpriced_said = True
        model = self.metrics.unpriced_model or self.config.get("model")
        text = (
            f"max_cost=${self.budget.max_cost:g} can't be enforced: no price is known for model "
            f"{model!r} (an Azure deployment name?), so its costs are unknown. Pass "
            "prices={'<model>': Prices(...)} with its prices per million tokens."
        )
        self._notice(text)
        warnings.warn(text, RuntimeWarning, stacklevel=3)


def handled_server_events() -> frozenset[str]:
    """Every server event the session's parts, the session itself or the page's views read."""
    return CONVERSATION_FOLLOWS | TURNS_FOLLOWS | METRICS_FOLLOWS | CORE_FOLLOWS | PAGE_FOLLOWS


def _replying_to(
    tag: str, where: Callable[[dict[str, Any]], bool] | None
) -> Callable[[dict[str, Any]], bool]:
    """A response.done that answers the request tagged ``tag``: its metadata carries the tag,
    and it is not a response that called tools (the follow-up after them is the reply)."""

    def is_reply(event: dict[str, Any]) -> bool:
        response = event.get("response")
        if not isinstance(response, dict):
            return False
        metadata = response.get("metadata")
        if not isinstance(metadata, dict) or metadata.get(_TAG) != tag:
            return False
        outputs = response.get("output") or []
        if any(isinstance(o, dict) and o.get("type") in _WAITS for o in outputs):
            return response.get("status") in ("cancelled", "failed")  # no follow-up will come
        return where is None or where(event)

    return is_reply


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """A loop of our own, for when a message arrives where no loop runs (some front ends)."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(
                target=_loop.run_forever, name="realtime-widget-io", daemon=True
            ).start()
        return _loop


def _largest_field(value: Any, path: str = "") -> tuple[str, int]:
    """The path (as the API names fields, ``item.content[0].text``) and JSON size of the
    largest leaf in an event."""
    if isinstance(value, dict):
        found = [_largest_field(v, f"{path}.{k}" if path else k) for k, v in value.items()]
    elif isinstance(value, list):
        found = [_largest_field(v, f"{path}[{i}]") for i, v in enumerate(value)]
    else:
        return path, len(json.dumps(value, ensure_ascii=False).encode())
    return max(found, key=lambda f: f[1], default=(path, 2))


__all__ = ["CallEnded", "Reply", "Request", "Session", "Transport"]
