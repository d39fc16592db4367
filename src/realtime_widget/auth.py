"""Talking to the provider with the standard key: mint a client secret, relay an offer, hang up.

Everything here is async (httpx) so it runs as a task on the kernel's loop and never blocks a
comm handler. Failures raise :class:`RealtimeAuthError` carrying the provider's own message and a
sentence on what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from .config import Endpoint

TIMEOUT_S = 15.0


class RealtimeAuthError(RuntimeError):
    """The provider refused, or could not be reached. ``str()`` says what to do."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
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


def _provider_error(what: str, res: httpx.Response) -> RealtimeAuthError:
    message, code = res.text.strip()[:500], None
    try:
        body = res.json()
        error = body.get("error", body) if isinstance(body, dict) else {}
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            code = error.get("code")
    except (ValueError, json.JSONDecodeError):
        pass
    advice = _ADVICE.get(res.status_code)
    if advice is None and res.status_code >= 500:
        advice = "The provider failed; try again in a moment."
    label = f"{res.status_code}{' ' + code if code else ''}"
    text = f"{what} was refused ({label}): {message or res.reason_phrase}"
    return RealtimeAuthError(
        f"{text} {advice}" if advice else text, status=res.status_code, code=code
    )


def _unreachable(what: str, endpoint: Endpoint, exc: Exception) -> RealtimeAuthError:
    if isinstance(exc, httpx.TimeoutException):
        reason = f"no answer within {TIMEOUT_S:g} s"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return RealtimeAuthError(
        f"{what} failed: could not reach {endpoint.base_url} ({reason}). Check the network "
        'and the endpoint, or use endpoint="local" to work offline.'
    )


async def mint_client_secret(
    http: httpx.AsyncClient, endpoint: Endpoint, session: dict[str, Any], *, ttl_s: int = 600
) -> ClientSecret:
    """``POST /realtime/client_secrets``: a short-lived key for the browser."""
    what = "Minting a client secret"
    body = {"expires_after": {"anchor": "created_at", "seconds": ttl_s}, "session": session}
    try:
        res = await http.post(
            endpoint.client_secrets_url, json=body, headers=endpoint.headers(), timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise _unreachable(what, endpoint, exc) from None
    if res.status_code != 200:
        raise _provider_error(what, res)
    data = res.json()
    value = data.get("value")
    if not isinstance(value, str):
        shape = "beta" if "client_secret" in data else "unknown"
        raise RealtimeAuthError(
            f"{what}: the provider answered in the {shape} shape (no 'value'). This widget "
            "speaks the GA Realtime API; check the endpoint."
        )
    return ClientSecret(value, int(data.get("expires_at", 0)), data.get("session") or {})


async def relay_offer(
    http: httpx.AsyncClient, endpoint: Endpoint, sdp: str, session: dict[str, Any]
) -> tuple[str, str]:
    """``POST /realtime/calls`` (multipart ``sdp`` + ``session``): the answer and the call id."""
    what = "Posting the SDP offer"
    try:
        res = await http.post(
            endpoint.calls_url,
            files={"sdp": (None, sdp), "session": (None, json.dumps(session))},
            headers=endpoint.headers(),
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise _unreachable(what, endpoint, exc) from None
    if res.status_code not in (200, 201):
        raise _provider_error(what, res)
    return res.text, call_id_from(res.headers.get("Location", ""))


async def hangup(http: httpx.AsyncClient, endpoint: Endpoint, call_id: str) -> None:
    """``POST /realtime/calls/{id}/hangup``: end a call from the server side."""
    what = "Hanging up"
    try:
        res = await http.post(
            endpoint.hangup_url(call_id), headers=endpoint.headers(), timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise _unreachable(what, endpoint, exc) from None
    if res.status_code not in (200, 204, 404):  # 404: the call had already ended
        raise _provider_error(what, res)


def call_id_from(location: str) -> str:
    """``/v1/realtime/calls/rtc_123`` → ``rtc_123`` (``""`` when there is none)."""
    return location.rstrip("/").rsplit("/", 1)[-1] if location else ""
