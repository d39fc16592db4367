"""Run the local server: in the foreground (``realtime-widget serve``) or in a background thread.

``LocalServer`` owns an event loop on its own daemon thread, so a notebook cell or a test can
start a server in one line and keep its own loop free::

    with LocalServer() as server:
        print(server.base_url)   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import RealtimeServer
from .rtc import use_loopback_candidates

DEFAULT_PORT = 8765
KEY_VARIABLE = "REALTIME_WIDGET_SERVER_KEY"


def server_key(api_key: str | None = None, key_file: str | Path | None = None) -> str | None:
    """The key the server accepts: given, read from a file, or from ``$REALTIME_WIDGET_SERVER_KEY``
    (a key on the command line shows in ``ps``; a file or the environment does not)."""
    if key_file is not None:
        text = Path(key_file).read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"The key file {key_file} is empty.")
        return text
    key = api_key if api_key is not None else os.environ.get(KEY_VARIABLE)
    return key.strip() or None if key is not None else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None) -> None:
    """A server reachable from the network must not accept any key."""
    if not is_loopback(host) and not api_key:
        raise ValueError(
            f"Binding {host} makes the local server reachable from the network: give it a key "
            f"(--api-key-file PATH, or ${KEY_VARIABLE}; LocalServer(api_key=...)) so only people "
            "with that key can use it."
        )


class LocalServer:
    """The local Realtime-compatible server, running on a background thread.

    >>> with LocalServer(port=0) as server:  # port 0: any free port
    ...     server.base_url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        max_session_s: float = 3600,
        allowed_origins: Iterable[str] = (),
        **options: Any,
    ) -> None:
        check_exposure(host, api_key)
        self.host = host
        self.port = port
        self.api_key = api_key
        self.realtime = RealtimeServer(
            api_key=api_key,
            max_session_s=max_session_s,
            allowed_origins=allowed_origins,
            **options,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """The API base URL, as an OpenAI client wants it (``http://127.0.0.1:PORT/v1``)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "localhost") else self.host
        return f"http://{shown}:{self.port}/v1"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the server is not running"
        return self._loop

    def start(self) -> LocalServer:
        """Start serving on a daemon thread; returns once the port is open."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="realtime-local-server", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"The local server could not start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._cleanup())
        loop.close()

    async def _serve(self) -> None:
        if is_loopback(self.host):
            use_loopback_candidates()
        self._runner = web.AppRunner(self.realtime.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # closes calls and sockets (on_shutdown)
        # Whatever is left (aiortc's own monitors, ending calls) gets cancelled and awaited, so
        # the loop closes with nothing pending.
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        """Close every call and socket, then stop the thread."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"LocalServer({self.base_url!r}, {state})"


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    api_key: str | None = None,
    allowed_origins: Iterable[str] = (),
) -> None:
    """Serve in the foreground until interrupted (the ``realtime-widget serve`` command)."""
    asyncio.run(_serve_forever(host, port, api_key, tuple(allowed_origins)))


async def _serve_forever(
    host: str, port: int, api_key: str | None, allowed_origins: tuple[str, ...]
) -> None:
    check_exposure(host, api_key)
    if is_loopback(host):
        use_loopback_candidates()
    app = RealtimeServer(api_key=api_key, allowed_origins=allowed_origins).app
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = int(runner.addresses[0][1])  # the real port, when asked for port 0
        shown = "127.0.0.1" if host in ("0.0.0.0", "localhost") else host
        print(f"realtime-widget local server: http://{shown}:{bound}/v1", flush=True)
        if api_key is None:
            print("Any non-empty API key is accepted (loopback only). Ctrl-C stops.", flush=True)
        origins = ", ".join(allowed_origins) or "none"
        print(f"Browser origins allowed: loopback pages, and {origins}.", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
