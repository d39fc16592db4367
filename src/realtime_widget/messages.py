"""The custom messages between the kernel and the browser (see docs/protocol.md).

Messages from the browser are checked here before anything acts on them: a malformed one is
reported (as a notice in the widget) and dropped, never half-applied. Their shapes are JSON
Schema, checked by the same interpreter as the API's own (``protocol.check``).
"""

from __future__ import annotations

from typing import Any, Literal

from .protocol import SchemaError, check

Status = Literal["idle", "connecting", "connected", "closed", "error"]
STATUSES: tuple[Status, ...] = ("idle", "connecting", "connected", "closed", "error")
STEPS = ("microphone", "key", "sdp", "ice", "channel")
OPS = ("key", "relay", "check", "send", "schema", "configure", "approve", "clip")


def _message(kind: str, fields: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"kind": {"const": kind}, **fields},
        "required": list(required),
        "additionalProperties": False,
    }


_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_EVENT_RECORD = {
    "type": "object",
    "properties": {
        "dir": {"enum": ["in", "out"]},
        "t": {"type": "number", "minimum": 0},
        "event": {"type": "object"},
    },
    "required": ["dir", "t", "event"],
    "additionalProperties": False,
}
_BROWSER_MESSAGES: dict[str, dict[str, Any]] = {
    # A front end (a page) has loaded the widget: the kernel checks the call is still alive.
    "hello": _message("hello", {}),
    "events": _message(
        "events", {"events": {"type": "array", "items": _EVENT_RECORD}}, ("events",)
    ),
    "status": _message(
        "status",
        {
            "status": {"enum": ["connecting", "connected", "closed", "error"]},
            "error": _NULLABLE_STRING,
            "step": {"anyOf": [{"enum": list(STEPS)}, {"type": "null"}]},
            "call_id": _NULLABLE_STRING,
            "muted": {"type": "boolean"},
            "microphone": _NULLABLE_STRING,
            # The data channel's largest message (SCTP max-message-size), once connected.
            "max_message_size": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
        },
        ("status",),
    ),
    "request": _message(
        "request",
        {
            "id": {"type": "integer", "minimum": 0},
            "op": {"enum": list(OPS)},
            "sdp": {"type": "string"},
            "event": {"type": "object"},  # check / send: a client event typed in the composer
            "approval_request_id": {"type": "string"},  # approve: an MCP server's request
            "approve": {"type": "boolean"},
            "item_id": {"type": "string"},  # clip: the turn whose recorded audio to play
        },
        ("id", "op"),
    ),
    # A chunk of the call's recording (record=True), its PCM in the message's binary buffer:
    # ``frame`` of the page's audio clock, whose frame 0 was at page time ``t0``.
    "audio": _message(
        "audio",
        {"t0": {"type": "number", "minimum": 0}, "frame": {"type": "integer", "minimum": 0}},
        ("t0", "frame"),
    ),
    # record=True, but the page cannot record (no AudioWorklet: an insecure origin).
    "unrecorded": _message("unrecorded", {"error": {"type": "string"}}, ("error",)),
    # A recording sent by w.play() has been spoken into the call (or could not be).
    "played": _message(
        "played",
        {
            "id": {"type": "integer", "minimum": 0},
            "ok": {"type": "boolean"},
            "error": {"type": "string"},
        },
        ("id", "ok"),
    ),
}


class MessageError(ValueError):
    """A browser message that does not fit the protocol."""


def parse_browser_message(content: Any) -> dict[str, Any]:
    """Validate a browser message; raise :class:`MessageError` naming what is wrong."""
    kind = content.get("kind") if isinstance(content, dict) else type(content).__name__
    if not isinstance(kind, str) or kind not in _BROWSER_MESSAGES:  # (a list is unhashable)
        raise MessageError(f"unknown message kind {kind!r} from the browser")
    try:
        check(_BROWSER_MESSAGES[kind], content)
    except SchemaError as exc:
        raise MessageError(f"malformed {kind!r} message: {exc.message}") from None
    message: dict[str, Any] = content
    if kind == "request" and message["op"] == "relay" and not message.get("sdp"):
        raise MessageError("a relay request needs the offer's 'sdp'")
    composed = kind == "request" and message["op"] in ("check", "send", "configure")
    if composed and "event" not in message:
        raise MessageError(f"a {message['op']} request needs the client 'event'")
    if kind == "request" and message["op"] == "clip" and not message.get("item_id"):
        raise MessageError("a clip request needs the turn's 'item_id'")
    answer = kind == "request" and message["op"] == "approve"
    if answer and ("approval_request_id" not in message or "approve" not in message):
        raise MessageError("an approve request needs 'approval_request_id' and 'approve'")
    return message
