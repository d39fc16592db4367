"""Measuring each call from the broker's side: its sideband, its usage, its limits.

The broker attaches to every call it made (the Realtime ``?call_id=`` sideband, or GPT-Live's
``/attach``, with the instructor's key) and reads what the call costs: ``response.done`` usage
priced by ``session.metrics`` (Realtime), ``session.usage.updated`` seconds (GPT-Live), and the
wall-clock length. Each reading goes to the ledger; a call that passes the policy's maximum
length or its learner's daily minutes or dollars is hung up, with the reason kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Endpoint
from ..providers import openai as provider
from ..session.metrics import cost, live_cost
from ..transports.websocket import KernelSocket
from .store import Store

TICK_S = 0.5


@dataclass
class Watched:
    id: str
    user: str
    kind: str  # realtime or live
    model: str | None
    started: float = field(default_factory=time.monotonic)
    tokens_cost: float = 0.0  # Realtime: the priced responses so far
    live_cost: float = 0.0  # GPT-Live: the latest cumulative usage, priced
    ended: str | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def cost(self) -> float:
        return self.tokens_cost + self.live_cost


class Meter:
    """Every call the broker made, watched until it ends (see the module docstring).

    ``limit(watched)`` says why a call must end now (None: it may go on)."""

    def __init__(
        self,
        upstream: Endpoint,
        store: Store,
        limit: Callable[[Watched], str | None],
    ) -> None:
        self.upstream = upstream
        self.store = store
        self.limit = limit
        self.calls: dict[str, Watched] = {}

    def watch(self, call_id: str, user: str, kind: str, model: str | None) -> Watched:
        self.store.call_started(call_id, user, kind, model)
        watched = Watched(call_id, user, kind, model)
        self.calls[call_id] = watched
        loop = asyncio.get_running_loop()
        watched.tasks = [
            loop.create_task(self._listen(watched)),
            loop.create_task(self._tick(watched)),
        ]
        return watched

    async def end(self, call_id: str, reason: str) -> bool:
        """Hang a call up on the provider and record why (False: no such call here)."""
        watched = self.calls.get(call_id)
        if watched is None or watched.ended is not None:
            return False
        watched.ended = reason
        with contextlib.suppress(Exception):
            await provider.hangup(self.upstream, call_id, live=watched.kind == "live")
        self._finish(watched, reason)
        return True

    def _finish(self, watched: Watched, reason: str) -> None:
        watched.ended = watched.ended or reason
        self.store.measured(watched.id, watched.seconds, watched.cost)
        self.store.call_ended(watched.id, watched.ended)
        self.calls.pop(watched.id, None)
        for task in watched.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def _tick(self, watched: Watched) -> None:
        while watched.ended is None:
            await asyncio.sleep(TICK_S)
            self.store.measured(watched.id, watched.seconds, watched.cost)
            reason = self.limit(watched)
            if reason is not None:
                await self.end(watched.id, reason)

    async def _listen(self, watched: Watched) -> None:
        socket = KernelSocket(self.upstream, call_id=watched.id, live=watched.kind == "live")
        try:
            await socket.open()
            async for event in socket.events():
                self._read(watched, event)
                if event.get("type") == "session.closed":
                    break
        except Exception:  # a sideband that breaks ends the watch, not the broker
            pass
        finally:
            with contextlib.suppress(Exception):
                await socket.close()
        if watched.ended is None:
            self._finish(watched, "ended")

    def _read(self, watched: Watched, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.done":
            usage = (event.get("response") or {}).get("usage")
            priced = cost(usage, watched.model or "") if isinstance(usage, dict) else None
            watched.tokens_cost += priced or 0.0
        elif kind in ("session.usage.updated", "session.closed"):
            usage = event.get("usage")
            if isinstance(usage, dict):
                watched.live_cost = live_cost(usage, watched.model) or watched.live_cost
        elif kind == "session.created":
            model = (event.get("session") or {}).get("model")
            watched.model = model if isinstance(model, str) else watched.model
        self.store.measured(watched.id, watched.seconds, watched.cost)
