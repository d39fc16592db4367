"""Every HTTP client the package makes shares the process's one TLS context.

Building a context loads the CA bundle (about 20 ms of CPU); the kernel makes a client per
request, so a client that built its own paid it on every mint, relayed offer and hang-up.
"""

from __future__ import annotations

from typing import Any

from realtime_widget.config import Endpoint
from realtime_widget.providers import openai as provider
from realtime_widget.providers.tls import tls_context
from realtime_widget.transports import websocket


def _context(sdk_client: Any) -> Any:
    return sdk_client._client._transport._pool._ssl_context


def test_each_request_client_reuses_the_one_tls_context() -> None:
    openai = Endpoint("https://api.openai.com/v1", api_key="sk-test")
    azure = Endpoint("https://example.openai.azure.com/openai/v1", api_key="k", auth="api-key")
    clients = [provider.client(openai), provider.client(azure), websocket._client(openai)]
    assert all(_context(c) is tls_context() for c in clients)
    assert clients[0]._client is not clients[1]._client  # still a client per request
    assert tls_context().verify_mode.name == "CERT_REQUIRED"  # shared, not weakened
