"""EventLog: every data-channel event in both directions, bounded, with both clocks."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One data-channel event as it reached the kernel."""

    direction: Literal["in", "out"]
    event: dict[str, Any]
    t_browser: float  # ms since the epoch, the browser's clock
    t_kernel: float  # ms since the epoch, the kernel's clock
    # The event's type, read once: every part of the session dispatches on it.
    type: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.event.get("type", "") if isinstance(self.event, dict) else ""
        object.__setattr__(self, "type", kind if isinstance(kind, str) else str(kind))


def _as_json(record: EventRecord) -> dict[str, object]:
    return {
        "direction": record.direction,
        "t_browser": record.t_browser,
        "t_kernel": record.t_kernel,
        "event": record.event,
    }


class EventLog:
    """A ring of the last ``maxlen`` events (oldest dropped first); safe to read from any thread.

    With ``path``, every event is also appended to that JSON-lines file, so a long session keeps
    everything on disk while memory stays bounded.

    >>> log = EventLog(maxlen=2)
    >>> len(log)
    0
    """

    def __init__(self, maxlen: int = 10_000, path: str | Path | None = None) -> None:
        self._records: deque[EventRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.total = 0  # every event ever recorded, dropped ones included
        self.path = Path(path) if path is not None else None
        self._file: TextIO | None = (
            self.path.open("a", encoding="utf-8") if self.path is not None else None
        )

    def extend(self, records: list[EventRecord]) -> None:
        """Record a batch (one lock, one write for the lot)."""
        with self._lock:
            self._records.extend(records)
            self.total += len(records)
            if self._file is not None:
                self._file.write("".join(json.dumps(_as_json(r)) + "\n" for r in records))
                self._file.flush()

    def append(self, record: EventRecord) -> None:
        with self._lock:
            self._records.append(record)
            self.total += 1
            if self._file is not None:
                self._file.write(json.dumps(_as_json(record)) + "\n")
                self._file.flush()

    def close(self) -> None:
        """Close the JSON-lines file, if any."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

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

    @staticmethod
    def read_jsonl(path: str | Path) -> list[EventRecord]:
        """The records a JSON-lines file holds (what ``to_jsonl`` or ``log_path=`` wrote)."""
        target = Path(path).expanduser()
        if not target.exists():
            raise FileNotFoundError(
                f"No saved session at {target}: w.events.to_jsonl(path) or "
                "RealtimeWidget(log_path=...) writes one."
            )
        records = []
        with target.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    records.append(
                        EventRecord(
                            data["direction"],
                            data["event"],
                            float(data["t_browser"]),
                            float(data["t_kernel"]),
                        )
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{target}, line {number}, is not an event record ({exc!r}): was it "
                        "written by to_jsonl() or log_path=?"
                    ) from None
        return records

    def to_jsonl(self, path: str | Path) -> Path:
        """Write the log as JSON lines (one record each); returns the path."""
        target = Path(path)
        with target.open("w", encoding="utf-8") as out:
            for r in self.snapshot():
                out.write(json.dumps(_as_json(r)) + "\n")
        return target

    def to_dataframe(self) -> Any:
        """The log as a pandas DataFrame: direction, type, both clocks, the event."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("EventLog.to_dataframe() needs pandas: pip install pandas") from None
        return pd.DataFrame(
            [
                {
                    "direction": r.direction,
                    "type": r.type,
                    "t_browser": r.t_browser,
                    "t_kernel": r.t_kernel,
                    "event": r.event,
                }
                for r in self.snapshot()
            ]
        )

    def __repr__(self) -> str:
        return f"EventLog({len(self)} events, {self.total} recorded)"
