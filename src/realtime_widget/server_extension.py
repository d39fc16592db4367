"""A Jupyter server extension that tunes jupyter_server for a stream of small kernel messages.

- Nagle's algorithm off on kernel WebSockets. jupyter_server never calls ``set_nodelay(True)``
  on the kernel WebSocket, so a small message that follows another (a status update, then a
  widget message) waits for the peer's delayed ACK: about 40 ms on every kernel → browser →
  kernel round trip. It sets TCP_NODELAY when each kernel WebSocket opens;
  ``REALTIME_WIDGET_NODELAY=0`` in the server's environment leaves it off (the benchmarks use it
  to measure the difference).
- Favicons cached. Every message from the page makes the kernel busy and then idle, and on each
  change JupyterLab and Notebook 7 swap the tab's favicon; jupyter_server serves favicons with
  ``no-cache``, so each swap was a request to this server (two per event batch during a call,
  on the server that relays the kernel's messages). They are marked immutable, as hashed assets
  are, and the browser takes them from its cache.

The widget enables this extension on install (``jupyter-config/``); ``jupyter server extension
disable realtime_widget.server_extension`` turns it off.
"""

from __future__ import annotations

import functools
import os
from typing import Any

PATCHED = "_realtime_widget_nodelay"


def patch_kernel_websocket() -> bool:
    """Make kernel WebSockets set TCP_NODELAY on open; returns False if already patched."""
    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    original = KernelWebsocketHandler.open
    if getattr(original, PATCHED, False):
        return False

    @functools.wraps(original)
    async def open(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.set_nodelay(True)
        return await original(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    setattr(open, PATCHED, True)
    KernelWebsocketHandler.open = open  # type: ignore[method-assign]
    return True


def cache_favicons(settings: dict[str, Any]) -> str:
    """Serve the favicons as immutable (jupyter_server's ``static_immutable_cache`` setting);
    returns their URL prefix."""
    favicons = str(settings.get("static_url_prefix", "/static/")) + "favicons/"
    immutable = settings.setdefault("static_immutable_cache", [])
    if favicons not in immutable:
        immutable.append(favicons)
    return favicons


def _load_jupyter_server_extension(serverapp: Any) -> None:
    favicons = cache_favicons(serverapp.web_app.settings)
    serverapp.log.info("realtime_widget: %s cached by browsers", favicons)
    if os.environ.get("REALTIME_WIDGET_NODELAY", "1") == "0":
        serverapp.log.info("realtime_widget: TCP_NODELAY left off (REALTIME_WIDGET_NODELAY=0)")
        return
    if patch_kernel_websocket():
        serverapp.log.info("realtime_widget: TCP_NODELAY on kernel websockets")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "realtime_widget.server_extension"}]
