"""A WebSocket from the kernel to the provider: a whole session, or a call's sideband.

The official ``openai`` client's realtime connection (``client.realtime.connect``) with the
standard key, which never leaves the kernel: ``model=`` opens a session of its own (the
workbench's runs), ``call_id=`` attaches to a call the page made (events that must not pass
through the page, such as a session.update carrying an MCP server's credentials). Events are
plain JSON dicts both ways.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from ..config import Endpoint
from ..redact import redact_exception


class SocketError(ConnectionError):
    """The WebSocket could not be opened or broke; ``str()`` says why (redacted)."""


def _client(endpoint: Endpoint) -> Any:
    from openai import AsyncOpenAI

    headers = endpoint.headers()
    # Azure's GA surface takes its key as `api-key`; OpenAI and compatible servers as Bearer.
    api_key = endpoint.api_key if endpoint.auth == "bearer" else "unused"
    extra = {} if endpoint.auth == "bearer" else headers
    return AsyncOpenAI(base_url=endpoint.base_url, api_key=api_key, default_headers=extra)


class KernelSocket:
    """One realtime WebSocket from the kernel (see the module docstring).

    >>> socket = KernelSocket(endpoint, call_id="rtc_123")  # doctest: +SKIP
    >>> await socket.open(); await socket.send({"type": "response.create"})  # doctest: +SKIP
    """

    def __init__(
        self, endpoint: Endpoint, *, call_id: str | None = None, model: str | None = None
    ) -> None:
        if (call_id is None) == (model is None):
            raise ValueError("KernelSocket needs call_id= (a sideband) or model= (a session).")
        self.endpoint = endpoint
        self.call_id = call_id
        self.model = model
        self._connection: Any = None

    async def open(self) -> None:
        from openai import omit

        client = _client(self.endpoint)
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
