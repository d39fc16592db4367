"""GPT-Live (``/v1/live``) in a session: captions as turns, delegation, usage, the page's limits.

GPT-Live is full duplex: the model listens while it speaks and decides when to talk, so there
are no responses and no end-of-turn marker. The session keeps the same Python objects as for
Realtime, built from Live's events:

- **Turns are inferred** from the captions (:class:`Captions`): ``session.input_transcript.delta``
  grows the user's current turn and ``session.output_transcript.delta`` the assistant's, each on
  its own, so both can grow at once. A speaker's turn ends when the other speaker starts a new
  one after it, or after ``TURN_GAP_MS`` of its own silence (on the session clock,
  ``start_ms``/``end_ms``). Turn ids are ``live_user_N`` / ``live_assistant_N``; the page
  (``js/transcript.ts``) applies the same rule to the same events and gets the same ids.
- **Tools** are the same Python functions: declared as Responses delegation's function tools,
  run when the nested Responses stream (``response.event``) completes a ``function_call``, every
  pending call answered with ``response.item.create``, then one ``response.create``.
- **Client delegation** (no ``tools``, or ``delegation=None``): ``on_delegation`` handlers get a
  :class:`Delegation` and answer with spoken commentary or silent thinking.
- **Cost** is per second (``session.usage.updated``, cumulative per call): see ``metrics``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol import live_client_event_types
from .tools import ToolResult, run_tool

if TYPE_CHECKING:
    from .core import Session

TURN_GAP_MS = 1500
# The backend model that runs delegated tasks when tools are given (delegation_model=...).
DEFAULT_DELEGATION_MODEL = "gpt-5.5"
# Events the kernel sends over its own line (the sideband), never through the page: the page's
# data channel is not allowed them, so the page cannot change what the kernel decided.
KERNEL_ONLY = frozenset({"session.update", "session.output_audio.fixture.play"})
# Never sent by a WebRTC client at all.
_NOT_ON_WEBRTC = frozenset({"session.start", "session.input_audio.append"})
FOLLOWS = frozenset(
    {
        "session.started",
        "session.updated",
        "session.closed",
        "session.usage.updated",
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.delegation.created",
        "response.event",
    }
)
CLOSE_REASONS = {
    "close_requested": "The session was closed.",
    "expired": "The session reached GPT-Live's time limit (expired). Run w.reconnect() to go "
    "on in a new session with the conversation so far.",
    "content": "GPT-Live ended the session: its safety filter stopped it (content).",
    "remote_hangup": "The other side hung up.",
    "connection_lost": "The connection to GPT-Live was lost. Run w.reconnect() to go on.",
}


def page_client_events() -> list[str]:
    """What the page's data channel may send: every Live client event but the kernel's own."""
    return [t for t in live_client_event_types() if t not in KERNEL_ONLY | _NOT_ON_WEBRTC]


def function_tool(schema: dict[str, Any]) -> dict[str, Any]:
    """A Realtime function tool's schema as a Responses delegation function tool."""
    tool = {k: v for k, v in schema.items() if k in ("type", "name", "description", "parameters")}
    return {**tool, "strict": False}


def delegation_for(
    tools: list[dict[str, Any]], current: Any, model: str | None = None
) -> dict[str, Any] | None:
    """The delegation that offers ``tools`` (Realtime-shaped schemas) to the Responses
    backend, keeping the rest of ``current``'s settings; None (client delegation) without
    tools and without a Responses delegation asked for."""
    current = dict(current) if isinstance(current, dict) else None
    if not tools and (current is None or current.get("type") != "responses"):
        return None if current is None else dict(current)
    responses = dict((current or {}).get("responses") or {})
    responses["model"] = model or responses.get("model") or DEFAULT_DELEGATION_MODEL
    hosted = [t for t in responses.get("tools") or [] if t.get("type") != "function"]
    responses["tools"] = hosted + [function_tool(t) for t in tools if t.get("type") == "function"]
    return {**(current or {}), "type": "responses", "responses": responses}


def history_input(turns: list[tuple[str, str]], limit: int = 128) -> list[dict[str, Any]]:
    """The conversation so far as a new session's ``input`` (text only, the newest ``limit``
    messages): how a Live reconnect carries the conversation on."""
    items = []
    for role, text in turns[-limit:]:
        kind = "output_text" if role == "assistant" else "input_text"
        items.append({"type": "message", "role": role, "content": [{"type": kind, "text": text}]})
    return items


@dataclass
class Caption:
    """What one caption delta did: which turn it grew, and whether it began it."""

    role: str
    item_id: str
    new: bool
    closed: str | None = None  # the turn of this speaker it ended, if any


class Captions:
    """The turn rule of the module docstring, for one call's captions."""

    def __init__(self) -> None:
        self._count = {"user": 0, "assistant": 0}
        self._open: dict[str, str | None] = {"user": None, "assistant": None}
        self._last_end: dict[str, int | None] = {"user": None, "assistant": None}
        self._seq = 0
        self._last_seq = {"user": 0, "assistant": 0}  # when the speaker last spoke
        self._began_seq = {"user": 0, "assistant": 0}  # when the speaker's turn began

    def reset(self) -> None:
        """A new call: turns go on numbering, but none is open."""
        self._open = {"user": None, "assistant": None}
        self._last_end = {"user": None, "assistant": None}

    def apply(self, role: str, start_ms: Any, end_ms: Any) -> Caption:
        other = "assistant" if role == "user" else "user"
        self._seq += 1
        current = self._open[role]
        closed = None
        if current is not None:
            last = self._last_end[role]
            paused = (
                isinstance(start_ms, int)
                and isinstance(last, int)
                and start_ms - last >= TURN_GAP_MS
            )
            answered = self._began_seq[other] > self._last_seq[role]
            if paused or answered:
                closed, current = current, None
        new = current is None
        if current is None:
            self._count[role] += 1
            current = f"live_{role}_{self._count[role]}"
            self._open[role] = current
            self._began_seq[role] = self._seq
        self._last_seq[role] = self._seq
        if isinstance(end_ms, int):
            self._last_end[role] = end_ms
        return Caption(role, current, new, closed)


@dataclass
class Delegation:
    """Work GPT-Live handed to the notebook (client delegation): answer it with :meth:`say`
    (spoken commentary) or :meth:`think` (silent facts), or return the text to say."""

    id: str
    offset_ms: int
    transcript: Any
    _session: Session = field(repr=False)

    def say(self, text: str) -> None:
        self._session.comment(text, delegation_id=self.id)

    def think(self, text: str) -> None:
        self._session.think(text, delegation_id=self.id)


DelegationHandler = Callable[[Delegation], Any]
NO_HANDLER = (
    "No one in the notebook takes delegated work (no tools, no on_delegation handler): tell the "
    "user this can't be done here."
)


class LivePart:
    """The Live events a session follows beyond captions (see the module docstring)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.captions = Captions()
        self._calls: dict[str, list[dict[str, Any]]] = {}  # delegation → its pending calls
        self.handlers: list[DelegationHandler] = []
        self.results: list[ToolResult] = []
        self.close_reason: str | None = None
        self.fork_from: str | None = None  # the stored session the next call forks

    def fork_config(self, creation: dict[str, Any]) -> dict[str, Any]:
        """What a fork may set (store, client, a Responses delegation); the rest is inherited."""
        config: dict[str, Any] = {k: creation[k] for k in ("store", "client") if k in creation}
        delegation = creation.get("delegation")
        if isinstance(delegation, dict) and delegation.get("type") == "responses":
            config["delegation"] = delegation
        return config

    def call_started(self) -> None:
        self.captions.reset()
        self._calls.clear()
        self.close_reason = None

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.event":
            self._response_event(event)
        elif kind == "session.delegation.created":
            delegation = event.get("delegation")
            if isinstance(delegation, dict) and delegation.get("target") == "client":
                self._session.spawn(self._delegated(delegation, event.get("offset_ms")))
        elif kind == "session.closed":
            reason = event.get("reason")
            self.close_reason = reason if isinstance(reason, str) else None

    # --- tools through Responses delegation --------------------------------------------------

    def _response_event(self, wrapper: dict[str, Any]) -> None:
        inner = wrapper.get("event")
        if not isinstance(inner, dict):
            return
        kind = inner.get("type")
        # One delegation's stream (its calls, then the response that ends it) shares its id.
        key = str(wrapper.get("delegation_id") or _response_id(inner) or "")
        if kind == "response.output_item.done":
            item = inner.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                self._session.conversation.apply(
                    {"type": "conversation.item.added", "item": {**item, "id": _item_id(item)}}
                )
                self._calls.setdefault(key, []).append(item)
        elif kind in ("response.completed", "response.done", "response.incomplete"):
            calls = self._calls.pop(key, [])
            if calls:
                self._session.spawn(self._answer(calls))

    async def _answer(self, calls: list[dict[str, Any]]) -> None:
        session = self._session
        results = await asyncio.gather(
            *(
                run_tool(
                    session.tools,
                    str(c.get("name")),
                    str(c.get("call_id")),
                    str(c.get("arguments") or ""),
                )
                for c in calls
            )
        )
        events = []
        for result in results:
            self.results.append(result)
            if not result.ok:
                session._notice(f"Tool {result.name} failed: {result.error}")
            item = {
                "type": "function_call_output",
                "call_id": result.call_id,
                "output": result.output,
            }
            session.conversation.apply(
                {"type": "conversation.item.added", "item": {**item, "id": "out_" + result.call_id}}
            )
            events.append({"type": "response.item.create", "item": item})
        events.append({"type": "response.create"})
        try:
            session.send(events)
        except (ValueError, RuntimeError) as exc:
            session._notice(f"Answering the delegated tool calls failed: {exc}")

    # --- client delegation -------------------------------------------------------------------

    async def _delegated(self, raw: dict[str, Any], offset_ms: Any) -> None:
        session = self._session
        delegation = Delegation(
            str(raw.get("id")),
            int(offset_ms) if isinstance(offset_ms, int) else 0,
            session.transcript,
            session,
        )
        if not self.handlers:
            session.think(NO_HANDLER, delegation_id=delegation.id)
            return
        for handler in list(self.handlers):
            try:
                answer = handler(delegation)
                if asyncio.iscoroutine(answer):
                    answer = await answer
            except Exception as exc:
                session._notice(f"The on_delegation handler failed: {exc!r}")
                session.think(f"The task failed: {exc}", delegation_id=delegation.id)
                continue
            if isinstance(answer, str) and answer:
                session.comment(answer, delegation_id=delegation.id)


def _response_id(inner: dict[str, Any]) -> str | None:
    response = inner.get("response")
    if isinstance(response, dict) and isinstance(response.get("id"), str):
        return str(response["id"])
    return inner.get("response_id") if isinstance(inner.get("response_id"), str) else None


def _item_id(item: dict[str, Any]) -> str:
    item_id = item.get("id")
    return item_id if isinstance(item_id, str) else "fc_" + secrets.token_hex(8)
