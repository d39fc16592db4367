"""A stand-in for the browser side of the comm: it speaks docs/protocol.md to the widget.

Like a page, it says ``hello`` when it loads (the widget holds its messages until a page has).
Messages are handed to the widget's handler directly, not through ipywidgets' dispatcher, which
catches and only logs a handler's exceptions: a test must see them. Everything the kernel sends
(state updates and custom messages) is kept.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from realtime_widget import RealtimeWidget


class FakeBrowser:
    def __init__(self, widget: RealtimeWidget, *, hello: bool = True) -> None:
        self.widget = widget
        self.sent: list[dict[str, Any]] = []
        self.buffers: list[list[Any]] = []  # each sent message's binary buffers, in order
        self._changed = asyncio.Event()
        widget.comm.send = self._capture  # type: ignore[method-assign]
        if hello:
            self.hello()

    def _capture(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.sent.append(data)
        self.buffers.append(list(buffers or []))
        self._changed.set()

    def post(self, content: Any, buffers: list[bytes] | None = None) -> None:
        """A custom message from the page; the handler's exceptions reach the test."""
        self.widget._on_browser_message(self.widget, content, buffers or [])

    def hello(self) -> None:
        self.post({"kind": "hello"})

    def custom(self, kind: str | None = None) -> list[dict[str, Any]]:
        messages = [d["content"] for d in self.sent if d.get("method") == "custom"]
        return [m for m in messages if kind is None or m.get("kind") == kind]

    def wire_text(self) -> str:
        """Everything the kernel sent over the comm, as text (for secret scans)."""
        return json.dumps(self.sent)

    async def wait_custom(self, kind: str, count: int = 1, timeout: float = 10) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                found = self.custom(kind)
                if len(found) >= count:
                    return found[count - 1]
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    def status(self, status: str, **fields: Any) -> None:
        self.post({"kind": "status", "status": status, **fields})

    def events(
        self, *events: dict[str, Any], direction: str = "in", t: float | None = None
    ) -> None:
        now = time.time() * 1000 if t is None else t
        self.post(
            {"kind": "events", "events": [{"dir": direction, "t": now, "event": e} for e in events]}
        )
