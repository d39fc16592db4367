"""RealtimeWidget: the notebook's handle on one realtime voice call.

The browser owns the media (microphone, peer connection, data channel); the kernel owns the key,
the session and every event. State is in synced traits, streams are custom messages (see
docs/protocol.md). This class is plumbing: the protocol pieces live in ``auth``, ``events``,
``messages``, ``conversation`` and ``log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import anywidget
import httpx
import traitlets

from . import auth, events
from .config import DEFAULT_MODEL, ConfigError, Endpoint, build_session, mask, resolve_endpoint
from .messages import MessageError, parse_browser_message
from .schema import SchemaError, validate_session
from .session.conversation import Conversation, Transcript
from .session.log import EventLog, EventRecord
from .session.metrics import Metrics
from .session.recovery import Budget, replay_events
from .session.tools import Tool, ToolRegistry, ToolResult
from .session.turns import Turns

STATIC = Path(__file__).parent / "static"
_UNBUILT = """export default { render({ el }) { el.textContent =
  "realtime-widget: the front end is not built. Reinstall the package " +
  "(pip install -e . runs the build), or run: npm --prefix js ci && npm --prefix js run build";
} };"""
FRONT_END_TIMEOUT_S = 15.0
# The largest data-channel message until the page reports its call's own limit: Chromium's
# (SCTP max-message-size 256 KiB). Bigger events would throw in the page and be lost.
DEFAULT_MAX_MESSAGE_BYTES = 262_144
# A page loaded while a call is live: the page holding it must answer a ping within this, twice.
PROBE_TIMEOUT_S = 4.0
PROBE_STRIKES = 2
MAX_NOTICES = 5
Handler = Callable[[dict[str, Any]], Any]
H = TypeVar("H", bound=Handler)

_OWN_KWARGS = (
    "model",
    "instructions",
    "voice",
    "output_modalities",
    "turn_detection",
    "transcription",
    "tools",
    "endpoint",
    "api_key",
    "azure_resource",
    "mode",
    "session",
    "log_size",
    "log_path",
    "tool_timeout",
    "max_duration",
    "max_cost",
    "auto_reconnect",
)


class RealtimeWidget(anywidget.AnyWidget):
    """A realtime voice session in a notebook: display it, connect, talk, script it.

    >>> w = RealtimeWidget(endpoint="local", instructions="Be brief.")  # doctest: +SKIP
    >>> w  # shows the controls and transcript  # doctest: +SKIP
    >>> w.connect(); w.say("hello")  # doctest: +SKIP
    >>> w.transcript  # doctest: +SKIP
    """

    # A source checkout without the JS build still imports, and says so in the page.
    _esm = STATIC / "widget.js" if (STATIC / "widget.js").exists() else _UNBUILT
    _css = STATIC / "widget.css" if (STATIC / "widget.css").exists() else ""

    status = traitlets.Unicode("idle", read_only=True).tag(sync=True)
    error = traitlets.Unicode("", read_only=True).tag(sync=True)
    call_id = traitlets.Unicode("", read_only=True).tag(sync=True)
    muted = traitlets.Bool(False, read_only=True).tag(sync=True)
    # Why the call has no microphone (denied, absent, a front end without one): it runs text
    # only, say() still works. "" when the microphone is open.
    microphone_error = traitlets.Unicode("", read_only=True).tag(sync=True)
    mode = traitlets.Enum(("ephemeral", "relay"), "ephemeral").tag(sync=True)
    session = traitlets.Dict(read_only=True).tag(sync=True)
    endpoint_label = traitlets.Unicode("", read_only=True).tag(sync=True)
    notices = traitlets.List(traitlets.Unicode(), read_only=True).tag(sync=True)
    # Session totals for the views: turns, tokens, cost, median latency (see metrics.py).
    totals = traitlets.Dict(read_only=True).tag(sync=True)
    # Push-to-talk: turn detection off, the microphone live only while a view's "Hold to talk"
    # (or Space) is held; releasing commits the turn and asks for the reply. Set here or in a view.
    push_to_talk = traitlets.Bool(False).tag(sync=True)
    # The model's voice in the page, 0 (silent) to 1. Set here or with a view's slider.
    volume = traitlets.Float(1.0, min=0.0, max=1.0).tag(sync=True)
    # Lets every view in the page find this widget's one call (see js/widget.ts).
    _call_key = traitlets.Unicode(read_only=True).tag(sync=True)

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        instructions: str | None = None,
        voice: str | None = None,
        output_modalities: list[str] | None = None,
        turn_detection: dict[str, Any] | Literal["default"] | None = "default",
        transcription: dict[str, Any] | str | None = None,
        tools: list[Callable[..., Any] | Tool | dict[str, Any]] | None = None,
        endpoint: str | Endpoint | None = None,
        api_key: str | None = None,
        azure_resource: str | None = None,
        mode: Literal["ephemeral", "relay"] = "ephemeral",
        session: dict[str, Any] | None = None,
        log_size: int = 10_000,
        log_path: str | Path | None = None,
        tool_timeout: float = 30.0,
        max_duration: float | None = None,
        max_cost: float | None = None,
        auto_reconnect: bool = False,
        **kwargs: Any,
    ) -> None:
        _refuse_unknown(kwargs, self.class_trait_names())
        self._endpoint = resolve_endpoint(endpoint, api_key=api_key, azure_resource=azure_resource)
        # Python functions become tools the kernel runs; dicts are declarations passed as given.
        self.tools = ToolRegistry()
        self._declared: list[dict[str, Any]] = []
        self._tool_timeout = tool_timeout
        for entry in tools or []:
            if isinstance(entry, dict):
                self._declared.append(entry)
            elif isinstance(entry, Tool):
                self.tools.add(entry)
            else:
                self.tools.add(entry, timeout=tool_timeout)
        config = build_session(
            model=model,
            instructions=instructions,
            voice=voice,
            output_modalities=output_modalities,
            turn_detection=turn_detection,
            transcription=transcription,
            tools=self._tool_schemas() if tools is not None else None,
            extra=session,
        )
        # Set before the comm opens, so the browser's first state (and initialize) has them.
        self.set_trait("session", config)
        self.set_trait("endpoint_label", self._endpoint.label)
        self.set_trait("_call_key", secrets.token_hex(8))
        super().__init__(mode=mode, **kwargs)
        self.events = EventLog(maxlen=log_size, path=log_path)
        self.metrics = Metrics()
        # The server's view of the session (from session.created/updated), ids and defaults
        # included; `session` stays the config this widget asks for.
        self.server_session: dict[str, Any] = {}
        self.conversation = Conversation(send=self.send)
        self._turns = Turns(
            send=self.send, spawn=self._spawn, tools=self.tools, on_tool_result=self._tool_done
        )
        self._handlers: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._front_end_timer: threading.Timer | None = None
        self._probe_timer: threading.Timer | None = None
        self._max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES
        self.budget = Budget(
            max_duration=max_duration, max_cost=max_cost, on_exceeded=self._over_budget
        )
        self.auto_reconnect = auto_reconnect
        self._end_reason = ""  # why the kernel ended the call, when it did
        self._user_ended = False
        self._reconnect_after_close = False
        self._reconnects: list[float] = []
        self.on_msg(self._on_browser_message)

    # --- public API ------------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    @property
    def transcript(self) -> Transcript:
        """The turns so far as ``(role, text)``; ``.to_markdown()`` for a cell."""
        return self.conversation.transcript

    def reconnect(self) -> None:
        """A new call with a fresh key, the session and tools restored, the conversation replayed.

        The Realtime API has no resume: the kernel re-creates the conversation's items (user and
        assistant text, tool calls and results; assistant audio as its transcript) so the model
        continues where it left off. ``conversation`` and ``events`` carry on unchanged.
        """
        if self.status in ("connecting", "connected"):
            self._reconnect_after_close = True
            self._user_ended = True
            self._post({"kind": "disconnect"})
            return
        self.connect()
        replay = replay_events(self.conversation)
        if replay:
            self.send(replay)  # queued until the new call is up

    def connect(self) -> None:
        """Start the call (the same as clicking Connect in a view).

        Returns at once: the browser sets up the call and ``status`` follows it
        (``connecting`` → ``connected``). Events sent before then are queued.
        """
        if self.status in ("connecting", "connected"):
            return
        try:
            self._endpoint.headers()
        except ConfigError as exc:
            self._set_status("error", str(exc))
            raise
        self._set_status("connecting", "")
        self.set_trait("call_id", "")
        self._end_reason = ""
        self._user_ended = False
        self._post({"kind": "connect"})
        self._watch_front_end()

    def disconnect(self) -> None:
        """End the call in the browser (releasing the microphone)."""
        self._pending.clear()
        self._user_ended = True
        self._post({"kind": "disconnect"})

    def hangup(self) -> None:
        """End the call, and also end it on the provider's side (``/calls/{id}/hangup``)."""
        call_id = self.call_id
        self.disconnect()
        if call_id:
            self._spawn(self._hangup(call_id))

    def mute(self, muted: bool = True) -> None:
        """Mute (or with ``False`` unmute) the microphone; ``muted`` follows."""
        self._post({"kind": "mute", "muted": bool(muted)})

    def unmute(self) -> None:
        self.mute(False)

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        """How the server finds the end of a turn: ``{"type": "server_vad", ...}``,
        ``{"type": "semantic_vad", "eagerness": ...}``, or ``None`` (off: commit yourself).

        Setting it changes the live session (``session.update``) and the next call's config;
        ``"server_vad"`` and ``"semantic_vad"`` are short for ``{"type": ...}``.

        >>> w.turn_detection = {"type": "server_vad", "silence_duration_ms": 800}  # doctest: +SKIP
        >>> w.turn_detection = "semantic_vad"  # doctest: +SKIP
        """
        audio_in = self.session.get("audio", {}).get("input", {})
        detection: dict[str, Any] | None = audio_in.get("turn_detection", {"type": "server_vad"})
        return detection

    @turn_detection.setter
    def turn_detection(self, value: dict[str, Any] | str | None) -> None:
        if isinstance(value, str):
            value = {"type": value}
        if value is not None and self.push_to_talk:
            raise ValueError(
                "push_to_talk is on, and it keeps turn detection off: "
                "set w.push_to_talk = False first."
            )
        self.update_session(audio={"input": {"turn_detection": value}})

    @traitlets.observe("push_to_talk")
    def _push_to_talk_changed(self, change: dict[str, Any]) -> None:
        # In a call the page sends the session.update (and this config follows its echo); here
        # the config agrees at once, so the next call is made with turn detection off (or back).
        if change["new"]:
            self._detection_before_ptt = self.turn_detection
            detection = None
        else:
            detection = getattr(self, "_detection_before_ptt", {"type": "server_vad"})
        self.set_trait(
            "session", _merge(self.session, {"audio": {"input": {"turn_detection": detection}}})
        )

    def send(
        self, event: dict[str, Any] | list[dict[str, Any]], buffers: None = None
    ) -> list[dict[str, Any]]:
        """Validate client event(s) and send them on the data channel, in one message.

        Raises :class:`~realtime_widget.events.InvalidEventError` before anything is sent if the
        API would refuse one (all are checked first). While the call is connecting, events wait
        for it. Returns the events as sent, each with its ``event_id``.

        >>> w.send({"type": "response.create", "response": {"instructions": "Say hi."}})
        ... # doctest: +SKIP
        """
        if buffers is not None:
            raise TypeError("RealtimeWidget.send takes client events, not binary buffers.")
        prepared = [events.prepare(e) for e in (event if isinstance(event, list) else [event])]
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
        self._post({"kind": "send", "events": prepared})
        return prepared

    def _check_size(self, event: dict[str, Any]) -> None:
        """Refuse an event too big for one data-channel message, naming its largest field."""
        size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
        limit = self._max_message_bytes
        if size <= limit:
            return
        path, biggest = _largest_field(event)
        raise events.InvalidEventError(
            f"Not sent: this {event.get('type')} event is {size:,} bytes as JSON, over the "
            f"{limit:,} bytes the call's data channel carries in one message; its largest field "
            f"is '{path}' ({biggest:,} bytes). Shorten it or split it across several events.",
            param=path,
            code="message_too_large",
        )

    def _post(self, message: dict[str, Any]) -> None:
        """A custom message to the browser (the protocol of docs/protocol.md)."""
        super().send(message)

    def update_session(self, **fields: Any) -> dict[str, Any]:
        """Change the session live (``session.update``), e.g. ``update_session(instructions=…)``.

        ``session`` (the config calls are made with) changes at once; ``server_session``
        follows when the server confirms with ``session.updated``.
        """
        try:
            validate_session({"type": "realtime", **fields})
        except SchemaError as exc:
            raise events.InvalidEventError(
                f"Not sent: {exc.message}", param=exc.param, code=exc.code
            ) from None
        # `session` is what the next call is minted with, so it follows every change.
        self.set_trait("session", _merge(self.session, fields))
        if self.status in ("idle", "closed", "error"):
            return events.session_update(fields)  # not in a call: applies to the next one
        return self.send(events.session_update(fields))[0]

    def say(self, text: str, **response: Any) -> None:
        """Add a user text turn and ask for a response (``response``: per-response overrides).

        The response waits if one is active (the API allows one at a time) or tools are still
        running; it is sent as soon as the way is clear.
        """
        create = events.prepare(events.response_create(**response))
        self.send(events.user_text(text))
        self._turns.request_response(create)

    def ask(self, text: str, *, timeout: float = 60.0) -> asyncio.Future[str]:
        """Like :meth:`say`, and a future of the reply's text (transcript for audio replies).

        The reply is the response that answers this request, after any tool calls it made (the
        request is tagged with ``metadata``, which the follow-up response keeps), not merely the
        next response to finish.

        >>> answer = await w.ask("What is 2 + 2?")  # doctest: +SKIP
        """
        tag = secrets.token_hex(6)

        def is_reply(event: dict[str, Any]) -> bool:
            response = event.get("response")
            if not isinstance(response, dict):
                return False
            metadata = response.get("metadata")
            if not isinstance(metadata, dict) or metadata.get("realtime_widget_ask") != tag:
                return False
            outputs = response.get("output") or []
            return not any(
                isinstance(o, dict) and o.get("type") == "function_call" for o in outputs
            )

        done = self.wait_for("response.done", where=is_reply, timeout=timeout)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()

        def settle(future: asyncio.Future[dict[str, Any]]) -> None:
            if answer.done() or future.cancelled():
                return
            if future.exception() is not None:
                answer.set_exception(future.exception())  # type: ignore[arg-type]
                return
            outputs = (future.result().get("response") or {}).get("output") or []
            ids = [o.get("id") for o in outputs if isinstance(o, dict)]
            texts = [i.text for i in self.conversation.items if i.id in ids and i.text]
            answer.set_result(" ".join(texts))

        done.add_done_callback(settle)
        try:
            self.say(text, metadata={"realtime_widget_ask": tag})
        except Exception:
            done.cancel()
            answer.cancel()
            raise
        return answer

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

        >>> @w.tool
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
            self._redeclare_tools()
            return function

        return register(fn) if fn is not None else register

    def remove_tool(self, name: str) -> None:
        """Stop offering a tool to the model (redeclares the tools mid-session)."""
        self.tools.remove(name)
        self._redeclare_tools()

    def _tool_schemas(self) -> list[dict[str, Any]]:
        return [*self._declared, *self.tools.schemas()]

    def _redeclare_tools(self) -> None:
        self.update_session(tools=self._tool_schemas())

    def _tool_done(self, result: ToolResult, response_id: str) -> None:
        self.metrics.add_tool_time(response_id, result.seconds * 1000)
        if not result.ok:
            self._notice(f"Tool {result.name} failed: {result.error}")

    def interrupt(self) -> None:
        """Stop the model: cancel the response and clear the audio already queued to play."""
        self.send([{"type": "response.cancel"}, {"type": "output_audio_buffer.clear"}])

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
            with self._lock:
                self._handlers.setdefault(event_type, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def wait_for(
        self,
        event_type: str,
        *,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 30.0,
    ) -> asyncio.Future[dict[str, Any]]:
        """A future of the next event of a type (for which ``where`` is true, if given),
        registered now: ``await`` it in a cell.

        Awaiting lets the browser's messages through on ipykernel 7 (JupyterLab 4.4+,
        Notebook 7). Create it *before* the action it waits for::

            reply = w.wait_for("response.done")
            w.say("hello")
            event = await reply
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()

        def settle(event: dict[str, Any]) -> None:
            if not future.done():
                future.set_result(event)

        def handler(event: dict[str, Any]) -> None:
            if where is None or where(event):
                loop.call_soon_threadsafe(settle, event)  # handlers may run on a comm thread

        def expire() -> None:
            if not future.done():
                future.set_exception(
                    TimeoutError(
                        f"No {event_type} within {timeout:g} s (status: {self.status}). If your "
                        "front end delivers widget messages only between cells, use "
                        "w.on(...) callbacks and run the next cell later."
                    )
                )

        self.on(event_type, handler)
        timer = loop.call_later(timeout, expire)

        def done(_future: asyncio.Future[dict[str, Any]]) -> None:
            timer.cancel()
            self.off(event_type, handler)

        future.add_done_callback(done)
        return future

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        """Remove one handler, or all handlers of a type."""
        with self._lock:
            if handler is None:
                self._handlers.pop(event_type, None)
            elif handler in self._handlers.get(event_type, []):
                self._handlers[event_type].remove(handler)

    def close(self) -> None:
        """Close the widget: the browser ends the call and releases the microphone, and the
        kernel hangs the call up on the provider (the page may already be gone)."""
        # close() also runs from __del__, possibly on a widget whose __init__ failed.
        if getattr(self, "_front_end_timer", None) is not None:
            self._cancel_front_end_timer()
        self._cancel_probe()
        for task in list(getattr(self, "_tasks", ())):
            task.cancel()
        live = getattr(self, "_trait_values", {}).get("status") in ("connecting", "connected")
        call_id = getattr(self, "_trait_values", {}).get("call_id", "")
        if live and self.comm is not None:
            self._set_status("closed", "The widget was closed.")
            self.budget.stop()
        super().close()
        if live and call_id:
            # On our own loop: the cell's loop may be gone, and the tasks above were cancelled.
            asyncio.run_coroutine_threadsafe(self._quiet_hangup(call_id), _background_loop())

    # --- browser messages --------------------------------------------------------------------

    def _on_browser_message(self, _widget: Any, content: Any, _buffers: list[bytes]) -> None:
        try:
            message = parse_browser_message(content)
        except MessageError as exc:
            self._notice(f"Ignored a browser message: {exc}")
            return
        kind = message["kind"]
        if kind in ("events", "status"):
            self._cancel_probe()  # the page holding the call is alive
        if kind == "hello":
            if self.status in ("connecting", "connected"):
                self._probe(PROBE_STRIKES)
        elif kind == "events":
            self._receive_events(message["events"])
        elif kind == "status":
            self._receive_status(message)
        elif message["op"] in ("check", "send"):
            self._post(self._compose(message))
        else:
            self._spawn(self._answer(message))

    def _receive_events(self, batch: list[dict[str, Any]]) -> None:
        now = time.time() * 1000
        for entry in batch:
            record = EventRecord(entry["dir"], entry["event"], float(entry["t"]), now)
            self.events.append(record)
            if record.direction == "in":
                self.conversation.apply(record.event)
                self._turns.apply(record.event)
                if record.type in ("session.created", "session.updated"):
                    session = record.event.get("session")
                    if isinstance(session, dict):
                        self.server_session = session
            elif record.type == "session.update":
                # Whoever sent it (Python, the composer, the Session or Audio panel), the
                # config the next call (reconnect) is made with follows it.
                self._follow_session_update(record.event.get("session"))
            self.metrics.apply(record)
            if record.type == "response.done":
                totals = self.metrics.totals()
                self.set_trait("totals", totals)
                self._send_turn_figures(record.event)
                self.budget.check_cost(totals.get("cost"))
            self._dispatch(record)

    def _follow_session_update(self, fields: Any) -> None:
        if not isinstance(fields, dict):
            return
        try:
            validate_session({**fields, "type": "realtime"})
        except SchemaError:
            return  # the server will refuse it too: the config stays as it was
        fields = {k: v for k, v in fields.items() if k != "type"}
        self.set_trait("session", _merge(self.session, fields))

    def _send_turn_figures(self, event: dict[str, Any]) -> None:
        """The views show each reply's latency and cost: a stream, so a message per response."""
        response = event.get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        turn = self.metrics.turn(response_id) if isinstance(response_id, str) else None
        if turn is not None:
            figures = {
                "response_id": turn.response_id,
                "latency_ms": turn.latency_ms,
                "cost": turn.cost,
            }
            self._post({"kind": "turn", "figures": figures})

    def _dispatch(self, record: EventRecord) -> None:
        with self._lock:
            handlers = [*self._handlers.get(record.type, []), *self._handlers.get("*", [])]
        for handler in handlers:
            try:
                result = handler(record.event)
                if asyncio.iscoroutine(result):
                    self._spawn(result)
            except Exception as exc:  # a handler's bug must not stop the others
                name = getattr(handler, "__name__", repr(handler))
                self._notice(f"Handler {name} for {record.type} failed: {exc!r}")
                traceback.print_exc()

    def _receive_status(self, message: dict[str, Any]) -> None:
        status = message["status"]
        self._cancel_front_end_timer()
        if message.get("call_id"):
            self.set_trait("call_id", message["call_id"])
        if "muted" in message:
            self.set_trait("muted", bool(message["muted"]))
        if "microphone" in message:
            self.set_trait("microphone_error", message["microphone"] or "")
        if message.get("max_message_size"):
            self._max_message_bytes = int(message["max_message_size"])
        error = message.get("error") or ""
        if status == "error" and message.get("step"):
            error = f"[{message['step']}] {error}"
        if status in ("closed", "error") and self._end_reason:
            error = self._end_reason  # the kernel ended it, and knows why better
        self._set_status(status, error if status in ("error", "closed") else "")
        if status == "connected":
            self.budget.start()
            with self._lock:
                pending, self._pending = self._pending, []
            if pending:
                self._post({"kind": "send", "events": pending})
        elif status in ("closed", "error"):
            if self.call_id and (status == "error" or not self._user_ended):
                # A call that failed or dropped after the provider made it (ICE never connected,
                # the network went, the page gave up): end it there too, or it lingers (and
                # bills) until the provider's own timeout. One the server ended already is 404.
                self._spawn(self._quiet_hangup(self.call_id))
            self._call_ended(status)

    def _call_ended(self, status: str) -> None:
        self.budget.stop()
        self._pending.clear()
        self._turns.reset()
        self._after_close(status)

    def _probe(self, strikes: int) -> None:
        """A page loaded while a call is live: is the page that holds the call still there?

        After a reload the old page (and its call) is gone, and nothing tells the kernel. The
        page holding the call answers a ping with its status; no answer twice in a row (twice,
        so that a kernel busy with a cell is not taken for a lost page) ends the call.
        """
        self._cancel_probe()
        self._post({"kind": "ping"})
        timer = threading.Timer(PROBE_TIMEOUT_S, self._probe_expired, args=(strikes,))
        timer.daemon = True
        self._probe_timer = timer
        timer.start()

    def _probe_expired(self, strikes: int) -> None:
        self._probe_timer = None
        if self.status not in ("connecting", "connected"):
            return
        if strikes > 1:
            self._probe(strikes - 1)
            return
        call_id = self.call_id
        self._set_status(
            "closed",
            "The page that held the call went away (reloaded or closed), so the call ended. "
            "Connect again, or run w.reconnect() to continue the conversation.",
        )
        if call_id:
            self._spawn(self._hangup(call_id))
        self._call_ended("closed")

    def _cancel_probe(self) -> None:
        timer, self._probe_timer = getattr(self, "_probe_timer", None), None
        if timer is not None:
            timer.cancel()

    def _after_close(self, status: str) -> None:
        if self._reconnect_after_close:
            self._reconnect_after_close = False
            self.reconnect()
            return
        dropped = status == "closed" and not self._user_ended and not self._end_reason
        if dropped and self.auto_reconnect:
            now = time.monotonic()
            self._reconnects = [t for t in self._reconnects if now - t < 60] + [now]
            if len(self._reconnects) <= 3:  # a call that keeps failing is left closed
                self._notice(f"The call dropped ({self.error}); reconnecting.")
                self.reconnect()
            else:
                self._notice("The call dropped 3 times within a minute; not reconnecting.")

    def _over_budget(self, reason: str) -> None:
        """A budget cap was reached: end the call on the provider's side and in the browser."""
        self._end_reason = f"Ended by the kernel: {reason}. Raise the cap or reconnect."
        call_id = self.call_id
        self._user_ended = True
        self._post({"kind": "disconnect"})
        if call_id:
            self._spawn(self._hangup(call_id))

    def _compose(self, request: dict[str, Any]) -> dict[str, Any]:
        """The composer's event, checked (as it is typed) or sent, by the same rules as send()."""
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        try:
            if request["op"] == "check":
                events.prepare(request["event"])
                return reply | {"ok": True, "value": {}}
            sent = self.send(request["event"])
            return reply | {"ok": True, "value": {"event_id": sent[0]["event_id"]}}
        except (events.InvalidEventError, RuntimeError) as exc:
            return reply | {"ok": False, "error": str(exc)}

    async def _answer(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        try:
            # A client per request: handlers run on whichever thread and loop delivered the
            # message (a comm subshell or the main shell), and an httpx client is bound to one.
            async with httpx.AsyncClient() as http:
                if request["op"] == "key":
                    secret = await auth.mint_client_secret(http, self._endpoint, dict(self.session))
                    reply |= {
                        "ok": True,
                        "value": {
                            "secret": secret.value,
                            "calls_url": self._endpoint.calls_url,
                            "expires_at": secret.expires_at,
                        },
                    }
                else:
                    answer, call_id = await auth.relay_offer(
                        http, self._endpoint, request["sdp"], dict(self.session)
                    )
                    self.set_trait("call_id", call_id)
                    reply |= {"ok": True, "value": {"sdp": answer, "call_id": call_id}}
        except (auth.RealtimeAuthError, ConfigError) as exc:
            reply |= {"ok": False, "error": str(exc)}
        except Exception as exc:  # never leave the browser waiting on a reply
            reply |= {"ok": False, "error": f"The kernel failed to answer: {exc!r}"}
            self._notice(f"Answering the browser's {request['op']} request failed: {exc!r}")
        self._post(reply)

    async def _hangup(self, call_id: str) -> None:
        try:
            async with httpx.AsyncClient() as http:
                await auth.hangup(http, self._endpoint, call_id)
        except (auth.RealtimeAuthError, ConfigError) as exc:
            self._notice(str(exc))

    async def _quiet_hangup(self, call_id: str) -> None:
        # After close(): no notices to show (the widget is gone), a failure changes nothing.
        with contextlib.suppress(Exception):
            async with httpx.AsyncClient() as http:
                await auth.hangup(http, self._endpoint, call_id)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = _background_loop()
            future = asyncio.run_coroutine_threadsafe(coro, loop)
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_status(self, status: str, error: str) -> None:
        with self.hold_trait_notifications():
            self.set_trait("error", error)
            self.set_trait("status", status)

    def _notice(self, text: str) -> None:
        self.set_trait("notices", [*self.notices, text][-MAX_NOTICES:])

    def _watch_front_end(self) -> None:
        # A cell can't wait for the browser, but a missing front end must not stay silent.
        self._cancel_front_end_timer()
        timer = threading.Timer(FRONT_END_TIMEOUT_S, self._front_end_missing)
        timer.daemon = True
        self._front_end_timer = timer
        timer.start()

    def _front_end_missing(self) -> None:
        if self.status == "connecting":
            self._set_status(
                "error",
                "No answer from the widget's front end: display the widget (make it the last "
                "line of a cell) in JupyterLab, Notebook 7 or VS Code, then connect again.",
            )

    def _cancel_front_end_timer(self) -> None:
        if self._front_end_timer is not None:
            self._front_end_timer.cancel()
            self._front_end_timer = None

    def __repr__(self) -> str:
        return (
            f"RealtimeWidget(status={self.status!r}, model={self.session.get('model')!r}, "
            f"endpoint={self._endpoint.name!r}, key={mask(self._endpoint.api_key)}, "
            f"events={len(self.events)})"
        )


def _merge(session: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    merged = {**session}
    for key, value in fields.items():
        if key == "audio" and isinstance(value, dict):
            audio = {**merged.get("audio", {})}
            for side, part in value.items():
                audio[side] = {**audio.get(side, {}), **part}
            merged["audio"] = audio
        else:
            merged[key] = value
    return merged


def _refuse_unknown(kwargs: dict[str, Any], traits: list[str]) -> None:
    unknown = [k for k in kwargs if k not in traits]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, [*_OWN_KWARGS, *traits], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"RealtimeWidget got an unknown keyword argument {name!r}.{hint}")


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
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
