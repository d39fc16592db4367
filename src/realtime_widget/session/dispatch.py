"""Handlers and waiters for a session's events.

``on(type, fn)`` runs ``fn(event)`` for every event of a type (``"*"``: all), both directions;
``wait_for(type)`` is a future of the next one. Waiters belong to a call: when that call ends
(failed, dropped, hung up) every waiter of it fails at once with the real reason, instead of
running to its timeout. An event that happens once per call (``session.created``) and already
happened in the current call settles a new waiter at once: waiting for what is done must not
hang.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..redact import redact
from .log import EventRecord

Handler = Callable[[dict[str, Any]], Any]
# A handler's exception or its output: the owner shows it where the user looks.
Report = Callable[[str], None]

# Events a call emits once, at its start: a waiter for one that already came settles at once.
ONCE_PER_CALL = frozenset({"session.created", "session.started"})


class CallEnded(ConnectionError):
    """The call a waiter belonged to ended before the event came; ``str()`` says why."""


@dataclass(eq=False)
class _Waiter:
    event_type: str
    where: Callable[[dict[str, Any]], bool] | None
    future: asyncio.Future[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    call: int  # the call it waits in
    timer: asyncio.TimerHandle | None = field(default=None)

    def matches(self, record: EventRecord) -> bool:
        if self.event_type not in ("*", record.type):
            return False
        return self.where is None or bool(self.where(record.event))

    def settle(self, event: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(_set_result, self.future, event)

    def fail(self, error: BaseException) -> None:
        self.loop.call_soon_threadsafe(_set_exception, self.future, error)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class Dispatcher:
    """Handlers by event type, and the waiters of the current call; safe from any thread.

    The handler table is copied on write, so dispatching an event takes no lock.
    """

    def __init__(self, report: Report) -> None:
        self._report = report
        self._lock = threading.Lock()
        self._handlers: dict[str, tuple[Handler, ...]] = {}
        self._waiters: list[_Waiter] = []
        self._once: dict[str, dict[str, Any]] = {}  # ONCE_PER_CALL events of the current call

    # --- handlers ---------------------------------------------------------------------------

    def on(self, event_type: str, handler: Handler) -> None:
        with self._lock:
            self._handlers[event_type] = (*self._handlers.get(event_type, ()), handler)

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        with self._lock:
            if handler is None:
                self._handlers.pop(event_type, None)
                return
            kept = tuple(h for h in self._handlers.get(event_type, ()) if h is not handler)
            if kept:
                self._handlers[event_type] = kept
            else:
                self._handlers.pop(event_type, None)

    def handlers(self, event_type: str) -> tuple[Handler, ...]:
        return self._handlers.get(event_type, ())

    def dispatch(self, record: EventRecord) -> list[Any]:
        """Run the handlers of one event; returns the coroutines async handlers made."""
        kind = record.type
        if kind in ONCE_PER_CALL and record.direction == "in":
            self._once[kind] = record.event
        table = self._handlers
        specific, every = table.get(kind), table.get("*")
        if specific is None and every is None:
            if self._waiters:
                self._settle(record)
            return []
        handlers = (specific or ()) + (every or ())
        coroutines = []
        for handler in handlers:
            try:
                result = handler(record.event)
            except Exception as exc:  # one handler's bug must not stop the others
                name = getattr(handler, "__name__", repr(handler))
                self._report(f"Handler {name} for {record.type} failed: {exc!r}")
                if not getattr(handler, "shows_its_errors", False):
                    sys.stderr.write(redact(traceback.format_exc()))
                continue
            if asyncio.iscoroutine(result):
                coroutines.append(result)
        if self._waiters:
            self._settle(record)
        return coroutines

    # --- waiters ----------------------------------------------------------------------------

    def wait_for(
        self,
        event_type: str,
        *,
        where: Callable[[dict[str, Any]], bool] | None,
        timeout: float,
        call: int,
        live: bool,
        on_timeout: Callable[[], BaseException],
    ) -> asyncio.Future[dict[str, Any]]:
        """A future of the next ``event_type`` in call number ``call``.

        ``live``: that call is under way, so a once-per-call event it already had settles the
        future at once. ``on_timeout()`` makes the error raised if nothing comes in time.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        waiter = _Waiter(event_type, where, future, loop, call)
        seen = self._once.get(event_type) if live else None
        if seen is not None and (where is None or where(seen)):
            future.set_result(seen)
            return future
        with self._lock:
            self._waiters.append(waiter)

        def expire() -> None:
            if not future.done():
                future.set_exception(on_timeout())

        waiter.timer = loop.call_later(timeout, expire)

        def forget(_: asyncio.Future[dict[str, Any]]) -> None:
            if waiter.timer is not None:
                waiter.timer.cancel()
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

        future.add_done_callback(forget)
        return future

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)

    def _settle(self, record: EventRecord) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            try:
                if waiter.matches(record):
                    waiter.settle(record.event)
            except Exception as exc:  # a `where` that raises fails its own waiter only
                waiter.fail(exc)

    def call_started(self) -> None:
        """A new call: once-per-call events are forgotten."""
        self._once.clear()

    def call_ended(self, call: int, reason: str) -> None:
        """Fail at once every waiter of this call (and earlier ones), saying why."""
        with self._lock:
            ended = [w for w in self._waiters if w.call <= call]
        for waiter in ended:
            waiter.fail(CallEnded(reason))
