"""The local server's model: one Realtime session, small and deterministic.

It speaks the GA Realtime event contract (every event it emits parses with the ``openai``
package's typed models) and answers with a model whose behaviour is fixed and documented, so that
tests and workshops can predict every reply.

How it answers ``response.create`` (the last item of the response's input decides):

- a user text ``T``: the reply is ``You said: T`` (``T`` cut to 200 characters);
- a user audio item (from server VAD or ``input_audio_buffer.commit``): ``I heard N.N seconds of
  audio.`` Its input transcription, when ``audio.input.transcription`` is set, is the placeholder
  ``(N.N seconds of speech)``, delivered shortly after the item, as the real API does;
- a tool request, when tools are declared and ``tool_choice`` is not ``"none"``: a user text of
  the form ``call NAME`` or ``call NAME with ARGS`` (``use``/``run`` work too, and the tool's name
  may be in backticks) gives a ``function_call`` item for the declared tool ``NAME``. ``ARGS`` is a
  JSON object (``call get_weather with {"city": "Paris"}``) or ``key=value`` pairs separated by
  commas or "and" (``call get_weather with city=Paris, days=3``; numbers, ``true``/``false`` and
  quoted strings are typed). ``tool_choice: "required"`` or ``{"type": "function", "name": N}``
  forces a call (of the first or the named tool) with the arguments found, else ``{}``;
- a ``function_call_output``: ``The NAME tool returned: OUTPUT`` (``OUTPUT`` cut to 200 chars);
- anything else (an empty conversation, a system or assistant item last): ``Hello from the local
  realtime server.``

Replies stream word by word as ``response.output_text.delta`` (``output_modalities: ["text"]``)
or as ``response.output_audio_transcript.delta`` with speech (``["audio"]``, the default). Over
WebRTC the speech plays on the server's audio track and the transcript deltas keep pace with it,
so the response is active while the model speaks; ``output_audio_buffer.started``/``stopped``
follow the audio actually sent. Over WebSocket the same speech arrives as
``response.output_audio.delta`` (PCM16, 24 kHz, base64) without real-time pacing. Each response
ends with ``response.done`` (``usage`` in tokens: text ~4 characters a token, user audio 10
tokens a second, model audio 20 a second, earlier input counted as cached in blocks of 64) and
``rate_limits.updated``. ``max_output_tokens`` smaller than the reply ends it ``incomplete``.

Server VAD (``server_vad`` or ``semantic_vad``, energy based, knobs from ``turn_detection``) turns
incoming audio into ``input_audio_buffer.speech_started``/``speech_stopped``/``committed``, a user
audio item and, with ``create_response``, a response. Speech during a response (with
``interrupt_response``) is a barge-in: the response ends ``cancelled`` with reason
``turn_detected``, the output buffer is cleared (``output_audio_buffer.cleared``) and the
assistant's item is truncated at what was heard (``conversation.item.truncated``).
``turn_detection: null`` turns all of that off; ``input_audio_buffer.commit`` still works.

Errors arrive as ``error`` events echoing the client's ``event_id``: invalid JSON, unknown event
types, missing, unknown or badly typed fields (``schema.py``), and the API's state errors
(``conversation_already_has_active_response``, ``response_cancel_not_active``,
``input_audio_buffer_commit_empty``, unknown item ids, ``cannot_update_voice``). At the maximum
session duration the session sends ``session_expired`` and closes.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ..protocol import (
    SERVER_VAD_DEFAULTS,
    SchemaError,
    validate_client_event,
    with_vad_defaults,
)
from .audio import SAMPLE_RATE, EnergyVAD, pcm16_to_base64, synthesize_speech

DEFAULT_MODEL = "gpt-realtime-2"
DEFAULT_INSTRUCTIONS = "You are the local realtime server: you repeat what you are told."
MAX_SESSION_SECONDS = 60 * 60
_MIN_COMMIT_MS = 100
_QUOTE_LIMIT = 200
_WS_AUDIO_CHUNK_MS = 200

Event = dict[str, Any]
Transport = Literal["webrtc", "websocket"]


def new_id(prefix: str, length: int = 20) -> str:
    """An id in OpenAI's style (``item_…``, ``resp_…``); the API allows 32 characters for items."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


class AudioPlayer(Protocol):
    """The outgoing audio of a WebRTC call (``rtc.VoiceTrack``)."""

    @property
    def playing(self) -> str | None: ...

    def play(self, response_id: str, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None: ...

    def clear(self) -> str | None: ...

    def played_ms(self, response_id: str) -> int: ...


def default_session(model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The effective config of a new session, in the shape ``session.created`` reports."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess_"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": 0,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "voice": "marin",
                "speed": 1.0,
            },
        },
    }


def merge_session(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Apply a validated partial session: fields sent replace, ``audio.input/output`` merge."""
    merged = {**current}
    for key, value in update.items():
        if key == "audio":
            audio = {**merged["audio"]}
            for side in ("input", "output"):
                if side in value:
                    audio[side] = {**audio[side], **value[side]}
            if "turn_detection" in value.get("input", {}):
                # As the API does: the type's defaults under the knobs given.
                detection = audio["input"]["turn_detection"]
                audio["input"]["turn_detection"] = with_vad_defaults(detection)
            merged["audio"] = audio
        else:
            merged[key] = value
    return merged


def effective_session(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A validated (partial) session config laid over the defaults."""
    return merge_session(default_session(), config or {})


def _tokens_for_text(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1] + "…"


_TOOL_REQUEST = re.compile(
    r"\b(?:call|use|run)\s+(?:the\s+)?(?:tool\s+)?`?(?P<name>[A-Za-z_][\w.-]*)`?"
    r"(?:\s+(?:tool|function))?(?:\s+with\s+(?P<args>.+))?",
    re.IGNORECASE | re.DOTALL,
)


def _parse_value(raw: str) -> Any:
    raw = raw.strip().rstrip(".!?")
    try:
        return json.loads(raw)
    except ValueError:
        pass
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def parse_tool_arguments(text: str) -> dict[str, Any]:
    """``{"a": 1}`` or ``a=1, b=two and c=true`` → a dict; anything else → ``{}``."""
    text = text.strip().rstrip(".!?").strip()
    start = text.find("{")
    if start >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    args: dict[str, Any] = {}
    for part in re.split(r",|\band\b", text):
        key, sep, value = part.partition("=")
        if sep and key.strip().isidentifier():
            args[key.strip()] = _parse_value(value)
    return args


@dataclass
class _Output:
    """One output item of a response, kept so a cancel can close it properly."""

    item: dict[str, Any]
    index: int
    part_open: bool = False
    text: str = ""
    audio_ms: int = 0


@dataclass
class _Response:
    id: str
    params: dict[str, Any]
    in_conversation: bool
    modalities: list[str]
    voice: Any
    input_tokens: dict[str, int]
    outputs: list[_Output] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    finished: bool = False
    status_reason: str | None = None


@dataclass
class _Item:
    item: dict[str, Any]
    audio_ms: int = 0  # user audio length or assistant speech length
    # Word start times (ms) of assistant speech, to cut the transcript at a truncation.
    word_times: list[int] = field(default_factory=list)


class Session:
    """One Realtime session: client events in, server events out through ``emit``.

    The transport (a WebRTC data channel, a WebSocket, a sideband) calls :meth:`start` once,
    :meth:`receive` for every client message and :meth:`feed_audio` with incoming PCM16 at
    24 kHz; ``emit`` gets every server event as a dict, in order. ``player`` is the outgoing
    audio track of a WebRTC call (None over WebSocket, where audio travels as deltas).
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        emit: Callable[[Event], None],
        transport: Transport = "websocket",
        player: AudioPlayer | None = None,
        on_close: Callable[[int, str], None] | None = None,
        max_duration_s: float = MAX_SESSION_SECONDS,
        text_delay_s: float = 0.005,
    ) -> None:
        self.session = effective_session(config)
        self.session["expires_at"] = int(time.time() + max_duration_s)
        self._emit = emit
        self.transport: Transport = transport
        self.player = player
        self._on_close = on_close
        self.max_duration_s = max_duration_s
        self.text_delay_s = text_delay_s
        self.items: list[_Item] = []
        self._responses: dict[str, _Response] = {}
        self._active: _Response | None = None
        self._vad: EnergyVAD | None = None
        self._vad_offset_ms = 0
        self._buffer_ms = 0
        self._buffer_start_ms = 0
        self._speech_item_id: str | None = None
        self._audio_seen = False
        self._requests_used = 0
        self._tokens_used = 0
        self._last_input_tokens = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._expiry: asyncio.TimerHandle | None = None
        self.closed = False
        self._configure_vad()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Send ``session.created`` and arm the session's maximum duration."""
        self._send({"type": "session.created", "session": self._public_session()})
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self.max_duration_s, self._expire)

    def close(self) -> None:
        """Stop all work; no events are sent after this."""
        if self.closed:
            return
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        for task in list(self._tasks):
            task.cancel()

    def _expire(self) -> None:
        minutes = self.max_duration_s / 60
        shown = f"{minutes:g} minutes" if minutes >= 1 else f"{self.max_duration_s:g} seconds"
        self._error(
            "session_expired",
            f"Your session hit the maximum duration of {shown}.",
            type_="invalid_request_error",
        )
        if self._on_close is not None:
            self._on_close(1001, "session_expired")
        self.close()

    # --- plumbing ----------------------------------------------------------------------------

    def _send(self, event: Event) -> None:
        if self.closed:
            return
        self._emit({"type": event["type"], "event_id": new_id("event_"), **event})

    def _error(
        self,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        self._send(
            {
                "type": "error",
                "error": {
                    "type": type_,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _public_session(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.session))  # type: ignore[no-any-return]

    def _configure_vad(self) -> None:
        detection = self.session["audio"]["input"]["turn_detection"]
        if detection is None:
            self._vad = None
            return
        if detection["type"] == "server_vad":
            threshold = detection["threshold"]
            silence = detection["silence_duration_ms"]
            padding = detection["prefix_padding_ms"]
        else:  # semantic_vad: eagerness decides how long a pause ends a turn
            threshold = 0.5
            silence = {"low": 1500, "medium": 800, "high": 400, "auto": 800}[detection["eagerness"]]
            padding = 300
        position = self._vad.position_ms if self._vad is not None else 0
        self._vad = EnergyVAD(
            threshold=threshold, prefix_padding_ms=padding, silence_duration_ms=silence
        )
        self._vad_offset_ms = position

    # --- client events -----------------------------------------------------------------------

    def receive(self, message: str | bytes | dict[str, Any]) -> None:
        """Handle one client event (JSON text or an already-decoded dict)."""
        if self.closed:
            return
        if isinstance(message, (str, bytes)):
            try:
                raw = json.loads(message)
            except ValueError as exc:
                self._error(
                    "invalid_json",
                    f"The server failed to parse the event as JSON: {exc}. "
                    "Send one JSON object per message.",
                )
                return
        else:
            raw = message
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = event_id if isinstance(event_id, str) else None
        try:
            event = validate_client_event(raw)
        except SchemaError as exc:
            self._error(exc.code, exc.message, param=exc.param or None, event_id=event_id)
            return
        handler = getattr(self, "_on_" + event["type"].replace(".", "_"))
        handler(event, event_id)

    def _on_session_update(self, event: Event, event_id: str | None) -> None:
        update = event["session"]
        voice = update.get("audio", {}).get("output", {}).get("voice")
        if voice is not None and self._audio_seen and voice != self._voice():
            self._error(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                param="session.audio.output.voice",
                event_id=event_id,
            )
            return
        self.session = merge_session(self.session, update)
        if "audio" in update and "turn_detection" in update["audio"].get("input", {}):
            self._configure_vad()
        self._send({"type": "session.updated", "session": self._public_session()})

    def _voice(self) -> Any:
        return self.session["audio"]["output"]["voice"]

    def _on_input_audio_buffer_append(self, event: Event, event_id: str | None) -> None:
        import base64
        import binascii

        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            self._error(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded PCM16 audio.",
                param="audio",
                event_id=event_id,
            )
            return
        pcm = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)
        self.feed_audio(pcm)

    def _on_input_audio_buffer_commit(self, event: Event, event_id: str | None) -> None:
        if self._buffer_ms < _MIN_COMMIT_MS:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{_MIN_COMMIT_MS}ms of audio, but buffer only has "
                f"{self._buffer_ms:.2f}ms of audio.",
                event_id=event_id,
            )
            return
        self._commit_buffer(self._speech_item_id or new_id("item_"), create_response=False)

    def _on_input_audio_buffer_clear(self, event: Event, event_id: str | None) -> None:
        self._buffer_ms = 0
        self._speech_item_id = None
        if self._vad is not None:
            self._vad.reset()
        self._send({"type": "input_audio_buffer.cleared"})

    def _find(self, item_id: str) -> int | None:
        for index, entry in enumerate(self.items):
            if entry.item["id"] == item_id:
                return index
        return None

    def _on_conversation_item_create(self, event: Event, event_id: str | None) -> None:
        item = dict(event["item"])
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and self._find(previous) is None:
            self._error(
                "invalid_value",
                f"Error adding item: the previous_item_id '{previous}' does not exist.",
                param="previous_item_id",
                event_id=event_id,
            )
            return
        if "id" in item and self._find(item["id"]) is not None:
            self._error(
                "invalid_value",
                f"Error adding item: an item with id '{item['id']}' already exists.",
                param="item.id",
                event_id=event_id,
            )
            return
        if item["type"] == "function_call_output" and not self._has_call(item["call_id"]):
            self._error(
                "invalid_value",
                f"Tool call ID '{item['call_id']}' not found in conversation.",
                param="item.call_id",
                event_id=event_id,
            )
            return
        item.setdefault("id", new_id("item_"))
        item["object"] = "realtime.item"
        item["status"] = "completed"
        entry = _Item(item)
        if item["type"] == "message" and item["role"] == "user":
            for part in item["content"]:
                if part["type"] == "input_audio":
                    entry.audio_ms += math.ceil(len(part.get("audio") or "") * 3 / 4 / 48)
        if previous == "root":
            self.items.insert(0, entry)
            prev_id = None
        elif previous is not None:
            index = self._find(previous)
            assert index is not None
            self.items.insert(index + 1, entry)
            prev_id = previous
        else:
            prev_id = self.items[-1].item["id"] if self.items else None
            self.items.append(entry)
        self._send({"type": "conversation.item.added", "previous_item_id": prev_id, "item": item})
        self._send({"type": "conversation.item.done", "previous_item_id": prev_id, "item": item})

    def _has_call(self, call_id: str) -> bool:
        return any(
            e.item["type"] == "function_call" and e.item.get("call_id") == call_id
            for e in self.items
        )

    def _on_conversation_item_retrieve(self, event: Event, event_id: str | None) -> None:
        index = self._find(event["item_id"])
        if index is None:
            self._item_missing("retrieve", event["item_id"], event_id)
            return
        self._send({"type": "conversation.item.retrieved", "item": self.items[index].item})

    def _on_conversation_item_delete(self, event: Event, event_id: str | None) -> None:
        index = self._find(event["item_id"])
        if index is None:
            self._item_missing("delete", event["item_id"], event_id)
            return
        del self.items[index]
        self._send({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    def _item_missing(self, verb: str, item_id: str, event_id: str | None) -> None:
        self._error(
            f"item_{verb}_invalid_item_id",
            f"Error {verb.rstrip('e')}ing item: the item with id '{item_id}' does not exist.",
            param="item_id",
            event_id=event_id,
        )

    def _on_conversation_item_truncate(self, event: Event, event_id: str | None) -> None:
        index = self._find(event["item_id"])
        if index is None:
            self._item_missing("truncate", event["item_id"], event_id)
            return
        entry = self.items[index]
        item = entry.item
        content = item.get("content") or []
        if (
            item["type"] != "message"
            or item.get("role") != "assistant"
            or event["content_index"] >= len(content)
            or content[event["content_index"]]["type"] != "output_audio"
        ):
            self._error(
                "unsupported_content_type",
                "Only model output audio messages can be truncated.",
                param="item_id",
                event_id=event_id,
            )
            return
        if event["audio_end_ms"] > entry.audio_ms:
            self._error(
                "invalid_value",
                f"Audio content of {entry.audio_ms}ms is already shorter than "
                f"{event['audio_end_ms']}ms.",
                param="audio_end_ms",
                event_id=event_id,
            )
            return
        self._truncate(entry, event["content_index"], event["audio_end_ms"])

    def _truncate(self, entry: _Item, content_index: int, audio_end_ms: int) -> None:
        part = entry.item["content"][content_index]
        words = (part.get("transcript") or "").split()
        kept = sum(1 for t in entry.word_times[: len(words)] if t < audio_end_ms)
        part["transcript"] = " ".join(words[:kept])
        entry.audio_ms = audio_end_ms
        self._send(
            {
                "type": "conversation.item.truncated",
                "item_id": entry.item["id"],
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
            }
        )

    def _on_output_audio_buffer_clear(self, event: Event, event_id: str | None) -> None:
        if self.transport != "webrtc" or self.player is None:
            self._error(
                "invalid_value",
                "output_audio_buffer.clear is only supported for WebRTC and SIP connections; "
                "over WebSocket stop playback on the client and send conversation.item.truncate.",
                param="type",
                event_id=event_id,
            )
            return
        self._clear_output()

    def _clear_output(self) -> str | None:
        assert self.player is not None
        last = self.player.playing
        cleared = self.player.clear()
        response_id = cleared or last or self._last_response_id()
        self._send({"type": "output_audio_buffer.cleared", "response_id": response_id or ""})
        return cleared

    def _last_response_id(self) -> str | None:
        return next(reversed(self._responses), None) if self._responses else None

    def _on_response_cancel(self, event: Event, event_id: str | None) -> None:
        wanted = event.get("response_id")
        active = self._active
        if wanted is not None:
            candidate = self._responses.get(wanted)
            active = candidate if candidate is not None and not candidate.finished else None
        if active is None:
            self._error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                event_id=event_id,
            )
            return
        self._finish(active, "cancelled", "client_cancelled")

    def _on_response_create(self, event: Event, event_id: str | None) -> None:
        params = dict(event.get("response") or {})
        in_conversation = params.get("conversation", "auto") != "none"
        if in_conversation and self._active is not None:
            self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._active.id}. Wait until the response is finished before creating a new "
                "one.",
                event_id=event_id,
            )
            return
        if "input" in params:
            for ref in params["input"]:
                if ref.get("type") == "item_reference" and self._find(ref["id"]) is None:
                    self._error(
                        "invalid_value",
                        f"Item reference '{ref['id']}' does not exist in the conversation.",
                        param="response.input",
                        event_id=event_id,
                    )
                    return
        self._create_response(params, in_conversation)

    # --- audio in ----------------------------------------------------------------------------

    def feed_audio(self, pcm: np.ndarray) -> None:
        """Incoming user audio: PCM16 mono at 24 kHz (the WebRTC track or buffer appends)."""
        if self.closed or pcm.size == 0:
            return
        self._buffer_ms += pcm.size * 1000 // SAMPLE_RATE
        if self._vad is None:
            return
        for vad_event in self._vad.process(pcm):
            at = vad_event.audio_ms + self._vad_offset_ms
            if vad_event.kind == "speech_started":
                self._speech_started(at)
            else:
                self._speech_stopped(at)

    def _speech_started(self, audio_start_ms: int) -> None:
        self._speech_item_id = new_id("item_")
        self._buffer_start_ms = audio_start_ms
        self._send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": self._speech_item_id,
            }
        )
        detection = self.session["audio"]["input"]["turn_detection"]
        if detection is None or not detection["interrupt_response"]:
            return
        playing = self.player.playing if self.player is not None else None
        if self._active is not None and self._active.in_conversation:
            self._finish(self._active, "cancelled", "turn_detected")
        if playing is not None:
            heard = self.player.played_ms(playing) if self.player is not None else 0
            self._clear_output()
            self._truncate_response_audio(playing, heard)

    def _truncate_response_audio(self, response_id: str, heard_ms: int) -> None:
        response = self._responses.get(response_id)
        if response is None or not response.in_conversation:
            return
        for output in response.outputs:
            index = self._find(output.item["id"])
            if index is None or output.item["type"] != "message":
                continue
            entry = self.items[index]
            if entry.audio_ms > heard_ms:
                self._truncate(entry, 0, heard_ms)

    def _speech_stopped(self, audio_end_ms: int) -> None:
        item_id = self._speech_item_id or new_id("item_")
        self._send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_end_ms,
                "item_id": item_id,
            }
        )
        self._buffer_ms = max(audio_end_ms - self._buffer_start_ms, _MIN_COMMIT_MS)
        detection = self.session["audio"]["input"]["turn_detection"]
        self._commit_buffer(
            item_id, create_response=bool(detection and detection["create_response"])
        )

    def _commit_buffer(self, item_id: str, *, create_response: bool) -> None:
        duration_ms = self._buffer_ms
        self._buffer_ms = 0
        self._speech_item_id = None
        previous = self.items[-1].item["id"] if self.items else None
        self._send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(_Item(item, audio_ms=duration_ms))
        self._send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self._send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        if self.session["audio"]["input"]["transcription"] is not None:
            self._spawn(self._transcribe(item, duration_ms))
        if create_response and self._active is None:
            self._create_response({}, in_conversation=True)

    async def _transcribe(self, item: dict[str, Any], duration_ms: int) -> None:
        # Real transcriptions arrive late, often after the reply has started: so do these.
        await asyncio.sleep(0.05)
        text = f"({duration_ms / 1000:.1f} seconds of speech)"
        for word in text.split(" "):
            self._send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item["id"],
                    "content_index": 0,
                    "delta": word if word.startswith("(") else " " + word,
                }
            )
        item["content"][0]["transcript"] = text
        self._send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item["id"],
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(duration_ms / 1000, 3)},
            }
        )

    # --- responses ---------------------------------------------------------------------------

    def _create_response(self, params: dict[str, Any], in_conversation: bool) -> None:
        audio_params = params.get("audio", {}).get("output", {})
        response = _Response(
            id=new_id("resp_"),
            params=params,
            in_conversation=in_conversation,
            modalities=params.get("output_modalities") or self.session["output_modalities"],
            voice=audio_params.get("voice", self._voice()),
            input_tokens=self._count_input(params),
        )
        self._responses[response.id] = response
        while len(self._responses) > 64:  # keep what barge-in and cancel may still need
            self._responses.pop(next(iter(self._responses)))
        if in_conversation:
            self._active = response
        self._requests_used += 1
        self._send({"type": "response.created", "response": self._response_body(response)})
        response.task = self._spawn(self._run(response))

    def _response_body(self, response: _Response) -> dict[str, Any]:
        status = "in_progress" if not response.finished else response.status_reason or "completed"
        return {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": [o.item for o in response.outputs],
            "conversation_id": "conv_local" if response.in_conversation else None,
            "output_modalities": response.modalities,
            "max_output_tokens": response.params.get(
                "max_output_tokens", self.session["max_output_tokens"]
            ),
            "audio": {
                "output": {
                    "format": self.session["audio"]["output"]["format"],
                    "voice": response.voice,
                }
            },
            "usage": None,
            "metadata": response.params.get("metadata"),
        }

    def _input_items(self, params: dict[str, Any]) -> list[_Item]:
        if "input" not in params:
            return list(self.items)
        entries = []
        for ref in params["input"]:
            if ref.get("type") == "item_reference":
                index = self._find(ref["id"])
                if index is not None:
                    entries.append(self.items[index])
            else:
                entries.append(_Item(ref))
        return entries

    def _count_input(self, params: dict[str, Any]) -> dict[str, int]:
        text = _tokens_for_text(params.get("instructions", self.session["instructions"]))
        audio = 0
        for entry in self._input_items(params):
            item = entry.item
            if item["type"] == "message":
                for part in item["content"]:
                    text += _tokens_for_text(part.get("text") or part.get("transcript") or "")
                if item["role"] == "user" and entry.audio_ms:
                    audio += math.ceil(entry.audio_ms / 100)
            else:
                text += _tokens_for_text(item.get("arguments", "") + item.get("output", ""))
        total = text + audio
        cached = min(self._last_input_tokens, total) // 64 * 64
        if params.get("conversation", "auto") != "none":
            self._last_input_tokens = total
        return {"text": text, "audio": audio, "cached": cached}

    def _plan(self, response: _Response) -> tuple[str, Any]:
        """What the model does: ("text", reply) or ("call", (tool, arguments))."""
        params = response.params
        tools = [
            t for t in params.get("tools", self.session["tools"]) if t.get("type") == "function"
        ]
        choice = params.get("tool_choice", self.session["tool_choice"])
        entries = self._input_items(params)
        last = entries[-1].item if entries else None
        if last is not None and last["type"] == "function_call_output":
            name = next(
                (
                    e.item["name"]
                    for e in entries
                    if e.item["type"] == "function_call"
                    and e.item.get("call_id") == last["call_id"]
                ),
                "requested",
            )
            return "text", f"The {name} tool returned: {_quote(last['output'])}"
        text = ""
        if last is not None and last["type"] == "message" and last["role"] == "user":
            parts = [p.get("text") or "" for p in last["content"] if p["type"] == "input_text"]
            text = " ".join(p for p in parts if p)
            audio_ms = entries[-1].audio_ms
            if not text and any(p["type"] == "input_audio" for p in last["content"]):
                return "text", f"I heard {audio_ms / 1000:.1f} seconds of audio."
        if tools and choice != "none":
            by_name = {t["name"]: t for t in tools}
            match = _TOOL_REQUEST.search(text) if text else None
            forced = choice == "required" or isinstance(choice, dict)
            if match and match.group("name") in by_name:
                name = match.group("name")
                if isinstance(choice, dict) and choice.get("type") == "function":
                    name = choice["name"]
                return "call", (name, parse_tool_arguments(match.group("args") or ""))
            if forced:
                name = choice["name"] if isinstance(choice, dict) else tools[0]["name"]
                args = parse_tool_arguments(match.group("args") or "") if match else {}
                return "call", (name, args)
        if text:
            return "text", f"You said: {_quote(text)}"
        return "text", "Hello from the local realtime server."

    async def _run(self, response: _Response) -> None:
        try:
            kind, plan = self._plan(response)
            if kind == "call":
                await self._stream_call(response, *plan)
            else:
                await self._stream_message(response, plan)
            if not response.finished:
                self._finish(response, "completed", None)
        except asyncio.CancelledError:
            pass

    def _add_output(self, response: _Response, item: dict[str, Any]) -> _Output:
        output = _Output(item=item, index=len(response.outputs))
        response.outputs.append(output)
        self._send(
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": output.index,
                "item": item,
            }
        )
        if response.in_conversation:
            previous = self.items[-1].item["id"] if self.items else None
            self.items.append(_Item(item))
            self._send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
        return output

    async def _stream_call(self, response: _Response, name: str, arguments: dict[str, Any]) -> None:
        item = {
            "id": new_id("item_"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": new_id("call_", 16),
            "arguments": "",
        }
        output = self._add_output(response, item)
        text = json.dumps(arguments)
        for start in range(0, len(text), 16):
            await asyncio.sleep(self.text_delay_s)
            self._send(
                {
                    "type": "response.function_call_arguments.delta",
                    "response_id": response.id,
                    "item_id": item["id"],
                    "output_index": output.index,
                    "call_id": item["call_id"],
                    "delta": text[start : start + 16],
                }
            )
            output.text += text[start : start + 16]
        item["arguments"] = text
        self._send(
            {
                "type": "response.function_call_arguments.done",
                "response_id": response.id,
                "item_id": item["id"],
                "output_index": output.index,
                "call_id": item["call_id"],
                "name": name,
                "arguments": text,
            }
        )
        self._close_output(response, output, "completed")

    async def _stream_message(self, response: _Response, reply: str) -> None:
        limit = response.params.get("max_output_tokens", self.session["max_output_tokens"])
        audio = "audio" in response.modalities
        words = reply.split(" ")
        incomplete = False
        if isinstance(limit, int):
            # Output tokens: text ~4 chars each, speech 20 a second; cut the reply to fit.
            budget = limit if not audio else max(1, limit // 5)
            kept, used = [], 0
            for word in words:
                used += _tokens_for_text(word + " ")
                if used > budget:
                    incomplete = True
                    break
                kept.append(word)
            words = kept or words[:1]
        reply = " ".join(words)
        part_type = "output_audio" if audio else "output_text"
        item: dict[str, Any] = {
            "id": new_id("item_"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        output = self._add_output(response, item)
        ids = {
            "response_id": response.id,
            "item_id": item["id"],
            "output_index": output.index,
            "content_index": 0,
        }
        part: dict[str, Any] = (
            {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        )
        self._send({"type": "response.content_part.added", **ids, "part": part})
        output.part_open = True
        item["content"] = [
            {"type": part_type, "transcript": ""} if audio else {"type": part_type, "text": ""}
        ]
        word_times = self._word_times(words, 0)
        if not audio:
            for i, word in enumerate(words):
                await asyncio.sleep(self.text_delay_s)
                delta = word if i == 0 else " " + word
                output.text += delta
                item["content"][0]["text"] = output.text
                self._send({"type": "response.output_text.delta", **ids, "delta": delta})
            self._send({"type": "response.output_text.done", **ids, "text": output.text})
        else:
            speed = self.session["audio"]["output"].get("speed", 1.0)
            pcm = await asyncio.to_thread(synthesize_speech, reply, speed=speed)
            output.audio_ms = pcm.size * 1000 // SAMPLE_RATE
            word_times = self._word_times(words, output.audio_ms)
            self._audio_seen = True
            entry_index = self._find(item["id"]) if response.in_conversation else None
            if entry_index is not None:
                self.items[entry_index].audio_ms = output.audio_ms
                self.items[entry_index].word_times = word_times
            if self.transport == "webrtc" and self.player is not None:
                await self._speak_webrtc(response, output, ids, words, word_times, pcm)
            else:
                await self._speak_websocket(output, ids, words, word_times, pcm)
            self._send({"type": "response.output_audio.done", **ids})
            self._send(
                {"type": "response.output_audio_transcript.done", **ids, "transcript": output.text}
            )
        self._close_output(response, output, "incomplete" if incomplete else "completed")
        if incomplete:
            self._finish(response, "incomplete", "max_output_tokens")

    @staticmethod
    def _word_times(words: list[str], duration_ms: int) -> list[int]:
        """Where each word starts in the speech, spread by length (good enough to cut at)."""
        weights = [len(w) + 1 for w in words]
        total = sum(weights) or 1
        times, at = [], 0.0
        for weight in weights:
            times.append(int(at))
            at += duration_ms * weight / total
        return times

    def _transcript_delta(self, output: _Output, ids: dict[str, Any], i: int, word: str) -> None:
        delta = word if i == 0 else " " + word
        output.text += delta
        output.item["content"][0]["transcript"] = output.text
        self._send({"type": "response.output_audio_transcript.delta", **ids, "delta": delta})

    async def _speak_webrtc(
        self,
        response: _Response,
        output: _Output,
        ids: dict[str, Any],
        words: list[str],
        word_times: list[int],
        pcm: np.ndarray,
    ) -> None:
        assert self.player is not None
        self.player.play(response.id, pcm)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i, word in enumerate(words):
            # Keep the caption with the voice: a word's delta goes out as it starts playing.
            delay = started + word_times[i] / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._transcript_delta(output, ids, i, word)

    async def _speak_websocket(
        self,
        output: _Output,
        ids: dict[str, Any],
        words: list[str],
        word_times: list[int],
        pcm: np.ndarray,
    ) -> None:
        chunk = SAMPLE_RATE * _WS_AUDIO_CHUNK_MS // 1000
        next_word = 0
        for start in range(0, pcm.size, chunk):
            await asyncio.sleep(self.text_delay_s)
            self._send(
                {
                    "type": "response.output_audio.delta",
                    **ids,
                    "delta": pcm16_to_base64(pcm[start : start + chunk]),
                }
            )
            end_ms = (start + chunk) * 1000 // SAMPLE_RATE
            while next_word < len(words) and word_times[next_word] < end_ms:
                self._transcript_delta(output, ids, next_word, words[next_word])
                next_word += 1
        for i in range(next_word, len(words)):
            self._transcript_delta(output, ids, i, words[i])

    def _close_output(self, response: _Response, output: _Output, status: str) -> None:
        item = output.item
        ids = {"response_id": response.id, "item_id": item["id"], "output_index": output.index}
        if output.part_open:
            output.part_open = False
            content = item["content"][0]
            part: dict[str, Any] = (
                {"type": "audio", "transcript": content.get("transcript", "")}
                if content["type"] == "output_audio"
                else {"type": "text", "text": content.get("text", "")}
            )
            self._send(
                {"type": "response.content_part.done", **ids, "content_index": 0, "part": part}
            )
        item["status"] = status
        self._send(
            {
                "type": "response.output_item.done",
                "response_id": response.id,
                "output_index": output.index,
                "item": item,
            }
        )
        if response.in_conversation:
            self._send({"type": "conversation.item.done", "item": item})

    def _finish(self, response: _Response, status: str, reason: str | None) -> None:
        """End a response now (completed, cancelled or incomplete) and report it."""
        if response.finished:
            return
        response.finished = True
        response.status_reason = status
        if self._active is response:
            self._active = None
        if response.task is not None and response.task is not asyncio.current_task():
            response.task.cancel()
        for output in response.outputs:
            if output.item["status"] == "in_progress":
                self._close_output(response, output, "incomplete")
        usage = self._usage(response)
        self._tokens_used += usage["total_tokens"]
        body = self._response_body(response)
        body["status"] = status
        if status != "completed":
            body["status_details"] = {"type": status, "reason": reason}
        body["usage"] = usage
        self._send({"type": "response.done", "response": body})
        self._send(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {
                        "name": "requests",
                        "limit": 5000,
                        "remaining": max(0, 5000 - self._requests_used),
                        "reset_seconds": 60.0,
                    },
                    {
                        "name": "tokens",
                        "limit": 400_000,
                        "remaining": max(0, 400_000 - self._tokens_used),
                        "reset_seconds": 60.0,
                    },
                ],
            }
        )

    def _usage(self, response: _Response) -> dict[str, Any]:
        text_out = sum(_tokens_for_text(o.text) for o in response.outputs)
        audio_out = sum(math.ceil(o.audio_ms / 50) for o in response.outputs)
        tokens_in = response.input_tokens
        input_total = tokens_in["text"] + tokens_in["audio"]
        return {
            "total_tokens": input_total + text_out + audio_out,
            "input_tokens": input_total,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": tokens_in["text"],
                "audio_tokens": tokens_in["audio"],
                "image_tokens": 0,
                "cached_tokens": tokens_in["cached"],
                "cached_tokens_details": {
                    "text_tokens": min(tokens_in["cached"], tokens_in["text"]),
                    "audio_tokens": max(0, tokens_in["cached"] - tokens_in["text"]),
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }

    # --- playback reports from the WebRTC track ----------------------------------------------

    def playback_started(self, response_id: str) -> None:
        self._send({"type": "output_audio_buffer.started", "response_id": response_id})

    def playback_stopped(self, response_id: str) -> None:
        self._send({"type": "output_audio_buffer.stopped", "response_id": response_id})
