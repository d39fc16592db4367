"""A WebSocket from the kernel to the provider: a whole session, or a call's sideband.

The official ``openai`` client's realtime connection (``client.realtime.connect``) with the
standard key, which never leaves the kernel: ``model=`` opens a session of its own (the
workbench's runs), ``call_id=`` attaches to a call the page made (events that must not pass
through the page, such as a session.update carrying an MCP server's credentials). Events are
plain JSON dicts both ways.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..config import Endpoint
from ..providers.tls import async_http_client
from ..redact import redact_exception
from ..session.log import EventRecord

if TYPE_CHECKING:
    from ..session.core import Session


class SocketError(ConnectionError):
    """The WebSocket could not be opened or broke; ``str()`` says why (redacted)."""


def _client(endpoint: Endpoint) -> Any:
    from openai import AsyncOpenAI

    headers = endpoint.headers()
    # Azure's GA surface takes its key as `api-key`; OpenAI and compatible servers as Bearer.
    api_key = endpoint.api_key if endpoint.auth == "bearer" else "unused"
    extra = {} if endpoint.auth == "bearer" else headers
    return AsyncOpenAI(
        base_url=endpoint.base_url,
        api_key=api_key,
        default_headers=extra,
        http_client=async_http_client(),
    )


class KernelSocket:
    """One realtime WebSocket from the kernel (see the module docstring).

    >>> socket = KernelSocket(endpoint, call_id="rtc_123")  # doctest: +SKIP
    >>> await socket.open(); await socket.send({"type": "response.create"})  # doctest: +SKIP
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        call_id: str | None = None,
        model: str | None = None,
        live: bool = False,
    ) -> None:
        if (call_id is None) == (model is None):
            raise ValueError("KernelSocket needs call_id= (a sideband) or model= (a session).")
        if live and call_id is None:
            raise ValueError("A GPT-Live KernelSocket is a sideband: it needs call_id=.")
        self.endpoint = endpoint
        self.call_id = call_id
        self.model = model
        # A GPT-Live session's sideband: /live/sessions/{id}/attach, not /realtime?call_id=.
        self.live = live
        self._connection: Any = None

    async def open(self) -> None:
        from openai import omit

        client = _client(self.endpoint)
        if self.live:
            manager = client.live.sideband.connect(session_id=str(self.call_id), max_retries=0)
        else:
            manager = client.realtime.connect(
                call_id=self.call_id if self.call_id is not None else omit,
                model=self.model if self.model is not None else omit,
                max_retries=0,
            )
        try:
            self._connection = await manager.enter()
        except Exception as exc:
            target = f"call {self.call_id}" if self.call_id else f"model {self.model}"
            raise SocketError(
                f"Could not open a WebSocket to {self.endpoint.label} for {target}: "
                f"{redact_exception(exc)}"
            ) from None

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    async def send(self, event: dict[str, Any]) -> None:
        if self._connection is None:
            raise SocketError("The WebSocket is not open.")
        await self._connection.send(event)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every server event, as a dict, until the socket closes."""
        if self._connection is None:
            raise SocketError("The WebSocket is not open.")
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                raw = await self._connection.recv_bytes()
            except ConnectionClosed:
                return
            event = json.loads(raw)
            if isinstance(event, dict):
                yield event

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


class SocketTransport:
    """A whole session over a kernel WebSocket: no page, no media, nothing but Python.

    The workbench's runs use it, so that an experiment runs wherever Python runs (a notebook,
    nbclient, pytest, CI). ``open_call`` opens the socket for the session's model and sends
    its config as the first ``session.update``; events in both directions reach the session as
    records, as the page's would (one clock: the kernel's).

    >>> session.attach(SocketTransport(session)); session.connect()  # doctest: +SKIP
    """

    # OpenAI's WebSocket takes messages far larger than a data channel's 256 KiB.
    max_message_bytes = 15 * 2**20

    def __init__(self, session: Session) -> None:
        self._session = session
        self._socket: KernelSocket | None = None
        self._outbox: asyncio.Queue[list[dict[str, Any]] | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def open_call(self) -> None:
        self._closing = False
        self._session.spawn(self._run())

    def close_call(self) -> None:
        self._closing = True
        self._post(None)  # the sender closes the socket after what was queued before

    def deliver(self, events: list[dict[str, Any]]) -> None:
        self._post(events)

    def waiting_problem(self) -> str | None:
        return None

    def wait_hint(self) -> str:
        return f"The WebSocket to {self._session.endpoint.label} is opening."

    def _post(self, item: list[dict[str, Any]] | None) -> None:
        loop, outbox = self._loop, self._outbox
        if loop is None or outbox is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            outbox.put_nowait(item)
        else:  # a tool's thread answering: hand it to the socket's loop
            loop.call_soon_threadsafe(outbox.put_nowait, item)

    async def _run(self) -> None:
        session = self._session
        config = dict(session.config)
        self._loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        socket = KernelSocket(session.endpoint, model=str(config.get("model") or ""))
        try:
            await socket.open()
        except SocketError as exc:
            session.call_status("error", str(exc))
            return
        if self._closing:  # hung up while the socket opened
            await socket.close()
            session.call_status("closed")
            return
        self._socket = socket
        sender = asyncio.ensure_future(self._send_all(socket))
        try:
            # The session as configured, before anything the user queued: the model is the
            # socket's own (it is in the URL and cannot change).
            first = {"type": "session.update", "session": _without(config, "model")}
            await self._send(socket, [first])
            session.call_status("connected")
            async for event in socket.events():
                now = time.time() * 1000
                session.receive([EventRecord("in", event, now, now)])
        except Exception as exc:  # the socket broke: the call ends with why, nothing is lost
            if not self._closing:
                session.call_status("error", f"The WebSocket broke: {redact_exception(exc)}")
                return
        finally:
            sender.cancel()
            self._socket = None
            await socket.close()
        session.call_status("closed", "" if self._closing else "The server closed the session.")

    async def _send_all(self, socket: KernelSocket) -> None:
        assert self._outbox is not None
        while True:
            batch = await self._outbox.get()
            if batch is None:
                await socket.close()
                return
            await self._send(socket, batch)

    async def _send(self, socket: KernelSocket, batch: list[dict[str, Any]]) -> None:
        for event in batch:
            await socket.send(event)
            now = time.time() * 1000
            self._session.receive([EventRecord("out", event, now, now)])


def _without(config: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != key}
