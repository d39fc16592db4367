"""One local server per core: ``realtime-widget serve --workers N``.

A server's calls share its one event loop, and a loop holds a room of about 40 talking calls on
a core. To use more cores, this front starts ``N`` servers as worker processes on loopback ports
and forwards each request to one of them. The media never passes through the front: a call's SDP
answer names its worker's own ICE candidates, so audio and events go straight between the page
and the worker, and the front only carries the few HTTP requests and WebSockets of signalling.

Routing needs no table: each worker starts every id it makes with its mark (``rtc_1…``,
``ek_1…``, ``live_1…``), so a request naming an id (a call's hangup or sideband, a call made with
a client secret, a Live session's attach or fork) goes to the worker that owns it, and a request
naming none (a mint, a call with a standard key, a new WebSocket session) to the next worker in
turn. Workers end with the front (``PR_SET_PDEATHSIG``), and the front with any of its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import html
import itertools
import os
import re
import signal
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .server import KEY_VARIABLE, check_exposure

__all__ = ["MARKS", "serve_workers", "worker_of"]

# A worker's mark is one character, so ids keep their length budget; 36 workers is plenty.
MARKS = "0123456789abcdefghijklmnopqrstuvwxyz"
_ROUTED_ID = re.compile(r"\b(?:ek|rtc|live)_([0-9a-z])")
# Headers that belong to one hop of HTTP, not to the request the front passes on.
_HOP = {
    "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length",
    "te", "trailer", "proxy-authorization", "proxy-authenticate",
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-protocol", "sec-websocket-accept",
}  # fmt: skip


def worker_of(request: web.Request, workers: int) -> int | None:
    """The worker a request belongs to, from an id it names (path, query, key, subprotocol).

    >>> from aiohttp.test_utils import make_mocked_request
    >>> worker_of(make_mocked_request("POST", "/v1/realtime/calls/rtc_1abc/hangup"), 2)
    1
    >>> worker_of(make_mocked_request("POST", "/v1/realtime/client_secrets"), 2) is None
    True
    """
    places: Iterable[str] = (
        request.path,
        request.query_string,
        request.headers.get("Authorization", ""),
        request.headers.get("Sec-WebSocket-Protocol", ""),
    )
    for place in places:
        match = _ROUTED_ID.search(place)
        if match and MARKS.index(match.group(1)) < workers:
            return MARKS.index(match.group(1))
    return None


def _forwarded_headers(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP}


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    url: str
    drain: asyncio.Future[bytes]


async def _start_worker(mark: str, api_key: str | None, allowed_origins: Sequence[str]) -> Worker:
    command = [sys.executable, "-m", "realtime_widget.local", "--port", "0", "--id-mark", mark]
    for origin in allowed_origins:
        command += ["--allow-origin", origin]
    env = dict(os.environ)
    if api_key is not None:
        env[KEY_VARIABLE] = api_key  # not on the command line, where ps shows it
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
    if match is None:
        process.kill()
        raise OSError(f"worker {mark} did not start: {line.strip() or 'no output'}")
    # What else it prints is read and dropped, so a full pipe can never block it.
    drain = asyncio.ensure_future(process.stdout.read())
    return Worker(process, match.group(1), drain)


class Front:
    """Forwards each request to its worker: by the id it names, else the next in turn."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._turn = itertools.cycle(range(len(workers)))
        self._http: aiohttp.ClientSession | None = None
        self.app = web.Application(client_max_size=16 * 1024 * 1024)
        self.app.router.add_get("/", self._status)
        self.app.router.add_route("*", "/{tail:.*}", self._forward)
        self.app.on_cleanup.append(self._close)

    def _pick(self, request: web.Request) -> Worker:
        owner = worker_of(request, len(self.workers))
        return self.workers[next(self._turn) if owner is None else owner]

    async def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            # No pool limit: a room's calls are set up at once; no timeout: calls last an hour.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=False,
            )
        return self._http

    async def _close(self, app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()

    async def _status(self, request: web.Request) -> web.Response:
        """The front's own page: each worker's calls, not one worker's taken for the whole."""
        http = await self._client()
        rows: list[str] = []
        sums = {"calls": 0, "closing": 0, "websockets": 0, "sessions_started": 0}
        for mark, worker in zip(MARKS, self.workers, strict=False):
            try:
                async with http.get(worker.url + "/?format=json") as answer:
                    counts = await answer.json()
                for name in sums:
                    sums[name] += int(counts[name])
                rows.append(
                    f"<li>worker {mark} (pid {worker.process.pid}): {counts['calls']} WebRTC "
                    f"calls, {counts['websockets']} WebSocket sessions, "
                    f"{counts['sessions_started']} sessions started</li>"
                )
            except (aiohttp.ClientError, KeyError, ValueError) as exc:
                rows.append(f"<li>worker {mark}: not answering ({type(exc).__name__})</li>")
        if request.query.get("format") == "json":  # the same sums, for scripts and benchmarks
            return web.json_response(sums)
        base = html.escape(f"{request.scheme}://{request.host}/v1")
        page = f"""<!doctype html><meta charset="utf-8"><title>realtime-widget local server</title>
<h1>realtime-widget local server</h1>
<p>Base URL: <code>{base}</code>, {len(self.workers)} worker processes behind one front.</p>
<p>Active WebRTC calls: {sums["calls"]}</p>
<ul>{"".join(rows)}</ul>
"""
        return web.Response(text=page, content_type="text/html")

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        worker = self._pick(request)
        url = worker.url + request.rel_url.raw_path_qs
        http = await self._client()
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_socket(request, url, http)
        async with http.request(
            request.method,
            url,
            headers=_forwarded_headers(request.headers),
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            return web.Response(
                status=answer.status, body=body, headers=_forwarded_headers(answer.headers)
            )

    async def _forward_socket(
        self, request: web.Request, url: str, http: aiohttp.ClientSession
    ) -> web.StreamResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        try:
            upstream = await http.ws_connect(
                url,
                headers=_forwarded_headers(request.headers),
                protocols=[p for p in offered if p],
                autoclose=False,
                autoping=True,
                max_msg_size=0,
            )
        except aiohttp.WSServerHandshakeError as exc:
            # The worker refused the socket (a bad key, an unknown call): pass its status on.
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": exc.message}},
                status=exc.status,
            )
        page = web.WebSocketResponse(
            protocols=[upstream.protocol] if upstream.protocol else (), max_msg_size=0
        )
        await page.prepare(request)

        async def pump(source: Any, sink: Any) -> None:
            async for message in source:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
            # One side closed: close the other with the same code, so the reason is not lost.
            await sink.close(code=source.close_code or 1000)

        tasks = [
            asyncio.ensure_future(pump(upstream, page)),
            asyncio.ensure_future(pump(page, upstream)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await upstream.close()
            await page.close()
        return page


def serve_workers(
    workers: int,
    host: str = "127.0.0.1",
    port: int = 8765,
    api_key: str | None = None,
    allowed_origins: Iterable[str] = (),
) -> None:
    """Serve in the foreground with ``workers`` server processes behind one front."""
    if not 1 <= workers <= len(MARKS):
        raise ValueError(f"--workers takes 1 to {len(MARKS)} (one per core is the rule)")
    asyncio.run(_serve(workers, host, port, api_key, tuple(allowed_origins)))


async def _serve(
    count: int, host: str, port: int, api_key: str | None, allowed_origins: tuple[str, ...]
) -> None:
    check_exposure(host, api_key)
    started = await asyncio.gather(
        *(_start_worker(MARKS[i], api_key, allowed_origins) for i in range(count)),
        return_exceptions=True,
    )
    workers = [w for w in started if isinstance(w, Worker)]
    try:
        failed = [w for w in started if not isinstance(w, Worker)]
        if failed:
            raise failed[0]
        front = Front(workers)
        runner = web.AppRunner(front.app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            bound = int(runner.addresses[0][1])
            shown = "127.0.0.1" if host in ("0.0.0.0", "localhost") else host
            print(f"realtime-widget local server: http://{shown}:{bound}/v1", flush=True)
            print(f"{count} worker processes, calls spread over them in turn.", flush=True)
            if api_key is None:
                print("Any non-empty API key is accepted (loopback only).", flush=True)
            # A worker that dies takes its calls with it; stop rather than serve a partial room.
            await asyncio.wait(
                [asyncio.ensure_future(w.process.wait()) for w in workers],
                return_when=asyncio.FIRST_COMPLETED,
            )
            raise OSError("a worker process exited: the server stops (its calls ended with it)")
        finally:
            await runner.cleanup()
    finally:
        for worker in workers:
            if worker.process.returncode is None:
                worker.process.terminate()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(worker.process.wait(), 10)
