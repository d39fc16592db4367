"""The kernel's side of docs/protocol.md, played in Python for the front-end page tests.

Every custom message the widget sends arrives here (through a Playwright binding) as it would in
``RealtimeWidget``; ``key`` requests are answered by minting a client secret from the local
server, ``relay`` requests by posting the offer to it with the standard key (multipart ``sdp`` +
``session``), as ``realtime_widget.providers.openai`` does. Knobs let a test make it refuse.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from playwright.async_api import Page

from realtime_widget.events import InvalidEventError, prepare
from realtime_widget.protocol import schema

API_KEY = "sk-frontend-test"
SESSION: dict[str, Any] = {"type": "realtime", "instructions": "Repeat what you are told."}


class FakeKernel:
    def __init__(self, page: Page, base_url: str, api_key: str) -> None:
        self.page = page
        self.base_url = base_url
        self.api_key = api_key
        self.received: list[dict[str, Any]] = []
        self.key_error: str | None = None  # reply ok:false to key requests with this
        self.secret: str | None = None  # hand out this secret instead of minting one
        self.configured: list[dict[str, Any]] = []  # the next call's config, set by panels
        self._tasks: set[asyncio.Task[None]] = set()
        self._http = httpx.AsyncClient(timeout=10)

    async def attach(self) -> None:
        await self.page.expose_function("rtwToKernel", self._receive)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    def _receive(self, msg: dict[str, Any]) -> None:
        self.received.append(msg)
        if msg.get("kind") == "request":
            task = asyncio.get_running_loop().create_task(self._answer(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def deliver(self, msg: dict[str, Any]) -> None:
        """Send a kernel -> browser custom message."""
        await self.page.evaluate("(msg) => window.rtw.deliver(msg)", msg)

    async def _answer(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        if request["op"] in ("check", "send"):
            await self.deliver(await self._compose(request, reply))
            return
        if request["op"] == "schema":  # as RealtimeWidget answers: its openai's schema
            await self.deliver(reply | {"ok": True, "value": schema()})
            return
        if request["op"] == "configure":
            self.configured.append(request["event"])
            await self.deliver(reply | {"ok": True, "value": {}})
            return
        try:
            value = await (self._key() if request["op"] == "key" else self._relay(request["sdp"]))
            reply.update(ok=True, value=value)
        except RuntimeError as error:
            reply.update(ok=False, error=str(error))
        await self.deliver(reply)

    async def _compose(self, request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        """The composer's check / send, by the rules RealtimeWidget._compose applies."""
        try:
            prepared = prepare(request["event"])
        except InvalidEventError as exc:
            return reply | {"ok": False, "error": str(exc)}
        if request["op"] == "send":
            await self.deliver({"kind": "send", "events": [prepared]})
            return reply | {"ok": True, "value": {"event_id": prepared["event_id"]}}
        return reply | {"ok": True, "value": {}}

    async def _key(self) -> dict[str, Any]:
        if self.key_error is not None:
            raise RuntimeError(self.key_error)
        calls_url = f"{self.base_url}/realtime/calls"
        if self.secret is not None:
            return {"secret": self.secret, "calls_url": calls_url, "expires_at": 0}
        res = await self._http.post(
            f"{self.base_url}/realtime/client_secrets",
            json={"session": SESSION},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        if res.status_code != 200:
            raise RuntimeError(f"[{res.status_code}] {res.json()['error']['message']}")
        body = res.json()
        return {"secret": body["value"], "calls_url": calls_url, "expires_at": body["expires_at"]}

    async def _relay(self, sdp: str) -> dict[str, Any]:
        res = await self._http.post(
            f"{self.base_url}/realtime/calls",
            files={"sdp": (None, sdp), "session": (None, json.dumps(SESSION))},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        if res.status_code not in (200, 201):
            raise RuntimeError(f"[{res.status_code}] {res.json()['error']['message']}")
        return {"sdp": res.text, "call_id": res.headers["Location"].rstrip("/").rsplit("/", 1)[-1]}

    async def hangup(self, call_id: str) -> None:
        """End the call server-side, as the kernel does to enforce a cap."""
        res = await self._http.post(
            f"{self.base_url}/realtime/calls/{call_id}/hangup",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        res.raise_for_status()
