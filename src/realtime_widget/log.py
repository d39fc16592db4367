"""EventLog: every data-channel event in both directions, bounded, with both clocks."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from .messages import EventRecord


class EventLog:
    """A ring of the last ``maxlen`` events (oldest dropped first); safe to read from any thread.

    >>> log = EventLog(maxlen=2)
    >>> len(log)
    0
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._records: deque[EventRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.total = 0  # every event ever recorded, dropped ones included

    def append(self, record: EventRecord) -> None:
        with self._lock:
            self._records.append(record)
            self.total += 1

    def snapshot(self) -> list[EventRecord]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[EventRecord]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> EventRecord:
        return self.snapshot()[index]

    def filter(self, type: str | None = None, direction: str | None = None) -> list[EventRecord]:
        """Records of one type (``"response.*"`` matches a prefix) and/or direction."""
        prefix = type[:-1] if type and type.endswith("*") else None
        return [
            r
            for r in self.snapshot()
            if (
                type is None or r.type == type or (prefix is not None and r.type.startswith(prefix))
            )
            and (direction is None or r.direction == direction)
        ]

    def types(self) -> list[str]:
        return [r.type for r in self.snapshot()]

    def to_jsonl(self, path: str | Path) -> Path:
        """Write the log as JSON lines (one record each); returns the path."""
        target = Path(path)
        with target.open("w", encoding="utf-8") as out:
            for r in self.snapshot():
                line = {
                    "direction": r.direction,
                    "t_browser": r.t_browser,
                    "t_kernel": r.t_kernel,
                    "event": r.event,
                }
                out.write(json.dumps(line) + "\n")
        return target

    def __repr__(self) -> str:
        return f"EventLog({len(self)} events, {self.total} recorded)"
