"""A Realtime-API-compatible server that runs on this machine, with no key and no internet.

Needs the ``local`` extra (``pip install 'realtime-widget[local]'``). See ``engine`` for the
model's behaviour and ``app`` for the endpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import LocalServer, serve

__all__ = ["LocalServer", "serve"]


def __getattr__(name: str) -> Any:
    # Importing aiortc takes a while; the engine and audio modules don't need it.
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
