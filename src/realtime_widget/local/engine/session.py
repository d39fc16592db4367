"""One local session: client events in, server events out, with no I/O of its own.

The transport (a WebRTC data channel, a WebSocket, a sideband) calls :meth:`Session.start`
once, :meth:`Session.receive` for every client message and :meth:`Session.feed_audio` with
incoming PCM16 at 24 kHz; ``emit`` gets every server event as a dict, in order. The parts of
the model live beside it: ``detection`` (VAD, the buffer, barge-in, the idle timeout),
``transcription``, ``responses`` (streaming, usage) with ``responder`` (what to say) and ``mcp``
(remote MCP servers, simulated).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any

from ...protocol import SchemaError, validate_client_event
from ..audio import EnergyVAD
from .detection import TurnDetection
from .responses import Responses
from .state import (
    MAX_SESSION_SECONDS,
    AudioPlayer,
    Event,
    Item,
    Response,
    Transport,
    effective_session,
    merge_session,
    model_problem,
    new_id,
    public_session,
    transcription_model_problem,
)
from .transcription import Transcription


def session_problem(config: dict[str, Any]) -> tuple[str, str, str] | None:
    """Why a session config names a model this server refuses: ``(code, param, message)``."""
    model = config.get("model")
    if isinstance(model, str):
        refused = model_problem(model)
        if refused is not None:
            return refused[0], "session.model", refused[1]
    transcription = (config.get("audio") or {}).get("input", {}).get("transcription")
    if isinstance(transcription, dict) and isinstance(transcription.get("model"), str):
        message = transcription_model_problem(transcription["model"])
        if message is not None:
            return "invalid_value", "session.audio.input.transcription.model", message
    return None


class Session(TurnDetection, Transcription, Responses):
    """One Realtime session: client events in, server events out through ``emit``.

    ``player`` is the outgoing audio track of a WebRTC call (None over WebSocket, where audio
    travels as deltas).
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
        self.items: list[Item] = []
        self._responses: dict[str, Response] = {}
        self._active: Response | None = None
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
        self._idle: asyncio.TimerHandle | None = None
        self._listed: set[str] = set()  # MCP servers whose tools were listed
        self.closed = False
        self._configure_vad()

    def start(self) -> None:
        """Send ``session.created`` and arm the session's maximum duration."""
        self._send({"type": "session.created", "session": self._public_session()})
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self.max_duration_s, self._expire)
        self._list_mcp_tools()

    def close(self) -> None:
        """Stop all work; no events are sent after this."""
        if self.closed:
            return
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        self._cancel_idle_timeout()
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
        return public_session(self.session)

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
        if update.get("type", "realtime") != self.session["type"]:
            self._error(
                "invalid_value",
                f"This is a {self.session['type']} session: its type can't change to "
                f"'{update.get('type')}'.",
                param="session.type",
                event_id=event_id,
            )
            return
        refused = session_problem(update)
        if refused is not None:
            code, param, message = refused
            self._error(code, message, param=param, event_id=event_id)
            return
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
        if "tools" in update:
            self._list_mcp_tools()

    def _voice(self) -> Any:
        return self.session["audio"].get("output", {}).get("voice")

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
        if item["type"] == "mcp_approval_response" and not self._has_approval_request(
            item["approval_request_id"]
        ):
            self._error(
                "invalid_value",
                f"Approval request '{item['approval_request_id']}' not found in conversation.",
                param="item.approval_request_id",
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
        if item["type"] in ("message", "function_call", "function_call_output"):
            item["object"] = "realtime.item"  # (MCP items have neither field in the API)
            item["status"] = "completed"
        entry = Item(item)
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

    def _has_approval_request(self, request_id: str) -> bool:
        return any(
            e.item["type"] == "mcp_approval_request" and e.item.get("id") == request_id
            for e in self.items
        )

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

    def _truncate(self, entry: Item, content_index: int, audio_end_ms: int) -> None:
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
        if self.is_transcription:
            self._error(
                "invalid_request_error",
                "This is a transcription session: it transcribes the input audio and creates "
                "no responses. Use a realtime session to get replies.",
                param="type",
                event_id=event_id,
            )
            return
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
