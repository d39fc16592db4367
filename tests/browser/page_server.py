"""The plain page's own tiny server: the page, and ``POST /session`` minting a client secret.

As in OpenAI's guide, the page never sees the standard key: its server mints the ``ek_…`` from
the Realtime server's ``/realtime/client_secrets`` and hands it over. Listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from aiohttp import web

PAGE = Path(__file__).parent / "plain_page"


class PageServer:
    """``with PageServer(realtime_base_url, api_key) as page: page.url``."""

    def __init__(self, realtime_base_url: str, api_key: str, session: dict[str, Any] | None = None):
        self.realtime_base_url = realtime_base_url
        self.api_key = api_key
        self.session = session or {"type": "realtime"}
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _mint(self, request: web.Request) -> web.Response:
        async with httpx.AsyncClient() as http:
            res = await http.post(
                f"{self.realtime_base_url}/realtime/client_secrets",
                json={"session": self.session},
                headers={"Authorization": f"Bearer {self.api_key}"},
            )
        body = res.json()
        body["base_url"] = self.realtime_base_url
        return web.json_response(body, status=res.status_code)

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE / "index.html")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/session", self._mint)
        app.router.add_get("/", self._index)
        app.router.add_static("/", PAGE)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._start())
        self._ready.set()
        loop.run_forever()
        assert self._runner is not None
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def __enter__(self) -> PageServer:
        self._thread = threading.Thread(target=self._run, daemon=True, name="plain-page")
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
