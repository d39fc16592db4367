"""A real ``RealtimeWidget`` behind the fake-model page: the kernel's side for failure tests.

``FakeKernel`` plays the kernel in a few lines; failure tests must also show what the kernel
itself concludes (its ``status`` and ``error`` traits, the conversation it keeps). Here the
widget's comm is wired to the page: what the widget sends (trait updates and custom messages)
reaches the page's model in order, as the comm would carry it; what the page sends goes to the
widget's message handler directly (ipywidgets' dispatcher would only log its exceptions; here
they are kept and raised by ``stop()``); ``close()`` closes the page's widget as the widget
manager does. Timers and other threads may send: messages are queued onto the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Page

from realtime_widget import RealtimeWidget

QUIET = {"turn_detection": None}  # the looping fake microphone must not start turns
# await open_page(endpoint=…, …): the page loaded with a real widget behind it.
Open = Callable[..., Awaitable[tuple[RealtimeWidget, "RealKernel"]]]

SYNCED = ("mode", "status", "error", "call_id", "muted", "session", "endpoint_label", "notices")


class RealKernel:
    def __init__(self, page: Page, widget: RealtimeWidget) -> None:
        self.page = page
        self.widget = widget
        self.closed = False
        self.errors: list[BaseException] = []
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._pump = self._loop.create_task(self._deliver())
        comm = widget.comm
        assert comm is not None
        comm.send = self._from_kernel  # type: ignore[method-assign]
        close = comm.close

        def closing(*args: Any, **kwargs: Any) -> None:
            self._put(("close", None))
            close(*args, **kwargs)

        comm.close = closing  # type: ignore[method-assign]

    async def attach(self) -> None:
        await self.page.expose_function("rtwToKernel", self._from_page)

    async def sync(self) -> None:
        """Give the loaded page the widget's state, as the comm's opening message does."""
        state = self.widget.get_state(list(SYNCED))
        await self.page.evaluate(
            "(state) => { for (const [k, v] of Object.entries(state)) rtw.model.set(k, v); }",
            json.loads(json.dumps(state)),
        )

    def _put(self, item: tuple[str, Any]) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._queue.put_nowait(item)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _from_kernel(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        data = json.loads(json.dumps(data))  # what the comm would carry
        if data.get("method") == "custom":
            self._put(("custom", data["content"]))
        elif data.get("method") == "update":
            self._put(("state", data["state"]))

    def _from_page(self, msg: dict[str, Any]) -> None:
        if self.closed or self.widget.comm is None:
            return  # the widget is closed: the comm carries nothing any more
        try:
            self.widget._on_browser_message(self.widget, msg, [])
        except Exception as exc:
            self.errors.append(exc)
            raise

    async def _deliver(self) -> None:
        while True:
            kind, value = await self._queue.get()
            with contextlib.suppress(Exception):  # the page may be closing
                if kind == "custom":
                    await self.page.evaluate("(msg) => rtw.deliver(msg)", value)
                elif kind == "state":
                    await self.page.evaluate(
                        "(state) => { for (const [k, v] of Object.entries(state))"
                        " rtw.model.set(k, v); }",
                        value,
                    )
                elif kind == "close":
                    await self.page.evaluate("() => rtw.close()")
                    self.closed = True

    async def wait(self, condition: Any, timeout: float = 15) -> None:
        """Until ``condition()`` holds (set by the page's messages and the widget's timers)."""
        await self.until(condition, timeout)

    @staticmethod
    async def until(condition: Any, timeout: float = 15) -> None:
        async def poll() -> None:
            while not condition():  # noqa: ASYNC110 - traits change on other threads too
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), timeout)

    async def stop(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        if self.widget.comm is not None:
            self.widget.close()
        if self.errors:
            raise self.errors[0]
