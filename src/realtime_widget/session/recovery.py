"""Carrying a conversation across calls.

There is no resume in the Realtime API: a new call starts empty. :func:`replay_events` turns the
kernel's conversation into the ``conversation.item.create`` events that rebuild it, keeping item
ids so the kernel's items continue rather than duplicate. Assistant audio can't be injected, so it
is replayed as its transcript (``output_text``).
"""

from __future__ import annotations

from typing import Any

from .conversation import Conversation, Item


def _replayed(item: Item) -> dict[str, Any] | None:
    common = {"id": item.id}
    if item.type == "message" and item.role in ("user", "system"):
        if not item.text:
            return None  # untranscribed user audio: there is nothing to replay
        return {**common, "type": "message", "role": item.role,
                "content": [{"type": "input_text", "text": item.text}]}  # fmt: skip
    if item.type == "message" and item.role == "assistant":
        if not item.text:
            return None
        return {**common, "type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": item.text}]}  # fmt: skip
    if item.type == "function_call" and item.name and item.call_id:
        return {**common, "type": "function_call", "name": item.name,
                "call_id": item.call_id, "arguments": item.arguments or "{}"}  # fmt: skip
    if item.type == "function_call_output" and item.call_id and item.output is not None:
        return {**common, "type": "function_call_output", "call_id": item.call_id,
                "output": item.output}  # fmt: skip
    return None


def replay_events(conversation: Conversation) -> list[dict[str, Any]]:
    """The client events that rebuild ``conversation`` in a new call, in order.

    >>> replay_events(Conversation())
    []
    """
    events = []
    for item in conversation.items:
        replayed = _replayed(item)
        if replayed is not None:
            events.append({"type": "conversation.item.create", "item": replayed})
    return events
