"""The custom messages between the kernel and the browser (see docs/protocol.md).

Messages from the browser are checked here before anything acts on them: a malformed one is
reported (as a notice in the widget) and dropped, never half-applied.
"""

from __future__ import annotations

from typing import Any, Literal

from .schema import SchemaError, array, boolean, free_object, nullable, number, obj, one_of, string

Status = Literal["idle", "connecting", "connected", "closed", "error"]
STATUSES: tuple[Status, ...] = ("idle", "connecting", "connected", "closed", "error")
STEPS = ("microphone", "key", "sdp", "ice", "channel")

_EVENT_RECORD = obj(
    {"dir": one_of("in", "out"), "t": number(0), "event": free_object()},
    required=["dir", "t", "event"],
)
_BROWSER_MESSAGES = {
    # A front end (a page) has loaded the widget: the kernel checks the call is still alive.
    "hello": obj({"kind": one_of("hello")}),
    "events": obj({"kind": one_of("events"), "events": array(_EVENT_RECORD)}, required=["events"]),
    "status": obj(
        {
            "kind": one_of("status"),
            "status": one_of("connecting", "connected", "closed", "error"),
            "error": nullable(string()),
            "step": nullable(one_of(*STEPS)),
            "call_id": nullable(string()),
            "muted": boolean(),
            "microphone": nullable(string()),
            # The data channel's largest message (SCTP max-message-size), once connected.
            "max_message_size": nullable(number(1, integer=True)),
        },
        required=["status"],
    ),
    "request": obj(
        {
            "kind": one_of("request"),
            "id": number(0, integer=True),
            "op": one_of("key", "relay", "check", "send"),
            "sdp": string(non_empty=True),
            "event": free_object(),  # check / send: a client event typed in the composer
        },
        required=["id", "op"],
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
        message: dict[str, Any] = _BROWSER_MESSAGES[content["kind"]](content, "")
    except SchemaError as exc:
        raise MessageError(f"malformed {content['kind']!r} message: {exc.message}") from None
    if message["kind"] == "request" and message["op"] == "relay" and "sdp" not in message:
        raise MessageError("a relay request needs the offer's 'sdp'")
    composed = message["kind"] == "request" and message["op"] in ("check", "send")
    if composed and "event" not in message:
        raise MessageError(f"a {message['op']} request needs the client 'event'")
    return message
