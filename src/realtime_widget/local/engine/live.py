"""One local GPT-Live session: client events in, server events out, with no I/O of its own.

The same contract as OpenAI's ``/v1/live`` (every event parses as its ``openai.types.live``
type), with a small deterministic full-duplex model, so tests and workshops can predict it:

- ``session.started`` first, with the resolved session (``live_…`` id, ``expires_at``).
- It listens while it speaks. Each stretch of speech it hears (energy VAD, 24 kHz PCM16) is
  captioned ``(N.N seconds of speech)`` (``session.input_transcript.delta``, timed on the
  session's clock), then answered ``I heard N.N seconds of audio.``
  (``session.output_transcript.delta`` with the voice on the media track, or
  ``session.output_audio.delta`` over a primary WebSocket). Speech that starts while it talks
  stops its voice (the caption of what it had said stays).
- ``session.commentary.append`` is spoken as given; ``thinking.append`` is taken silently;
  ``instructions.append`` is followed. Each is acknowledged (``*.appended``).
- Delegation, by the same phrasing as the Realtime engine: appended instructions or commentary
  saying ``call NAME`` (``with ARGS``) delegate a task. With ``delegation.type: "responses"``
  and a function tool ``NAME`` declared there: ``session.delegation.created``, then the
  Responses stream wrapped in ``response.event`` (``response.created``,
  ``response.output_item.done`` with the ``function_call``, ``response.completed``); after
  ``response.item.create`` (``function_call_output``) and ``response.create`` it says ``The
  NAME tool returned: OUTPUT``. With client delegation (``delegation`` omitted or null), a
  ``session.delegation.created`` with target ``client``; the client's commentary or thinking
  with that ``delegation_id`` answers it.
- ``session.update`` changes ``delegation`` (same type) and ``triggers`` only; the rest is
  refused ``immutable_field_update``. ``session.start`` and ``session.input_audio.append`` are
  refused on WebRTC; ``output_audio.fixture.play`` is taken on a WebSocket or sideband only.
- The data channel's allow-lists (``session.client.data_channel``) hold for the page only.
- ``session.usage.updated`` every few seconds (cumulative whole seconds); ``session.close``
  ends with ``session.closed`` (``close_requested``), the duration limit with ``expired``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ...protocol import SchemaError, is_live_model, validate_client_event
from ..audio import SAMPLE_RATE, EnergyVAD, pcm16_to_base64, synthesize_speech
from .responder import TOOL_REQUEST, parse_tool_arguments
from .state import MAX_SESSION_SECONDS, AudioPlayer, Event, new_id

DEFAULT_VOICE = "marin"
USAGE_EVERY_S = 5.0
WS_AUDIO_CHUNK_MS = 200
LiveTransport = Literal["webrtc", "websocket"]
# What a WebRTC client may not send, and why (the API's words).
_NOT_ON_WEBRTC = {
    "session.start": "A WebRTC session starts when it is created: do not send session.start.",
    "session.input_audio.append": "Over WebRTC, audio travels on the media track.",
    "session.output_audio.fixture.play": "Play fixtures over a WebSocket or the sideband.",
}
# Audio events carry no event_id (the SDK's types have none).
_NO_EVENT_ID = ("session.output_audio.delta", "session.input_audio.append")
_IMMUTABLE = ("model", "instructions", "audio", "input", "store", "client")


def live_model_problem(model: Any) -> tuple[str, str] | None:
    """Why ``/v1/live/sessions`` refuses a model, as the API says it ``(code, message)``."""
    if not isinstance(model, str) or not model:
        return "missing_required_parameter", "Missing required parameter: 'session.model'."
    if not is_live_model(model):
        return (
            "invalid_model",
            f"The model '{model}' is not a GPT-Live model: /v1/live/sessions serves gpt-live-1 "
            "and gpt-live-1.1. Realtime models are served at /v1/realtime.",
        )
    return None


def history_input(history: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """A stored session's history as a fork's ``input`` (the newest 128 messages)."""
    return [
        {
            "type": "message",
            "role": role,
            "content": [
                {"type": "output_text" if role == "assistant" else "input_text", "text": text}
            ],
        }
        for role, text in history[-128:]
    ]


def resolved_session(config: dict[str, Any], max_duration_s: float) -> dict[str, Any]:
    """The session as ``session.started`` reports it."""
    audio = config.get("audio") or {}
    voice = (audio.get("output") or {}).get("voice") or DEFAULT_VOICE
    return {
        "id": new_id("live_", 24),
        "expires_at": int(time.time() + max_duration_s),
        "model": config["model"],
        "status": "active",
        "audio": {"output": {"voice": voice}},
        "client": config.get("client"),
        "delegation": config.get("delegation"),
        "input": config.get("input") or [],
        "instructions": config.get("instructions") or "",
        "store": bool(config.get("store", False)),
    }


class LiveSession:
    """One GPT-Live session (see the module docstring). ``player`` is a WebRTC call's voice
    track (None over a WebSocket, where audio travels as deltas). ``emit(event, to_page)``:
    ``to_page`` is false for events the data channel's allow-list keeps from the page."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        emit: Callable[[Event, bool], None],
        transport: LiveTransport = "webrtc",
        player: AudioPlayer | None = None,
        on_close: Callable[[int, str], None] | None = None,
        max_duration_s: float = MAX_SESSION_SECONDS,
        text_delay_s: float = 0.005,
    ) -> None:
        self.session = resolved_session(config, max_duration_s)
        self._emit = emit
        self.transport = transport
        self.player = player
        self._on_close = on_close
        self.max_duration_s = max_duration_s
        self.text_delay_s = text_delay_s
        self._vad = EnergyVAD(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
        self._speech_start_ms = 0
        self._muted = False
        self._started_at = 0.0
        self._pending_calls: dict[str, dict[str, Any]] = {}  # delegation id → its call
        self._outputs: dict[str, str] = {}  # call_id → output given by response.item.create
        self._client_delegations: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        # What was said, as (role, text): a stored session's history, which a fork starts with.
        self.history: list[tuple[str, str]] = [
            (str(m.get("role")), str((m.get("content") or [{}])[0].get("text", "")))
            for m in self.session["input"]
            if isinstance(m, dict)
        ]
        self.closed = False

    # --- life ------------------------------------------------------------------------------

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._send({"type": "session.started", "session": self.session})
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(self.max_duration_s, self._finish, "expired"))
        self._spawn(self._report_usage())

    def close(self) -> None:
        """Stop all work; no events are sent after this."""
        if self.closed:
            return
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()

    def _finish(self, reason: str) -> None:
        """``session.closed`` with the final usage, then the transport closes."""
        if self.closed:
            return
        self._send(
            {
                "type": "session.closed",
                "reason": reason,
                "session": self.session,
                "usage": {"seconds": self._seconds()},
            }
        )
        self.close()
        if self._on_close is not None:
            self._on_close(1000, reason)

    def _seconds(self) -> int:
        return int(self._elapsed_ms() // 1000)

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started_at) * 1000) if self._started_at else 0

    async def _report_usage(self) -> None:
        while not self.closed:
            await asyncio.sleep(USAGE_EVERY_S)
            self._send({"type": "session.usage.updated", "usage": {"seconds": self._seconds()}})

    # --- out -------------------------------------------------------------------------------

    def _send(self, event: Event, *, client_event_id: str | None = None) -> None:
        if self.closed:
            return
        out = {"type": event["type"], **event}
        if event["type"] not in _NO_EVENT_ID:
            out["event_id"] = new_id("event_")
        if client_event_id is not None and "client_event_id" not in out:
            out["client_event_id"] = client_event_id
        self._emit(out, self._page_may_see(out))

    def _page_may_see(self, event: Event) -> bool:
        allowed = self._data_channel().get("allowed_server_events", "all")
        if allowed == "all" or allowed is None:
            return True
        for selector in allowed:
            if selector.get("type") != event["type"]:
                continue
            inner = selector.get("response_event")
            if inner is None or inner == (event.get("event") or {}).get("type"):
                return True
        return False

    def _data_channel(self) -> dict[str, Any]:
        return dict((self.session.get("client") or {}).get("data_channel") or {})

    def _error(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        error: dict[str, Any] = {"type": type_, "code": code, "message": message}
        if param is not None:
            error["param"] = param
        if event_id is not None:
            error["client_event_id"] = event_id
        self._send({"type": "error", "error": error})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- in --------------------------------------------------------------------------------

    def receive(self, text: str | bytes, *, from_page: bool = False) -> None:
        """One client message. ``from_page``: it came on the WebRTC data channel (the
        untrusted front end), where the allow-list holds."""
        if self.closed:
            return
        try:
            event = json.loads(text)
        except ValueError:
            self._error("invalid_json", "We could not parse the JSON body of your request.")
            return
        if not isinstance(event, dict):
            self._error("invalid_type", "A client event must be a JSON object.")
            return
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if event.get("type") == "session.update" and isinstance(event.get("session"), dict):
            # What was fixed at creation is refused as such, before any field check.
            for name in event["session"]:
                if name in _IMMUTABLE:
                    self._error(
                        "immutable_field_update",
                        f"The field 'session.{name}' cannot be changed after the session starts.",
                        param=f"session.{name}",
                        event_id=event_id,
                    )
                    return
        try:
            validate_client_event(event, live=True)
        except SchemaError as exc:
            self._error(exc.code, exc.message, param=exc.param, event_id=event_id)
            return
        kind = event["type"]
        if from_page:
            allowed = self._data_channel().get("allowed_client_events", "all")
            if allowed != "all" and allowed is not None and kind not in allowed:
                self._error(
                    "data_channel_permissions",
                    f"The data channel may not send {kind}: the session's "
                    "client.data_channel.allowed_client_events does not list it.",
                    param="type",
                    event_id=event_id,
                )
                return
        if self.transport == "webrtc" and kind in _NOT_ON_WEBRTC and from_page:
            self._error("invalid_event", _NOT_ON_WEBRTC[kind], param="type", event_id=event_id)
            return
        handler = getattr(self, "_on_" + kind.replace(".", "_"), None)
        if handler is None:
            self._error(
                "unsupported_event",
                f"The local server does not implement {kind}.",
                param="type",
                event_id=event_id,
            )
            return
        handler(event, event_id)

    def _on_session_start(self, event: Event, event_id: str | None) -> None:
        self._error(
            "session_already_started", "The session has already started.", event_id=event_id
        )

    def _on_session_update(self, event: Event, event_id: str | None) -> None:
        fields = event["session"]
        if "delegation" in fields:
            now = self.session.get("delegation") or {}
            new = fields["delegation"] or {}
            if (now.get("type") or "client") != (new.get("type") or "client"):
                self._error(
                    "immutable_field_update",
                    "The delegation type cannot change after the session starts.",
                    param="session.delegation.type",
                    event_id=event_id,
                )
                return
            if new.get("type") == "responses":
                merged = {**(now.get("responses") or {}), **(new.get("responses") or {})}
                new = {**now, **new, "responses": merged}
            self.session["delegation"] = new or None
        if "triggers" in fields:
            self.session["triggers"] = fields["triggers"]
        self._send({"type": "session.updated", "session": self.session}, client_event_id=event_id)

    def _on_session_close(self, event: Event, event_id: str | None) -> None:
        self._finish("close_requested")

    def _pcm(self, event: Event, event_id: str | None) -> np.ndarray | None:
        """An event's base64 PCM16 ``audio``, or None once the error is sent."""
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            self._error(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded PCM16 audio.",
                param="audio",
                event_id=event_id,
            )
            return None
        return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)

    def _on_session_input_audio_append(self, event: Event, event_id: str | None) -> None:
        pcm = self._pcm(event, event_id)
        if pcm is not None:
            self.feed_audio(pcm)

    def _on_session_input_audio_mute(self, event: Event, event_id: str | None) -> None:
        self._muted = True
        self._send({"type": "session.input_audio.muted"}, client_event_id=event_id)

    def _on_session_input_audio_unmute(self, event: Event, event_id: str | None) -> None:
        self._muted = False
        self._send({"type": "session.input_audio.unmuted"}, client_event_id=event_id)

    def _appended(self, kind: str, event_id: str | None) -> None:
        at = self._elapsed_ms()
        self._send(
            {"type": f"session.{kind}.appended", "start_ms": at, "end_ms": at},
            client_event_id=event_id,
        )

    def _on_session_instructions_append(self, event: Event, event_id: str | None) -> None:
        self._appended("instructions", event_id)
        self._maybe_delegate(event["content"])

    def _on_session_thinking_append(self, event: Event, event_id: str | None) -> None:
        self._appended("thinking", event_id)
        self._client_delegations.discard(str(event.get("delegation_id")))

    def _on_session_commentary_append(self, event: Event, event_id: str | None) -> None:
        self._appended("commentary", event_id)
        self._client_delegations.discard(str(event.get("delegation_id")))
        if not self._maybe_delegate(event["content"]):
            self._say(event["content"])

    def _on_session_output_audio_fixture_play(self, event: Event, event_id: str | None) -> None:
        pcm = self._pcm(event, event_id)
        if pcm is None:
            return
        if pcm.size > 30 * SAMPLE_RATE:
            self._error(
                "invalid_value",
                "A fixture is at most 30 seconds.",
                param="audio",
                event_id=event_id,
            )
            return
        self._send({"type": "session.output_audio.fixture.playing"}, client_event_id=event_id)
        self._spawn(self._play_fixture(pcm, event_id))

    async def _play_fixture(self, pcm: np.ndarray, event_id: str | None) -> None:
        await self._voice(new_id("fixture_"), pcm)
        self._send({"type": "session.output_audio.fixture.played"}, client_event_id=event_id)

    def _on_response_item_create(self, event: Event, event_id: str | None) -> None:
        if not self._delegates_to("responses", event_id):
            return
        item = event["item"]
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            self._outputs[str(item.get("call_id"))] = str(item.get("output", ""))

    def _on_response_create(self, event: Event, event_id: str | None) -> None:
        if not self._delegates_to("responses", event_id):
            return
        answered = [(d, c) for d, c in self._pending_calls.items() if c["call_id"] in self._outputs]
        if not answered:
            self._error(
                "no_pending_output",
                "response.create continues a delegation after its function call outputs: "
                "send response.item.create with each function_call_output first.",
                event_id=event_id,
            )
            return
        for delegation_id, call in answered:
            del self._pending_calls[delegation_id]
            output = self._outputs.pop(call["call_id"])
            text = f"The {call['name']} tool returned: {output}"
            self._spawn(self._respond_with_text(delegation_id, text))

    def _on_decision_create(self, event: Event, event_id: str | None) -> None:
        self._delegates_to("decisions", event_id)

    _on_decision_item_create = _on_decision_create
    _on_decision_item_delete = _on_decision_create

    def _delegates_to(self, kind: str, event_id: str | None) -> bool:
        current = (self.session.get("delegation") or {}).get("type") or "client"
        if current == kind:
            return True
        self._error(
            "invalid_delegation",
            f"This session's delegation is '{current}': it takes no {kind} commands.",
            event_id=event_id,
        )
        return False

    # --- hearing ---------------------------------------------------------------------------

    def feed_audio(self, pcm: np.ndarray) -> None:
        """Incoming user audio: PCM16 mono at 24 kHz (the WebRTC track or a WebSocket)."""
        if self.closed or self._muted or pcm.size == 0:
            return
        for vad_event in self._vad.process(pcm.astype(np.int16)):
            if vad_event.kind == "speech_started":
                self._speech_start_ms = vad_event.audio_ms
                if self.player is not None and self.player.playing is not None:
                    self.player.clear()  # full duplex: it stops talking when talked over
            else:
                self._heard(self._speech_start_ms, vad_event.audio_ms)

    def _heard(self, start_ms: int, end_ms: int) -> None:
        self._spawn(self._answer_speech(start_ms, end_ms))

    async def _answer_speech(self, start_ms: int, end_ms: int) -> None:
        # What it heard is captioned as heard, before its answer starts.
        seconds = (end_ms - start_ms) / 1000
        await self._caption("input", f"({seconds:.1f} seconds of speech)", start_ms, end_ms)
        await self._speak(f"I heard {seconds:.1f} seconds of audio.")

    async def _caption(self, which: str, text: str, start_ms: int, end_ms: int) -> None:
        self.history.append(("user" if which == "input" else "assistant", text))
        words = text.split(" ")
        step = (end_ms - start_ms) / max(len(words), 1)
        for i, word in enumerate(words):
            self._send(
                {
                    "type": f"session.{which}_transcript.delta",
                    "delta": word if i == 0 else " " + word,
                    "start_ms": int(start_ms + i * step),
                    "end_ms": int(start_ms + (i + 1) * step),
                }
            )
            if self.text_delay_s:
                await asyncio.sleep(self.text_delay_s)

    # --- speaking --------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self._spawn(self._speak(text))

    async def _speak(self, text: str) -> None:
        pcm = await asyncio.to_thread(synthesize_speech, text)
        start = self._elapsed_ms()
        utterance = new_id("say_")
        caption = self._caption("output", text, start, start + pcm.size * 1000 // SAMPLE_RATE)
        await asyncio.gather(caption, self._voice(utterance, pcm))

    async def _voice(self, utterance: str, pcm: np.ndarray) -> None:
        if self.player is not None:
            self.player.play(utterance, pcm)
            return
        chunk = SAMPLE_RATE * WS_AUDIO_CHUNK_MS // 1000
        for at in range(0, pcm.size, chunk):
            delta = pcm16_to_base64(pcm[at : at + chunk])
            self._send({"type": "session.output_audio.delta", "delta": delta})

    # --- delegation ------------------------------------------------------------------------

    def _maybe_delegate(self, text: str) -> bool:
        """A tool request in what the model was given: delegate it (True), else False."""
        match = TOOL_REQUEST.search(text)
        if match is None:
            return False
        delegation = self.session.get("delegation") or {}
        kind = delegation.get("type") or "client"
        name = match.group("name").rstrip(".,!?")
        delegation_id = new_id("del_")
        if kind == "client":
            self._client_delegations.add(delegation_id)
            self._send(
                {
                    "type": "session.delegation.created",
                    "delegation": {"id": delegation_id, "type": "delegation", "target": "client"},
                    "offset_ms": self._elapsed_ms(),
                }
            )
            return True
        if kind != "responses":
            return False
        tools = (delegation.get("responses") or {}).get("tools") or []
        if not any(t.get("type") == "function" and t.get("name") == name for t in tools):
            return False
        args = parse_tool_arguments(match.group("args") or "")
        self._spawn(self._delegate_call(delegation_id, name, args))
        return True

    async def _delegate_call(self, delegation_id: str, name: str, args: dict[str, Any]) -> None:
        response_id = new_id("resp_")
        self._send(
            {
                "type": "session.delegation.created",
                "delegation": {
                    "id": delegation_id,
                    "type": "delegation",
                    "target": "responses",
                    "response_id": response_id,
                },
                "offset_ms": self._elapsed_ms(),
            }
        )
        call = {
            "id": new_id("fc_"),
            "type": "function_call",
            "status": "completed",
            "call_id": new_id("call_"),
            "name": name,
            "arguments": json.dumps(args),
        }
        self._pending_calls[delegation_id] = call
        await self._stream(delegation_id, response_id, call)

    async def _respond_with_text(self, delegation_id: str, text: str) -> None:
        message = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        await self._stream(delegation_id, new_id("resp_"), message)
        await self._speak(text)

    async def _stream(self, delegation_id: str, response_id: str, item: dict[str, Any]) -> None:
        """A Responses stream of one output item, each event wrapped in ``response.event``."""
        response: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "status": "in_progress",
            "output": [],
        }
        inner: list[dict[str, Any]] = [
            {"type": "response.created", "response": response},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress"},
            },
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": {**response, "status": "completed"}},
        ]
        for number, nested in enumerate(inner):
            if self.text_delay_s:
                await asyncio.sleep(self.text_delay_s)
            numbered = {**nested, "sequence_number": number}
            self._send(
                {"type": "response.event", "delegation_id": delegation_id, "event": numbered}
            )
