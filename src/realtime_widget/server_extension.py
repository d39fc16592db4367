"""A Jupyter server extension that turns Nagle's algorithm off on kernel WebSockets.

jupyter_server never calls ``set_nodelay(True)`` on the kernel WebSocket, so a small message
that follows another (a status update, then a widget message) waits for the peer's delayed ACK:
about 40 ms on every kernel → browser → kernel round trip. Realtime events are small and
frequent, so the widget enables this extension on install (``jupyter-config/``); it sets
TCP_NODELAY when each kernel WebSocket opens. ``jupyter server extension disable
realtime_widget.server_extension`` turns it off, and so does ``REALTIME_WIDGET_NODELAY=0`` in
the server's environment (the benchmarks use it to measure the difference).
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


def _load_jupyter_server_extension(serverapp: Any) -> None:
    if os.environ.get("REALTIME_WIDGET_NODELAY", "1") == "0":
        serverapp.log.info("realtime_widget: TCP_NODELAY left off (REALTIME_WIDGET_NODELAY=0)")
        return
    if patch_kernel_websocket():
        serverapp.log.info("realtime_widget: TCP_NODELAY on kernel websockets")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "realtime_widget.server_extension"}]
