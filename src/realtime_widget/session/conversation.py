"""Conversation: the session's items in server order, built from server events only.

Text and audio sessions alike: assistant text grows from ``output_text`` or
``output_audio_transcript`` deltas, user speech from input transcription events (which often
arrive after the assistant has started replying; they are keyed by item id, so they land on the
right item), function calls from their argument deltas, and their outputs from the items the
kernel adds. An assistant item cut by a barge-in is marked ``truncated`` at ``audio_end_ms``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .recording import Recording

Sender = Callable[[dict[str, Any]], Any]


@dataclass
class Item:
    """One conversation item, filled in as its events arrive."""

    id: str
    # message, function_call, function_call_output, mcp_call, mcp_list_tools,
    # mcp_approval_request, mcp_approval_response
    type: str
    role: str | None = None  # user, assistant, system (messages only)
    status: str | None = None  # in_progress, completed, incomplete
    text: str = ""  # message text or transcript (user speech once transcribed)
    name: str | None = None  # function_call, mcp_call, mcp_approval_request
    call_id: str | None = None  # function_call, function_call_output
    arguments: str = ""  # function_call, mcp_call, as JSON text
    output: str | None = None  # function_call_output, mcp_call
    server_label: str | None = None  # the MCP server of an mcp_* item
    error: str | None = None  # a failed mcp_call or mcp_list_tools
    tools: list[dict[str, Any]] = field(default_factory=list)  # mcp_list_tools
    approval_request_id: str | None = None  # mcp_approval_response, mcp_call
    approve: bool | None = None  # mcp_approval_response
    images: list[str] = field(default_factory=list)  # input_image URLs of a user message
    # Input transcription: why it failed, and a diarising model's segments (speaker, text).
    transcription_error: str | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    response_id: str | None = None  # the response that produced it (model output)
    audio: bool = False  # has audio content (user speech or model voice)
    truncated: bool = False
    audio_end_ms: int | None = None  # where a truncation cut the audio
    # Its response was cancelled before it finished (a barge-in, interrupt()): what is here is
    # what was said until then.
    interrupted: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    # The reply was cut short: the user spoke over it (barge-in) or it was interrupted.
    interrupted: bool = False
    item_id: str | None = None  # the conversation item the turn shows
    # Its cut of the call's recording (record=True), on the speaker's channel; None when the
    # call was not recorded or the turn was typed.
    audio: Recording | None = field(default=None, compare=False, repr=False)


class Transcript(list[Turn]):
    """The conversation's turns as ``(role, text)``; tool calls and results as ``tool`` turns.

    A reply cut short (barge-in, ``interrupt()``) is marked ``interrupted``."""

    def to_markdown(self) -> str:
        return "\n\n".join(
            f"**{t.role}:** {t.text}" + (" *(interrupted)*" if t.interrupted else "") for t in self
        )

    def to_dataframe(self) -> Any:
        """The turns as a pandas DataFrame (columns ``role``, ``text``, ``interrupted``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Transcript.to_dataframe() needs pandas: pip install pandas"
            ) from None
        return pd.DataFrame(
            [{"role": t.role, "text": t.text, "interrupted": t.interrupted} for t in self]
        )


def _content_text(content: list[dict[str, Any]]) -> str:
    return "".join(str(p.get("text") or p.get("transcript") or "") for p in content)


def _turns_of(item: Item) -> list[Turn]:
    """What a transcript shows of one item (nothing, one turn or two)."""
    if item.type == "message" and item.role in ("user", "assistant"):
        text = item.text
        if item.images:
            shown = "[image]" if len(item.images) == 1 else f"[{len(item.images)} images]"
            text = f"{shown} {text}".strip()
        if not text and item.transcription_error:
            text = f"(transcription failed: {item.transcription_error})"
        cut = item.truncated or item.interrupted
        return [Turn(item.role, text, cut, item.id)] if text else []
    if item.type == "function_call":
        turns = [Turn("tool", f"{item.name}({item.arguments})", item_id=item.id)]
        if item.output is not None:
            turns.append(Turn("tool", f"→ {item.output}", item_id=item.id))
        return turns
    label = item.server_label or "mcp"
    if item.type == "mcp_call":
        turns = [Turn("tool", f"{label}.{item.name}({item.arguments})", item_id=item.id)]
        if item.error is not None:
            turns.append(Turn("tool", f"✗ {item.error}", item_id=item.id))
        elif item.output is not None:
            turns.append(Turn("tool", f"→ {item.output}", item_id=item.id))
        return turns
    if item.type == "mcp_list_tools":
        if item.error is not None:
            return [Turn("tool", f"{label}: listing tools failed: {item.error}", item_id=item.id)]
        names = ", ".join(str(t.get("name")) for t in item.tools if isinstance(t, dict))
        return [Turn("tool", f"{label} offers: {names or 'no tools'}", item_id=item.id)]
    if item.type == "mcp_approval_request":
        asked = f"approval asked for {label}.{item.name}({item.arguments})"
        return [Turn("tool", asked, item_id=item.id)]
    if item.type == "mcp_approval_response":
        verdict = "approved" if item.approve else "denied"
        return [Turn("tool", f"{verdict} ({item.approval_request_id})", item_id=item.id)]
    return []


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)
    return str(error)


class Conversation:
    """Items keyed by id, in the order the server reports them; safe to read from any thread.

    >>> conversation = Conversation()
    >>> conversation.apply({"type": "conversation.item.added", "item": {
    ...     "id": "item_1", "type": "message", "role": "user",
    ...     "content": [{"type": "input_text", "text": "hi"}]}})
    >>> conversation.transcript.to_markdown()
    '**user:** hi'
    """

    def __init__(self, send: Sender | None = None) -> None:
        self._items: dict[str, Item] = {}
        self._order: list[str] = []
        self._calls: dict[str, Item] = {}  # function_call items by call_id
        self._lock = threading.Lock()
        self._send = send

    @property
    def items(self) -> list[Item]:
        with self._lock:
            return [self._items[i] for i in self._order]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __getitem__(self, index: int) -> Item:
        return self.items[index]

    def get(self, item_id: str) -> Item | None:
        with self._lock:
            return self._items.get(item_id)

    def calls(self) -> list[Item]:
        """Function calls, each with ``output`` filled in once its result was added."""
        return [i for i in self.items if i.type == "function_call"]

    def mcp_calls(self) -> list[Item]:
        """Calls the model made to remote MCP servers, with their output or error."""
        return [i for i in self.items if i.type == "mcp_call"]

    @property
    def transcript(self) -> Transcript:
        turns = Transcript()
        for item in self.items:
            turns.extend(_turns_of(item))
        return turns

    # --- edits from Python: client events, applied when the server confirms ---------------

    def delete(self, item_id: str) -> dict[str, Any]:
        """Ask the server to delete an item (``conversation.item.delete``)."""
        return self._request({"type": "conversation.item.delete", "item_id": item_id})

    def truncate(self, item_id: str, audio_end_ms: int) -> dict[str, Any]:
        """Cut an assistant audio item at ``audio_end_ms`` (``conversation.item.truncate``)."""
        return self._request(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": int(audio_end_ms),
            }
        )

    def _request(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._send is None:
            raise RuntimeError("This conversation is not attached to a widget.")
        if self.get(event["item_id"]) is None:
            raise KeyError(f"No item {event['item_id']!r} in the conversation.")
        sent = self._send(event)
        return sent[0] if isinstance(sent, list) else event

    # --- GPT-Live captions (turns inferred by session/live.py) ---------------------------

    def caption(self, role: str, item_id: str, delta: str, closed: str | None = None) -> None:
        """Grow a GPT-Live turn by a caption delta (the turn is made on its first); ``closed``
        is the speaker's previous turn, which this one ended."""
        with self._lock:
            if closed is not None and closed in self._items:
                self._items[closed].status = "completed"
            item = self._items.get(item_id)
            if item is None:
                item = Item(id=item_id, type="message", role=role, status="in_progress")
                item.audio = True
                self._items[item_id] = item
                self._order.append(item_id)
            item.text += delta

    # --- server events -------------------------------------------------------------------

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one server event into the conversation (others are ignored; never raises)."""
        kind = event.get("type")
        if not isinstance(kind, str):
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            return
        with self._lock:
            try:  # noqa: SIM105 - a try costs less per event than contextlib.suppress
                handler(self, event)
            except (AttributeError, TypeError, ValueError, KeyError, IndexError):
                pass  # a malformed event must not break the conversation

    def _get(self, item_id: Any) -> Item | None:
        return self._items.get(item_id) if isinstance(item_id, str) else None

    def _upsert(self, event: dict[str, Any]) -> None:
        raw = event.get("item")
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            return
        item_id = raw["id"]
        item = self._items.get(item_id)
        if item is None:
            previous = event.get("previous_item_id")
            after = previous if isinstance(previous, str) and previous in self._items else None
            item = Item(id=item_id, type=str(raw.get("type", "")))
            self._items[item_id] = item
            # Usually the new item follows the last one: no scan, flat in session length.
            if after is None or self._order[-1] == after:
                self._order.append(item_id)
            else:
                self._order.insert(self._order.index(after) + 1, item_id)
        item.raw = raw
        item.role = raw.get("role", item.role)
        item.status = raw.get("status", item.status)
        item.name = raw.get("name", item.name)
        item.call_id = raw.get("call_id", item.call_id)
        item.server_label = raw.get("server_label", item.server_label)
        item.approval_request_id = raw.get("approval_request_id", item.approval_request_id)
        if isinstance(raw.get("approve"), bool):
            item.approve = raw["approve"]
        if raw.get("error") is not None:
            item.error = _error_text(raw["error"])
        if isinstance(raw.get("tools"), list):
            item.tools = [t for t in raw["tools"] if isinstance(t, dict)]
        if item.type == "function_call" and isinstance(item.call_id, str):
            self._calls[item.call_id] = item
        if raw.get("arguments"):
            item.arguments = raw["arguments"]
        if raw.get("output") is not None:
            item.output = str(raw["output"])
            call = self._calls.get(item.call_id) if isinstance(item.call_id, str) else None
            if call is not None:
                call.output = item.output
        content = raw.get("content") or []
        if any(isinstance(p, dict) and "audio" in str(p.get("type")) for p in content):
            item.audio = True
        images = [
            str(p.get("image_url"))
            for p in content
            if isinstance(p, dict) and p.get("type") == "input_image" and p.get("image_url")
        ]
        if images:
            item.images = images
        text = _content_text(content)
        if text:  # a final item carries the full text; an empty one keeps the deltas so far
            item.text = text

    def _append(self, event: dict[str, Any], field_name: str = "text") -> None:
        item = self._get(event.get("item_id"))
        if item is None:
            return
        delta = event.get("delta")
        if delta:
            setattr(item, field_name, getattr(item, field_name) + str(delta))
        response_id = event.get("response_id")
        if response_id is not None and isinstance(response_id, str):
            item.response_id = response_id

    def _set_text(self, event: dict[str, Any], key: str) -> None:
        item = self._get(event.get("item_id"))
        if item is not None and isinstance(event.get(key), str):
            item.text = event[key]

    def _output_item(self, event: dict[str, Any]) -> None:
        raw = event.get("item")
        if isinstance(raw, dict):
            item = self._get(raw.get("id"))
            if item is not None:
                item.response_id = event.get("response_id", item.response_id)
                item.status = raw.get("status", item.status)

    def _arguments_done(self, event: dict[str, Any]) -> None:
        item = self._get(event.get("item_id"))
        if item is not None:
            item.arguments = str(event.get("arguments", ""))
            item.name = event.get("name", item.name)
            item.call_id = event.get("call_id", item.call_id)
            if isinstance(item.call_id, str):
                self._calls[item.call_id] = item

    def _status(self, event: dict[str, Any], status: str) -> None:
        item = self._get(event.get("item_id"))
        if item is not None:
            item.status = status

    def _transcription_failed(self, event: dict[str, Any]) -> None:
        item = self._get(event.get("item_id"))
        if item is not None:
            item.transcription_error = _error_text(event.get("error")) or "unknown error"

    def _segment(self, event: dict[str, Any]) -> None:
        item = self._get(event.get("item_id"))
        if item is not None:
            keys = ("id", "speaker", "text", "start", "end")
            item.segments.append({k: event.get(k) for k in keys})

    def _mcp_arguments_done(self, event: dict[str, Any]) -> None:
        item = self._get(event.get("item_id"))
        if item is not None and isinstance(event.get("arguments"), str):
            item.arguments = event["arguments"]

    def _deleted(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if isinstance(item_id, str) and item_id in self._items:
            item = self._items.pop(item_id)
            self._order.remove(item_id)
            if item.call_id is not None and self._calls.get(item.call_id) is item:
                del self._calls[item.call_id]

    def _truncated(self, event: dict[str, Any]) -> None:
        item = self._get(event.get("item_id"))
        if item is not None:
            item.truncated = True
            item.audio_end_ms = event.get("audio_end_ms")

    def _response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if not isinstance(response, dict) or not isinstance(response.get("output"), list):
            return
        cancelled = response.get("status") == "cancelled"
        for raw in response["output"]:
            item = self._get(raw.get("id")) if isinstance(raw, dict) else None
            if item is not None:
                item.status = raw.get("status", item.status)
                item.response_id = response.get("id", item.response_id)
                item.interrupted = item.interrupted or cancelled

    def __repr__(self) -> str:
        return f"Conversation({len(self)} items)"


_HANDLERS: dict[str, Callable[[Conversation, dict[str, Any]], None]] = {
    "conversation.item.added": Conversation._upsert,
    "conversation.item.created": Conversation._upsert,
    "conversation.item.done": Conversation._upsert,
    "conversation.item.retrieved": Conversation._upsert,
    "response.output_item.added": Conversation._output_item,
    "response.output_item.done": Conversation._output_item,
    "response.output_text.delta": Conversation._append,
    "response.output_audio_transcript.delta": Conversation._append,
    "response.output_text.done": lambda c, e: c._set_text(e, "text"),
    "response.output_audio_transcript.done": lambda c, e: c._set_text(e, "transcript"),
    "conversation.item.input_audio_transcription.delta": Conversation._append,
    "conversation.item.input_audio_transcription.completed": lambda c, e: c._set_text(
        e, "transcript"
    ),
    "response.function_call_arguments.delta": lambda c, e: c._append(e, "arguments"),
    "response.function_call_arguments.done": Conversation._arguments_done,
    "conversation.item.deleted": Conversation._deleted,
    "conversation.item.truncated": Conversation._truncated,
    "response.done": Conversation._response_done,
    "conversation.item.input_audio_transcription.failed": Conversation._transcription_failed,
    "conversation.item.input_audio_transcription.segment": Conversation._segment,
    "response.mcp_call_arguments.delta": lambda c, e: c._append(e, "arguments"),
    "response.mcp_call_arguments.done": Conversation._mcp_arguments_done,
    "response.mcp_call.in_progress": lambda c, e: c._status(e, "in_progress"),
    "response.mcp_call.completed": lambda c, e: c._status(e, "completed"),
    "response.mcp_call.failed": lambda c, e: c._status(e, "failed"),
    "mcp_list_tools.in_progress": lambda c, e: c._status(e, "in_progress"),
    "mcp_list_tools.completed": lambda c, e: c._status(e, "completed"),
    "mcp_list_tools.failed": lambda c, e: c._status(e, "failed"),
}
# The server events the conversation is built from (the session routes only these to it).
FOLLOWS = frozenset(_HANDLERS)
