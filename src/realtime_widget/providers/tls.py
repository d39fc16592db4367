"""One TLS context for the whole process, shared by every HTTP client it makes.

An httpx client made without one builds its own, loading the system's CA bundle: about 20 ms of
CPU each time. The kernel makes a client per request (its handlers run on whichever loop
delivered the message, and a client is bound to its loop), so each mint, relayed offer and
hang-up paid it, and a workshop's broker paid it per learner's request. A context can be shared
by clients, threads and loops; with it a client costs a tenth of a millisecond.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

__all__ = ["async_http_client", "tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's TLS context, built on first use as httpx builds its default one (the
    system's CA bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` as set at that moment)."""
    import httpx

    return httpx.create_ssl_context()


def async_http_client(**options: Any) -> Any:
    """The ``openai`` SDK's default async HTTP client, with the shared TLS context."""
    from openai import DefaultAsyncHttpxClient

    return DefaultAsyncHttpxClient(verify=tls_context(), **options)
