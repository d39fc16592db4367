"""The front-end test page (``page/``) and the built bundle (``static/``), served on 127.0.0.1
for the page tests and the benchmarks that drive the same page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

PAGE = Path(__file__).parent / "page"
STATIC = Path(__file__).resolve().parents[2] / "src" / "realtime_widget" / "static"


async def serve_page(static_dir: Path = STATIC) -> tuple[web.AppRunner, str]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it) and the URL."""

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE / "index.html")

    async def harness(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE / "harness.js")

    @web.middleware
    async def no_cache(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"  # a rebuilt bundle is always the one run
        return response

    app = web.Application(middlewares=[no_cache])
    app.router.add_get("/", index)
    app.router.add_get("/harness.js", harness)
    app.router.add_static("/static", static_dir)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"
