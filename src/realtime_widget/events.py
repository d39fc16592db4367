"""Client events: validated before they leave the kernel; builders for the common ones."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from .protocol import SchemaError, validate_client_event


class InvalidEventError(ValueError):
    """A client event the API would refuse; nothing was sent. The message names the field."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param = param
        self.code = code


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(10)


def prepare(event: Any, *, live: bool = False) -> dict[str, Any]:
    """Validate a client event (``live``: a GPT-Live one) and give it an ``event_id`` if it
    has none.

    >>> prepare({"type": "response.cancel"})["event_id"].startswith("evt_")
    True
    """
    if not isinstance(event, dict):
        raise InvalidEventError(
            f"A client event is a dict with a 'type', not {type(event).__name__}."
        )
    try:
        validate_client_event(event, live=live)
    except SchemaError as exc:
        where = f" (field '{exc.param}')" if exc.param else ""
        raise InvalidEventError(
            f"Not sent: {exc.message}{where}", param=exc.param, code=exc.code
        ) from None
    prepared = copy.deepcopy(event)
    prepared.setdefault("event_id", new_event_id())
    if live and event.get("type") in LIVE_NOT_ON_WEBRTC:
        raise InvalidEventError(
            f"Not sent: {event['type']} {LIVE_NOT_ON_WEBRTC[event['type']]}",
            param="type",
            code="invalid_value",
        )
    return prepared


# GPT-Live client events a WebRTC session does not take from its client, and why.
LIVE_NOT_ON_WEBRTC = {
    "session.start": "is for a primary WebSocket: a WebRTC session starts when it is created.",
    "session.input_audio.append": "is for a primary WebSocket: a call's audio is its "
    "microphone track (w.play() speaks a recording into it).",
}


def live_append(kind: str, content: str, delegation_id: str | None = None) -> dict[str, Any]:
    """``session.{instructions,thinking,commentary}.append`` (GPT-Live)."""
    return {"type": f"session.{kind}.append", "content": content, "delegation_id": delegation_id}


def user_text(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def user_audio(pcm16: bytes) -> dict[str, Any]:
    """A user turn of recorded speech: 24 kHz mono PCM16, as the API takes it in an item."""
    import base64

    audio = base64.b64encode(pcm16).decode("ascii")
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": audio}],
        },
    }


def response_create(**response: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.create"}
    if response:
        event["response"] = response
    return event


def session_update(session: dict[str, Any], session_type: str = "realtime") -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": session_type, **session}}
