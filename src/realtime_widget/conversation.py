"""Conversation: the session's items in server order, built from server events only."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Item:
    """One conversation item, filled in as its events arrive."""

    id: str
    type: str
    role: str | None = None
    status: str | None = None
    text: str = ""
    name: str | None = None
    call_id: str | None = None
    arguments: str = ""
    output: str | None = None
    truncated: bool = False
    audio_end_ms: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


class Transcript(list[Turn]):
    """The conversation's turns as ``(role, text)``."""

    def to_markdown(self) -> str:
        return "\n\n".join(f"**{t.role}:** {t.text}" for t in self)


def _content_text(content: list[dict[str, Any]]) -> str:
    parts = [p.get("text") or p.get("transcript") or "" for p in content]
    return "".join(parts)


class Conversation:
    """Items keyed by id, in the order the server reports them; thread-safe."""

    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()

    @property
    def items(self) -> list[Item]:
        with self._lock:
            return [self._items[i] for i in self._order]

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: int) -> Item:
        return self.items[index]

    @property
    def transcript(self) -> Transcript:
        turns = Transcript()
        for item in self.items:
            if item.type == "message" and item.role in ("user", "assistant") and item.text:
                turns.append(Turn(item.role, item.text))
            elif item.type == "function_call":
                turns.append(Turn("tool", f"{item.name}({item.arguments})"))
            elif item.type == "function_call_output" and item.output is not None:
                turns.append(Turn("tool", f"→ {item.output}"))
        return turns

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one server event into the conversation (others are ignored)."""
        kind = event.get("type", "")
        with self._lock:
            if kind in (
                "conversation.item.added",
                "conversation.item.created",
                "conversation.item.done",
                "conversation.item.retrieved",
            ):
                self._upsert(event.get("item") or {}, event.get("previous_item_id"))
            elif kind in ("response.output_text.delta", "response.output_audio_transcript.delta"):
                item = self._get(event.get("item_id"))
                if item is not None:
                    item.text += str(event.get("delta", ""))
            elif kind == "response.output_text.done":
                self._set_text(event.get("item_id"), event.get("text"))
            elif kind == "response.output_audio_transcript.done":
                self._set_text(event.get("item_id"), event.get("transcript"))
            elif kind == "conversation.item.input_audio_transcription.delta":
                item = self._get(event.get("item_id"))
                if item is not None:
                    item.text += str(event.get("delta") or "")
            elif kind == "conversation.item.input_audio_transcription.completed":
                self._set_text(event.get("item_id"), event.get("transcript"))
            elif kind == "response.function_call_arguments.delta":
                item = self._get(event.get("item_id"))
                if item is not None:
                    item.arguments += str(event.get("delta", ""))
            elif kind == "response.function_call_arguments.done":
                item = self._get(event.get("item_id"))
                if item is not None:
                    item.arguments = str(event.get("arguments", ""))
            elif kind == "conversation.item.deleted":
                item_id = event.get("item_id")
                if item_id in self._items:
                    del self._items[item_id]
                    self._order.remove(item_id)
            elif kind == "conversation.item.truncated":
                item = self._get(event.get("item_id"))
                if item is not None:
                    item.truncated = True
                    item.audio_end_ms = event.get("audio_end_ms")

    def _get(self, item_id: Any) -> Item | None:
        return self._items.get(item_id) if isinstance(item_id, str) else None

    def _set_text(self, item_id: Any, text: Any) -> None:
        item = self._get(item_id)
        if item is not None and isinstance(text, str):
            item.text = text

    def _upsert(self, raw: dict[str, Any], previous: Any) -> None:
        item_id = raw.get("id")
        if not isinstance(item_id, str):
            return
        item = self._items.get(item_id)
        if item is None:
            item = Item(id=item_id, type=str(raw.get("type", "")))
            self._items[item_id] = item
            if isinstance(previous, str) and previous in self._items:
                self._order.insert(self._order.index(previous) + 1, item_id)
            else:
                self._order.append(item_id)
        item.raw = raw
        item.role = raw.get("role", item.role)
        item.status = raw.get("status", item.status)
        item.name = raw.get("name", item.name)
        item.call_id = raw.get("call_id", item.call_id)
        if raw.get("arguments"):
            item.arguments = raw["arguments"]
        if raw.get("output") is not None:
            item.output = raw["output"]
        text = _content_text(raw.get("content") or [])
        if text:  # a final item carries the full text; an empty one keeps the deltas so far
            item.text = text

    def __repr__(self) -> str:
        return f"Conversation({len(self)} items)"
