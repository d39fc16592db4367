"""Talking to the provider with the standard key: mint a client secret, relay an offer, hang up.

The official ``openai`` client makes the requests (``client.realtime.client_secrets.create``,
``calls.create``, ``calls.hangup``), so the widget speaks exactly what the SDK speaks. Everything
is async and runs as a task on the kernel's loop. Failures raise :class:`RealtimeAuthError`
carrying the provider's own message and status, and a sentence on what to do; no text leaves
without the redaction step (a library error may quote the request's headers).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..config import Endpoint
from ..redact import mask_url, redact, redact_exception
from .tls import async_http_client

TIMEOUT_S = 15.0


class RealtimeAuthError(RuntimeError):
    """The provider refused, or could not be reached. ``str()`` says what to do."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(redact(message))
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: int
    session: dict[str, Any]

    def __repr__(self) -> str:
        return f"ClientSecret(expires_at={self.expires_at})"


_ADVICE = {
    401: "Check the API key (OPENAI_API_KEY or api_key=...).",
    403: "The key's project may not have access to this model or endpoint.",
    404: "Check the endpoint's base URL and the model or deployment name.",
    429: "Rate limit or quota reached: wait, or check the project's billing and limits.",
}


def client(endpoint: Endpoint, *, timeout: float | None = None) -> Any:
    """An ``AsyncOpenAI`` for this endpoint (one per request: a kernel's handlers run on
    whichever thread and loop delivered the message, and a client is bound to one)."""
    from openai import AsyncOpenAI

    endpoint.headers()  # says what is missing (no key) before anything is made
    # Azure's GA surface takes the key as `api-key` (its v1 API takes it as Bearer too).
    extra = {"api-key": endpoint.api_key or ""} if endpoint.auth == "api-key" else {}
    return AsyncOpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        default_headers=extra,
        http_client=async_http_client(),
        timeout=TIMEOUT_S if timeout is None else timeout,
        max_retries=0,  # one bounded attempt: the page's call setup has its own limit
    )


# Clients shared by endpoint (see share_client), for one process on one loop.
_SHARED: dict[int, Any] = {}


def share_client(endpoint: Endpoint) -> None:
    """From now on, requests to ``endpoint`` share one client (its connection pool kept, its
    setup paid once) instead of one per request: for a process making many requests on one loop,
    the workshop broker. The kernel never does this (its handlers run on several loops)."""
    _SHARED[id(endpoint)] = client(endpoint)


@contextlib.asynccontextmanager
async def _using(endpoint: Endpoint) -> AsyncIterator[Any]:
    shared = _SHARED.get(id(endpoint))
    if shared is not None:
        yield shared
        return
    async with client(endpoint) as api:
        yield api


def _provider_error(what: str, exc: Any) -> RealtimeAuthError:
    status = int(exc.status_code)
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    message, code = str(getattr(exc, "message", "") or ""), None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        code = error.get("code") if isinstance(error.get("code"), str) else None
    if not message:
        message = exc.response.text.strip()[:500] if exc.response is not None else ""
    advice = _ADVICE.get(status)
    if advice is None and status >= 500:
        advice = "The provider failed; try again in a moment."
    label = f"{status}{' ' + code if code else ''}"
    text = f"{what} was refused ({label}): {message}"
    return RealtimeAuthError(f"{text} {advice}" if advice else text, status=status, code=code)


def _unreachable(
    what: str, endpoint: Endpoint, exc: Exception, timeout: float
) -> RealtimeAuthError:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        reason = f"no answer within {timeout:g} s"
    else:
        cause = exc.__cause__ or exc
        reason = redact_exception(cause)
    return RealtimeAuthError(
        f"{what} failed: could not reach {mask_url(endpoint.base_url)} ({reason}). Check the "
        'network and the endpoint, or use endpoint="local" to work offline.'
    )


async def _call(what: str, endpoint: Endpoint, request: Any) -> Any:
    import openai

    try:
        return await request
    except openai.APIStatusError as exc:
        raise _provider_error(what, exc) from None
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise _unreachable(what, endpoint, exc, TIMEOUT_S) from None


async def mint_client_secret(
    endpoint: Endpoint, session: dict[str, Any], *, ttl_s: int = 600
) -> ClientSecret:
    """``POST /realtime/client_secrets``: a short-lived key for the browser."""
    what = "Minting a client secret"
    async with _using(endpoint) as api:
        raw = await _call(
            what,
            endpoint,
            api.realtime.client_secrets.with_raw_response.create(
                session=session, expires_after={"anchor": "created_at", "seconds": ttl_s}
            ),
        )
    data = raw.http_response.json()
    value = data.get("value") if isinstance(data, dict) else None
    if not isinstance(value, str):
        shape = "beta" if isinstance(data, dict) and "client_secret" in data else "unknown"
        raise RealtimeAuthError(
            f"{what}: the provider answered in the {shape} shape (no 'value'). This widget "
            "speaks the GA Realtime API; check the endpoint."
        )
    return ClientSecret(value, int(data.get("expires_at") or 0), data.get("session") or {})


async def relay_offer(endpoint: Endpoint, sdp: str, session: dict[str, Any]) -> tuple[str, str]:
    """``POST /realtime/calls`` (``sdp`` + ``session``): the answer and the call id."""
    what = "Posting the SDP offer"
    async with _using(endpoint) as api:
        raw = await _call(
            what, endpoint, api.realtime.calls.with_raw_response.create(sdp=sdp, session=session)
        )
    response = raw.http_response
    return response.text, call_id_from(response.headers.get("Location", ""))


async def create_live_session(
    endpoint: Endpoint, sdp: str, session: dict[str, Any]
) -> tuple[str, str]:
    """``POST /live/sessions`` (JSON: ``session`` + ``transport``): a GPT-Live session made for
    the browser's offer; the answer and the session id (``live_…``). GPT-Live has no client
    secrets: the kernel always posts the offer, with the standard key."""
    async with _using(endpoint) as api:
        created = await _call(
            "Creating the GPT-Live session",
            endpoint,
            api.live.create(session=session, transport={"type": "webrtc", "sdp": sdp}),
        )
    return created.transport.sdp, created.session.id


async def fork_live_session(
    endpoint: Endpoint, source_id: str, sdp: str, session: dict[str, Any]
) -> tuple[str, str]:
    """``POST /live/sessions/{id}/fork``: a new GPT-Live session continuing a closed, stored
    one (its model, voice, instructions and history), for the browser's offer."""
    async with _using(endpoint) as api:
        forked = await _call(
            f"Forking the GPT-Live session {source_id}",
            endpoint,
            api.live.sessions.fork(
                source_id, transport={"type": "webrtc", "sdp": sdp}, session=session
            ),
        )
    return forked.transport.sdp, forked.session.id


async def hangup(endpoint: Endpoint, call_id: str, *, live: bool = False) -> None:
    """``POST /realtime/calls/{id}/hangup`` (``/live/sessions/{id}/hangup``): end a call from
    the server side (a call that has already ended is not an error)."""

    async with _using(endpoint) as api:
        calls = api.live.sessions if live else api.realtime.calls
        try:
            await _call("Hanging up", endpoint, calls.hangup(call_id))
        except RealtimeAuthError as exc:
            if exc.status != 404:
                raise


def call_id_from(location: str) -> str:
    """``/v1/realtime/calls/rtc_123`` → ``rtc_123`` (``""`` when there is none)."""
    return location.rstrip("/").rsplit("/", 1)[-1] if location else ""
