"""RealtimeWidget: the notebook's handle on a realtime voice session.

A :class:`~realtime_widget.session.core.Session` (the conversation, tools, turns, metrics,
budgets, event log, handlers) plus the browser transport (the page makes the WebRTC call) plus
synced traits for the views. The protocol between kernel and page is docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import difflib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import anywidget
import traitlets

from .cell_output import route_to_cell
from .config import ConfigError, Endpoint, SessionType, build_session, resolve_endpoint
from .protocol import is_live_model
from .redact import mask, mask_tool_credentials
from .session.conversation import Conversation, Transcript
from .session.core import Reply, Request, Session, merge_config
from .session.dispatch import Handler
from .session.live import delegation_for
from .session.log import EventLog, EventRecord
from .session.metrics import Metrics, Prices, TurnMetrics
from .session.recording import Recording
from .session.tools import Tool, ToolRegistry, ToolResult
from .transports.browser import BrowserTransport

STATIC = Path(__file__).parent / "static"
_UNBUILT = """export default { render({ el }) { el.textContent =
  "realtime-widget: the front end is not built. Reinstall the package " +
  "(pip install -e . runs the build), or run: npm --prefix js ci && npm --prefix js run build";
} };"""
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
    "prices",
    "auto_reconnect",
    "mcp_approval",
    "session_type",
    "delegation_model",
)
# The session's traits the views show, mirrored as they change.
# A replay goes to the page in batches of at most this many events, and events due within a
# tick of each other travel together.
_REPLAY_BATCH = 500
_REPLAY_TICK = 0.01  # s
_MIRRORED = ("status", "error", "call_id", "totals", "notices", "config")


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
    # The config calls are made with, as the page may see it: tool credentials masked.
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
    # Record both sides of the calls in the kernel (w.recording, w.transcript[i].audio): the page
    # sends what it sent and heard as binary buffers. Read by the page when a call starts.
    record = traitlets.Bool(False).tag(sync=True)
    # Lets every view in the page find this widget's one call (see js/widget.ts).
    _call_key = traitlets.Unicode(read_only=True).tag(sync=True)

    def __init__(
        self,
        *,
        model: str | None = None,
        instructions: str | None = None,
        voice: str | None = None,
        output_modalities: list[str] | None = None,
        turn_detection: dict[str, Any] | Literal["default"] | None = "default",
        transcription: dict[str, Any] | str | None = None,
        tools: list[Callable[..., Any] | Tool | dict[str, Any]] | None = None,
        endpoint: str | Endpoint | None = None,
        api_key: str | None = None,
        azure_resource: str | None = None,
        mode: Literal["ephemeral", "relay"] | None = None,
        session: dict[str, Any] | None = None,
        log_size: int = 10_000,
        log_path: str | Path | None = None,
        tool_timeout: float = 30.0,
        max_duration: float | None = None,
        max_cost: float | None = None,
        prices: dict[str, Prices] | None = None,
        auto_reconnect: bool = False,
        mcp_approval: Callable[[Any], Any] | None = None,
        session_type: SessionType = "realtime",
        delegation_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        _refuse_unknown(kwargs, self.class_trait_names())
        endpoint_ = resolve_endpoint(endpoint, api_key=api_key, azure_resource=azure_resource)
        live = model is not None and is_live_model(model)
        if live and mode == "ephemeral":
            raise ConfigError(
                f"GPT-Live ({model!r}) has no ephemeral keys: the kernel always posts the "
                "page's offer itself (/v1/live/sessions), and the standard key stays in the "
                'kernel as ever. Leave mode= out (or use mode="relay").'
            )
        if delegation_model is not None and not live:
            raise ConfigError("delegation_model= is GPT-Live's (its tools' backend model).")
        config = build_session(
            model=model,
            instructions=instructions,
            voice=voice,
            output_modalities=output_modalities,
            turn_detection=turn_detection,
            transcription=transcription,
            extra=session,
            session_type=session_type,
        )
        if live and delegation_model is not None:
            asked = {"type": "responses", "responses": {"model": delegation_model}}
            config = {**config, "delegation": delegation_for([], asked, delegation_model)}
        self._core = Session(
            config,
            endpoint=endpoint_,
            tools=tools,
            tool_timeout=tool_timeout,
            log_size=log_size,
            log_path=log_path,
            max_duration=max_duration,
            max_cost=max_cost,
            prices=prices,
            auto_reconnect=auto_reconnect,
            mcp_approval=mcp_approval,
            wrap_handler=route_to_cell,
        )
        # Set before the comm opens, so the page's first state (and initialize) has them.
        self.set_trait("session", self._shown_config(self._core.config))
        self.set_trait("endpoint_label", endpoint_.label)
        self.set_trait("notices", list(self._core.notices))
        self.set_trait("_call_key", secrets.token_hex(8))
        super().__init__(mode=mode or ("relay" if live else "ephemeral"), **kwargs)
        self._browser = BrowserTransport(self, self._core, post=super().send)
        self._core.attach(self._browser)
        self._core.observe(self._mirror, names=list(_MIRRORED))
        self._core.on_turn(self._send_turn_figures)
        self._core.record = self.record
        self.on_msg(self._on_browser_message)

    # --- the session's API ------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        return self._core.endpoint

    @property
    def conversation(self) -> Conversation:
        """Every item of the conversation, built from the server's events."""
        return self._core.conversation

    @property
    def transcript(self) -> Transcript:
        """The turns so far as ``(role, text)``; ``.to_markdown()`` for a cell."""
        return self._core.transcript

    @property
    def events(self) -> EventLog:
        """Every event in both directions, with both clocks (a bounded ring)."""
        return self._core.events

    @property
    def metrics(self) -> Metrics:
        """Per-turn latency, tokens and cost (``.to_dataframe()``, ``.plot()``)."""
        return self._core.metrics

    @property
    def tools(self) -> ToolRegistry:
        """The Python functions the model can call."""
        return self._core.tools

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every tool call the kernel answered, with its full Python result."""
        return self._core.tool_results

    @property
    def server_session(self) -> dict[str, Any]:
        """The server's view of the session (from session.created/updated)."""
        return self._core.server_session

    @property
    def budget(self) -> Any:
        return self._core.budget

    @property
    def max_cost(self) -> float | None:
        """The spending cap (USD) across all of this widget's calls; None: no cap.

        Once reached, the call ends and ``connect()`` refuses until it is raised."""
        return self._core.max_cost

    @max_cost.setter
    def max_cost(self, value: float | None) -> None:
        self._core.max_cost = value

    @property
    def max_duration(self) -> float | None:
        """The time cap (seconds) of each call; None: no cap."""
        return self._core.max_duration

    @max_duration.setter
    def max_duration(self, value: float | None) -> None:
        self._core.max_duration = value

    @property
    def auto_reconnect(self) -> bool:
        return self._core.auto_reconnect

    @auto_reconnect.setter
    def auto_reconnect(self, value: bool) -> None:
        self._core.auto_reconnect = bool(value)

    def connect(self) -> None:
        """Start the call (the same as clicking Connect in a view).

        Returns at once: the page sets up the call and ``status`` follows it
        (``connecting`` → ``connected``). Events sent before then are queued, and so is the
        connect itself if the page has not loaded the widget yet.
        """
        self._core.connect()

    def disconnect(self) -> None:
        """End the call in the page (releasing the microphone)."""
        self._core.disconnect()

    def hangup(self) -> None:
        """End the call, and end it on the provider's side (``/calls/{id}/hangup``)."""
        self._core.hangup()

    def reconnect(self) -> None:
        """A new call with a fresh key, the session and tools restored, the conversation
        replayed (see :meth:`Session.reconnect`)."""
        self._core.reconnect()

    def send(self, content: Any, buffers: list[bytes] | None = None) -> Any:
        """Send Realtime client event(s) on the call, validated first.

        A dict with a ``type`` (or a list of them) is a client event: it is checked against the
        API's schema (:class:`~realtime_widget.events.InvalidEventError` names the field, and
        nothing is sent), queued while the call connects, and returned as sent with its
        ``event_id``. A dict without a ``type`` is an ipywidgets custom message, sent as
        ``Widget.send`` sends it (anywidget's own helpers rely on that).

        >>> w.send({"type": "response.create", "response": {"instructions": "Say hi."}})
        ... # doctest: +SKIP
        """
        if _is_client_event(content):
            if buffers:
                raise TypeError("Realtime client events carry no binary buffers.")
            return self._core.send(content)
        return super().send(content, buffers)

    def update_session(self, **fields: Any) -> dict[str, Any]:
        """Change the session live (``session.update``), e.g. ``update_session(instructions=…)``;
        outside a call, the next call's config."""
        return self._core.update_session(**fields)

    def say(self, text: str = "", *, image: Any = None, **response: Any) -> Request:
        """Add a user turn (text, an ``image``, or both) and ask for a response; returns the
        request (``wait_for("response.done", reply_to=request)`` waits for its reply).

        >>> w.say("What is in this picture?", image="photo.jpg")  # doctest: +SKIP
        """
        return self._core.say(text, image=image, **response)

    def ask(
        self, text: str = "", *, image: Any = None, timeout: float = 60.0, **response: Any
    ) -> asyncio.Future[Reply]:
        """Like :meth:`say`, and a future of the reply's text (``.interrupted`` if cut short).

        >>> answer = await w.ask("What is 2 + 2?")  # doctest: +SKIP
        """
        return self._core.ask(text, image=image, timeout=timeout, **response)

    def play(self, source: Any) -> asyncio.Future[None]:
        """Speak a recorded turn into the live call, as if said into the microphone (whose
        track it stands in for while it plays): a WAV/MP3/OGG path, WAV bytes, or ``(samples,
        rate)``. A spoken turn becomes reproducible without a microphone. Returns a future that
        settles once the recording has been sent.

        >>> await w.play("question.wav")  # doctest: +SKIP
        """
        from .workbench.audio import pcm16

        if self.status != "connected":
            raise RuntimeError("Not connected: w.play() speaks into a live call; connect first.")
        pcm = pcm16(source)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "w.play() runs on an event loop (a notebook cell has one)."
            ) from None
        return asyncio.ensure_future(self._browser.play(pcm))

    def replay(self, source: Any, speed: float | None = 1.0) -> Any:
        """Play a saved session into this widget's views (and its Python objects), with its
        original timing (``speed=2`` twice as fast; ``None``: all at once), for teaching and
        demos. ``source`` is a path (what ``log_path=`` or ``events.to_jsonl()`` wrote) or a
        loaded :class:`Session`. Nothing is sent to any server.

        With a timing, returns a task a cell can await; ``None`` returns when it is drawn.

        >>> await w.replay("session.jsonl", speed=2)  # doctest: +SKIP
        """
        if self._core.live:
            raise RuntimeError(
                "Disconnect first: a replay draws into the views a live call is using."
            )
        if speed is not None and not speed > 0:
            raise ValueError(
                f"speed is a positive factor (2 = twice as fast) or None, not {speed}."
            )
        if isinstance(source, Session):
            records = source.events.snapshot()
        else:
            records = EventLog.read_jsonl(source)
        if speed is None:
            for start in range(0, len(records), _REPLAY_BATCH):
                self._replay_batch(records[start : start + _REPLAY_BATCH])
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "A timed replay runs on an event loop (a notebook cell has one); "
                "use speed=None to draw it at once."
            ) from None
        return asyncio.ensure_future(self._replay_timed(records, speed))

    async def _replay_timed(self, records: list[EventRecord], speed: float) -> None:
        if not records:
            return
        loop = asyncio.get_running_loop()
        began, first = loop.time(), records[0].t_kernel
        batch: list[EventRecord] = []
        for record in records:
            due = (record.t_kernel - first) / 1000 / speed - (loop.time() - began)
            if due > _REPLAY_TICK:  # the schedule of the replay itself, as the session had it
                self._replay_batch(batch)
                batch = []
                await asyncio.sleep(due)
            batch.append(record)
        self._replay_batch(batch)

    def _replay_batch(self, batch: list[EventRecord]) -> None:
        if not batch:
            return
        self._browser.post(
            {
                "kind": "replay",
                "events": [{"dir": r.direction, "t": r.t_kernel, "event": r.event} for r in batch],
            }
        )
        self._core._restore(batch)

    def approve(self, request_id: str, approve: bool = True, reason: str | None = None) -> None:
        """Answer an MCP server's approval request (or pass ``mcp_approval=`` a callback that
        gets each request and returns True, False or ``(bool, reason)``)."""
        self._core.approve(request_id, approve, reason)

    def interrupt(self) -> None:
        """Stop the model: cancel the response and clear the audio already queued to play."""
        self._core.interrupt()

    # --- GPT-Live ---------------------------------------------------------------------------

    @property
    def is_live(self) -> bool:
        """A GPT-Live session (``model="gpt-live-1.1"``): full duplex, ``/v1/live``."""
        return self._core.is_live

    def append_instructions(self, text: str) -> dict[str, Any]:
        """GPT-Live: trusted instructions added mid-call (they may interrupt its speech)."""
        return self._core.append_instructions(text)

    def think(self, text: str, *, delegation_id: str | None = None) -> dict[str, Any]:
        """GPT-Live: facts the model takes silently (e.g. a delegated task's answer)."""
        return self._core.think(text, delegation_id=delegation_id)

    def comment(self, text: str, *, delegation_id: str | None = None) -> dict[str, Any]:
        """GPT-Live: words for the model to say (it may paraphrase them)."""
        return self._core.comment(text, delegation_id=delegation_id)

    def play_fixture(self, source: Any) -> dict[str, Any]:
        """GPT-Live: play an exact clip as the model's voice (a WAV/MP3/OGG path, WAV bytes or
        ``(samples, rate)``; at most 30 s), sent over the kernel's sideband."""
        from .workbench.audio import pcm16

        return self._core.play_fixture(pcm16(source))

    def fork(self) -> None:
        """GPT-Live: a new call continuing the last (finished, ``store=True``) session, with its
        history kept on OpenAI's side."""
        self._core.fork()

    def on_delegation(self, handler: Any) -> Any:
        """GPT-Live with client delegation: ``handler(delegation)`` answers each task the
        model hands over (``delegation.say(text)``, ``.think(text)``, or return the text)."""
        return self._core.on_delegation(handler)

    def tool(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Make a Python function a tool the model can call (``name=``, ``description=``,
        ``timeout=``); the kernel runs it.

        >>> @w.tool  # doctest: +SKIP
        ... def get_weather(city: str) -> str:
        ...     "The weather in a city."
        ...     return "sunny"
        """
        return self._core.tool(fn, **options)

    def remove_tool(self, name: str) -> None:
        """Stop offering a tool to the model."""
        self._core.remove_tool(name)

    @overload
    def on(self, event_type: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event_type: str, handler: H) -> H: ...

    def on(self, event_type: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Call ``handler(event)`` for every event of a type (``"*"``: all), both directions.
        What it prints shows in the cell that registered it.

        >>> @w.on("response.done")  # doctest: +SKIP
        ... def done(event): print(event["response"]["usage"])
        """
        if handler is None:
            return self._core.on(event_type)
        return self._core.on(event_type, handler)

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        """Remove one handler, or all handlers of a type."""
        self._core.off(event_type, handler)

    def wait_for(
        self,
        event_type: str,
        *,
        where: Callable[[dict[str, Any]], bool] | None = None,
        reply_to: Request | str | None = None,
        timeout: float = 30.0,
    ) -> asyncio.Future[dict[str, Any]]:
        """A future of the next event of a type, registered now: ``await`` it in a cell.

        It settles at once for a once-per-call event that already came (``session.created``)
        and fails at once if the call ends first. Create it *before* the action::

            reply = w.wait_for("response.done", reply_to=w.say("hello"))  # or:
            ready = w.wait_for("session.created"); w.connect(); await ready
        """
        return self._core.wait_for(event_type, where=where, reply_to=reply_to, timeout=timeout)

    # --- the page ---------------------------------------------------------------------------

    def mute(self, muted: bool = True) -> None:
        """Mute (or with ``False`` unmute) the microphone; ``muted`` follows."""
        if not isinstance(muted, bool):
            raise TypeError(f"mute() takes True or False, not {muted!r}.")
        self._browser.post({"kind": "mute", "muted": muted})
        if self._core.is_live and self._core.status == "connected":
            # GPT-Live is told too (it acknowledges with session.input_audio.muted).
            kind = "mute" if muted else "unmute"
            self._core.send({"type": f"session.input_audio.{kind}"})

    def unmute(self) -> None:
        self.mute(False)

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        """How the server finds the end of a turn: ``{"type": "server_vad", ...}``,
        ``{"type": "semantic_vad", "eagerness": ...}``, or ``None`` (off: commit yourself).

        Setting it changes the live session (``session.update``) and the next call's config;
        ``"server_vad"`` and ``"semantic_vad"`` are short for ``{"type": ...}``.

        >>> w.turn_detection = {"type": "server_vad", "silence_duration_ms": 800}  # doctest: +SKIP
        """
        audio_in = self._core.config.get("audio", {}).get("input", {})
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

    @property
    def recording(self) -> Recording:
        """Both sides of the calls (``record=True``): plays in a cell, ``.save("call.wav")``
        (stereo, you left, the model right), ``.user``/``.model``, ``.cut(start, end)``;
        each transcript turn's ``.audio`` is its cut.

        >>> w = RealtimeWidget(endpoint="local", record=True)  # doctest: +SKIP
        >>> w.recording.save("call.wav")  # doctest: +SKIP
        """
        if not self.record and self._core.tape.frames == 0:
            raise RuntimeError(
                "Nothing is recorded: make the widget with record=True (or set w.record = True "
                "before connecting), then the call's audio is kept here."
            )
        return self._core.recording

    @traitlets.observe("record")
    def _record_changed(self, change: dict[str, Any]) -> None:
        core = getattr(self, "_core", None)
        if core is not None:
            core.record = bool(change["new"])

    @traitlets.observe("push_to_talk")
    def _push_to_talk_changed(self, change: dict[str, Any]) -> None:
        # In a call the page sends the session.update (and the config follows its echo); here
        # the config agrees at once, so the next call is made with turn detection off (or back).
        if change["new"]:
            self._detection_before_ptt = self.turn_detection
            detection = None
        else:
            detection = getattr(self, "_detection_before_ptt", {"type": "server_vad"})
        fields = {"audio": {"input": {"turn_detection": detection}}}
        self._core.set_trait("config", merge_config(self._core.config, fields))

    def close(self) -> None:
        """Close the widget: the page ends the call and releases the microphone, and the kernel
        hangs the call up on the provider (the page may already be gone)."""
        # close() also runs from __del__, possibly on a widget whose __init__ failed.
        browser = getattr(self, "_browser", None)
        if browser is not None:
            browser.close()
        core = getattr(self, "_core", None)
        if core is not None and self.comm is not None:
            core.close("The widget was closed.")
        super().close()

    # --- plumbing ---------------------------------------------------------------------------

    def _on_browser_message(self, _widget: Any, content: Any, buffers: list[bytes]) -> None:
        self._browser.receive(content, buffers)

    def _mirror(self, change: dict[str, Any]) -> None:
        name, value = change["name"], change["new"]
        if name == "config":
            self.set_trait("session", self._shown_config(value))
        else:
            self.set_trait(name, value)

    @staticmethod
    def _shown_config(config: dict[str, Any]) -> dict[str, Any]:
        if "tools" not in config:
            return config
        return {**config, "tools": mask_tool_credentials(config["tools"])}

    def _send_turn_figures(self, turn: TurnMetrics) -> None:
        """The views show each reply's latency and cost: a stream, so a message per response."""
        figures = {
            "response_id": turn.response_id,
            "latency_ms": turn.latency_ms,
            "cost": turn.cost,
        }
        self._browser.post({"kind": "turn", "figures": figures})

    def __repr__(self) -> str:
        endpoint = self._core.endpoint
        return (
            f"RealtimeWidget(status={self.status!r}, model={self.session.get('model')!r}, "
            f"endpoint={endpoint.name!r}, key={mask(endpoint.api_key)}, "
            f"events={len(self.events)})"
        )


def _is_client_event(content: Any) -> bool:
    # ipywidgets' custom messages (anywidget's replies among them) are dicts without a "type";
    # anything else given to send() is meant as a client event, and is checked as one.
    return not (isinstance(content, dict) and "type" not in content)


def _refuse_unknown(kwargs: dict[str, Any], traits: list[str]) -> None:
    unknown = [k for k in kwargs if k not in traits]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, [*_OWN_KWARGS, *traits], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"RealtimeWidget got an unknown keyword argument {name!r}.{hint}")
