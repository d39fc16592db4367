"""The TCP_NODELAY server extension, and a guard on the jupyter_server code it relies on."""

from __future__ import annotations

import inspect

from jupyter_server.services.kernels import websocket

from realtime_widget import server_extension


def test_jupyter_server_still_leaves_nagle_on_and_open_is_what_we_wrap() -> None:
    # If either assertion fails, jupyter_server changed: re-measure the round trip and
    # update or drop the extension (see its module docstring).
    handler = websocket.KernelWebsocketHandler
    source = inspect.getsource(handler)
    assert "set_nodelay" not in source, "jupyter_server now sets TCP_NODELAY itself"
    assert inspect.iscoroutinefunction(handler.open)
    assert list(inspect.signature(handler.open).parameters)[:2] == ["self", "kernel_id"]
    assert hasattr(handler, "set_nodelay")  # tornado's WebSocketHandler API


async def test_the_patch_sets_nodelay_before_the_original_open(monkeypatch: object) -> None:
    handler = websocket.KernelWebsocketHandler
    calls: list[str] = []

    async def fake_open(self: object, kernel_id: str) -> None:
        calls.append(f"open {kernel_id}")

    original = handler.open
    handler.open = fake_open  # type: ignore[method-assign]
    try:
        assert server_extension.patch_kernel_websocket() is True
        assert server_extension.patch_kernel_websocket() is False  # idempotent

        class Socket:
            def set_nodelay(self, value: bool) -> None:
                calls.append(f"nodelay {value}")

        await handler.open(Socket(), "k1")  # type: ignore[arg-type]
        assert calls == ["nodelay True", "open k1"]
    finally:
        handler.open = original  # type: ignore[method-assign]


def test_jupyter_server_still_reads_the_immutable_cache_setting() -> None:
    # The favicons are cached through this setting; if it went, they would be revalidated again.
    from jupyter_server.base.handlers import FileFindHandler

    assert "static_immutable_cache" in inspect.getsource(FileFindHandler.set_headers)


def test_the_favicons_are_cached_under_the_servers_base_url() -> None:
    settings: dict[str, object] = {"static_url_prefix": "/user/ada/static/"}
    assert server_extension.cache_favicons(settings) == "/user/ada/static/favicons/"
    server_extension.cache_favicons(settings)  # loaded twice: listed once
    assert settings["static_immutable_cache"] == ["/user/ada/static/favicons/"]
