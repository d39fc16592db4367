"""Strict checks of events against the official ``openai`` package's typed models.

Every event the local server emits in the suite goes through :func:`check_server_event`, and
every client event the tests send through :func:`check_client_event`: the event must parse as the
model its ``type`` names, and carry no field that model does not know (the models allow extras,
so a misspelt field would otherwise pass).
"""

from __future__ import annotations

from typing import Any

from openai.types.live import ClientEvent as LiveClientEvent
from openai.types.live import ServerEvent as LiveServerEvent
from openai.types.realtime import (
    RealtimeClientEvent,
    RealtimeServerEvent,
    RealtimeSessionCreateRequest,
    RealtimeTranscriptionSessionCreateRequest,
)
from pydantic import BaseModel, TypeAdapter

_SERVER = TypeAdapter(RealtimeServerEvent)
_CLIENT = TypeAdapter(RealtimeClientEvent)


# The SDK types ``session.created``/``updated``'s session as the *request* shape, while the API
# reports the session's identity beside it (typed in ``RealtimeSessionCreateResponse``).
_SESSION_IDENTITY = {"id", "object", "expires_at"}


def _no_extras(model: Any, path: str) -> None:
    if isinstance(model, BaseModel):
        extra = set(model.model_extra or {})
        if isinstance(
            model, (RealtimeSessionCreateRequest, RealtimeTranscriptionSessionCreateRequest)
        ):
            extra -= _SESSION_IDENTITY
        assert not extra, f"{path}: fields the openai models do not know: {sorted(extra)}"
        for name in type(model).model_fields:
            _no_extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, (list, tuple)):
        for i, value in enumerate(model):
            _no_extras(value, f"{path}[{i}]")


def check_server_event(event: dict[str, Any]) -> BaseModel:
    parsed = _SERVER.validate_python(event)
    assert getattr(parsed, "type", None) == event["type"], (event["type"], type(parsed))
    _no_extras(parsed, event["type"])
    return parsed  # type: ignore[no-any-return]


def check_client_event(event: dict[str, Any]) -> BaseModel:
    parsed = _CLIENT.validate_python(event)
    assert getattr(parsed, "type", None) == event["type"], (event["type"], type(parsed))
    _no_extras(parsed, event["type"])
    return parsed  # type: ignore[no-any-return]


_LIVE_SERVER = TypeAdapter(LiveServerEvent)
_LIVE_CLIENT = TypeAdapter(LiveClientEvent)


def check_live_server_event(event: dict[str, Any]) -> BaseModel:
    """A GPT-Live server event parses as its ``openai.types.live`` model, with no extras
    (the nested Responses event of ``response.event`` is a free dict in the SDK)."""
    parsed = _LIVE_SERVER.validate_python(event)
    assert getattr(parsed, "type", None) == event["type"], (event["type"], type(parsed))
    _no_extras(parsed, event["type"])
    return parsed  # type: ignore[no-any-return]


def check_live_client_event(event: dict[str, Any]) -> BaseModel:
    parsed = _LIVE_CLIENT.validate_python(event)
    assert getattr(parsed, "type", None) == event["type"], (event["type"], type(parsed))
    _no_extras(parsed, event["type"])
    return parsed  # type: ignore[no-any-return]
