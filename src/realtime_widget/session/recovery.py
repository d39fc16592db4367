"""Carrying a conversation across calls, and ending calls that reach their budget.

There is no resume in the Realtime API: a new call starts empty. :func:`replay_events` turns the
kernel's conversation into the ``conversation.item.create`` events that rebuild it, keeping item
ids so the kernel's items continue rather than duplicate. Assistant audio can't be injected, so it
is replayed as its transcript (``output_text``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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


class Budget:
    """``max_duration`` (seconds) and ``max_cost`` (USD) for one call; ``on_exceeded(reason)``
    runs once when either is reached."""

    def __init__(
        self,
        *,
        max_duration: float | None,
        max_cost: float | None,
        on_exceeded: Callable[[str], None],
    ) -> None:
        self.max_duration = max_duration
        self.max_cost = max_cost
        self._on_exceeded = on_exceeded
        self._timer: threading.Timer | None = None
        self._fired = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """A call is connected: its clock starts."""
        self.stop()
        with self._lock:
            self._fired = False
        if self.max_duration is not None:
            timer = threading.Timer(self.max_duration, self._fire, args=(self._duration_reason(),))
            timer.daemon = True  # a timer thread: the kernel loop may be busy running a cell
            self._timer = timer
            timer.start()

    def check_cost(self, cost: float | None) -> None:
        if self.max_cost is not None and cost is not None and cost >= self.max_cost:
            self._fire(
                f"the call reached max_cost=${self.max_cost:g} (spent ${cost:.4f}); "
                "the kernel ended it"
            )

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _duration_reason(self) -> str:
        return f"the call reached max_duration={self.max_duration:g} s; the kernel ended it"

    def _fire(self, reason: str) -> None:
        with self._lock:
            if self._fired:
                return
            self._fired = True
        self._on_exceeded(reason)
