"""The broker: a JupyterHub service that holds the instructor's key and makes calls for learners.

It speaks the provider's own endpoints under its URL (``…/services/broker/v1/…``), so the
widget's kernel uses it as any base URL (``endpoint="hub"``), with the learner's server token
(``$JUPYTERHUB_API_TOKEN``) in place of a key:

- ``POST v1/realtime/client_secrets``: a client secret for this learner (ephemeral mode), minted
  upstream with the instructor's key, after the policy and the quotas;
- ``POST v1/realtime/calls``: the page's offer with that client secret (the broker forwards it
  and learns the call), or the kernel's relayed offer (multipart, the learner's token);
- ``POST v1/live/sessions``: a GPT-Live session, relayed;
- ``POST …/{id}/hangup``: a learner ends their own call.

Who is asking is checked with the Hub API (``HubAuth``: the token must carry
``access:services!service=<this service>``); groups and admin come from the Hub API too (the
broker's own token). Every call made is watched (``meter.py``) and kept in SQLite (``store.py``).
The instructor's page (``/services/broker/``, hub admins and the ``instructors`` group, through
the hub's OAuth) shows usage per learner live, calls in progress, and ends a call, a learner's
calls or every call; ``api/usage``, ``api/usage.csv`` and ``api/end`` are the same as JSON for
:class:`~realtime_widget.broker.client.BrokerClient`.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tornado import web
from tornado.websocket import WebSocketHandler

from ..config import ConfigError, Endpoint
from ..protocol import is_live_model
from ..providers import openai as provider
from ..providers.tls import tls_context
from .meter import Meter, Watched
from .policy import Policy, PolicyError
from .store import Store, day_start

INSTRUCTORS = "instructors"
GROUPS_CACHE_S = 30.0


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _until_midnight(now: float | None = None) -> str:
    now = time.time() if now is None else now
    left = int(day_start(now) + 86_400 - now)
    return f"{left // 3600} h {left % 3600 // 60} min"


class Broker:
    """The broker's state: policy, ledger, meter, the upstream provider and the hub's view."""

    def __init__(self, policy: Policy, store: Store, upstream: Endpoint, hub_auth: Any) -> None:
        self.policy = policy
        self.store = store
        self.upstream = upstream
        self.hub_auth = hub_auth
        self.meter = Meter(upstream, store, self._limit)
        self._groups: dict[str, tuple[float, list[str], bool]] = {}

    # --- who is asking ----------------------------------------------------------------------

    async def learner(self, handler: web.RequestHandler) -> dict[str, Any]:
        match = self.hub_auth.auth_header_pat.match(
            handler.request.headers.get("Authorization", "")
        )
        if not match:
            raise ApiError(
                401,
                "No hub token: inside a JupyterHub server the widget sends its own "
                "($JUPYTERHUB_API_TOKEN); use endpoint='hub'.",
                "missing_token",
            )
        token = match.group(1).strip()
        model = await self.hub_auth.user_for_token(token, sync=False)
        if model is None:
            raise ApiError(
                401, "The hub does not know this token (expired or revoked).", "invalid_token"
            )
        if model.get("kind", "user") != "user" or not self.hub_auth.check_scopes(
            self.hub_auth.access_scopes, model
        ):
            raise ApiError(
                403,
                "This token may not use the workshop broker: ask the instructor to add you to "
                "the workshop (the token needs access to this service).",
                "forbidden",
            )
        return dict(model)

    async def groups_of(self, name: str) -> tuple[list[str], bool]:
        """The learner's hub groups and admin flag (the broker's own token reads them)."""
        cached = self._groups.get(name)
        if cached is not None and time.monotonic() - cached[0] < GROUPS_CACHE_S:
            return cached[1], cached[2]
        import httpx

        try:
            async with httpx.AsyncClient(timeout=10, verify=tls_context()) as http:
                res = await http.get(
                    f"{self.hub_auth.api_url}/users/{name}",
                    headers={"Authorization": f"token {self.hub_auth.api_token}"},
                )
            res.raise_for_status()
            model = res.json()
            groups = [str(g) for g in model.get("groups") or []]
            admin = bool(model.get("admin"))
        except (httpx.HTTPError, ValueError):  # no groups known: the default quota applies
            groups, admin = [], False
        self._groups[name] = (time.monotonic(), groups, admin)
        return groups, admin

    # --- quotas -----------------------------------------------------------------------------

    def _since(self) -> float:
        return day_start() if self.policy.window == "day" else 0.0

    async def refusal(self, user: str) -> str | None:
        """Why this learner may not start a call now (None: they may)."""
        groups, _ = await self.groups_of(user)
        quota = self.policy.quota_for(groups)
        usage = self.store.usage(user, since=self._since())
        if self.policy.window == "day":
            span, reset = "today", f"it resets at midnight UTC (in {_until_midnight()})"
        else:
            span, reset = "this workshop", "ask the instructor for more"
        if quota.minutes_per_day is not None and usage.minutes >= quota.minutes_per_day:
            return (
                f"Your {quota.minutes_per_day:g} minutes of calls for {span} are used up; {reset}."
            )
        if quota.dollars_per_day is not None and usage.dollars >= quota.dollars_per_day:
            return f"Your ${quota.dollars_per_day:g} of calls for {span} is used up; {reset}."
        if quota.concurrent_calls is not None and usage.active >= quota.concurrent_calls:
            return (
                f"You have {usage.active} call(s) open, the most allowed at once "
                f"({quota.concurrent_calls}): hang one up (w.disconnect()) first."
            )
        hour = self.store.calls_since(user, time.time() - 3600)
        if quota.calls_per_hour is not None and hour >= quota.calls_per_hour:
            return (
                f"You made {hour} calls in the last hour, the most allowed "
                f"({quota.calls_per_hour}); wait a few minutes."
            )
        return None

    def _limit(self, watched: Watched) -> str | None:
        if watched.seconds >= self.policy.max_call_s:
            return f"the workshop's maximum call length ({self.policy.max_call_s:g} s)"
        groups = self._groups.get(watched.user, (0.0, [], False))[1]
        quota = self.policy.quota_for(groups)
        usage = self.store.usage(watched.user, since=self._since())
        span = "today" if self.policy.window == "day" else "the workshop"
        if quota.minutes_per_day is not None and usage.minutes >= quota.minutes_per_day:
            return f"the learner's {quota.minutes_per_day:g} minutes for {span}"
        if quota.dollars_per_day is not None and usage.dollars >= quota.dollars_per_day:
            return f"the learner's ${quota.dollars_per_day:g} for {span}"
        return None

    async def end(self, *, call: str | None = None, user: str | None = None) -> list[str]:
        """The kill switch: one call, a learner's calls, or (neither) every call."""
        targets = [
            w.id
            for w in list(self.meter.calls.values())
            if (call is None or w.id == call) and (user is None or w.user == user)
        ]
        ended = []
        for call_id in targets:
            if await self.meter.end(call_id, "ended by the instructor"):
                ended.append(call_id)
        return ended

    def usage(self) -> dict[str, Any]:
        learners = self.store.per_learner(since=self._since())
        live = {w.id: w for w in self.meter.calls.values()}
        active = [
            {**row, "seconds": round(live[row["id"]].seconds, 1) if row["id"] in live else 0}
            for row in self.store.active()
        ]
        return {
            "day": datetime.datetime.fromtimestamp(day_start(), datetime.timezone.utc)
            .date()
            .isoformat(),
            "learners": learners,
            "active": active,
            "totals": {
                "learners": len(learners),
                "calls": sum(r["calls"] for r in learners),
                "minutes": round(sum(r["minutes"] for r in learners), 3),
                "dollars": round(sum(r["dollars"] for r in learners), 6),
            },
            "policy": self.policy.to_dict(),
        }


class ApiError(web.HTTPError):
    """An error in the provider's shape, so the widget shows its message as it shows OpenAI's."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(status, reason=None)
        self.body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "code": code,
                "param": param,
            }
        }


class _Api(web.RequestHandler):
    broker: Broker

    def initialize(self, broker: Broker) -> None:
        self.broker = broker

    def check_xsrf_cookie(self) -> None:  # token-authenticated API: no cookies involved
        pass

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body = getattr(exc, "body", None) or {
            "error": {"message": self._reason, "type": "server_error", "code": None}
        }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def refuse_provider(self, exc: provider.RealtimeAuthError) -> None:
        raise ApiError(exc.status or 502, str(exc), exc.code or "upstream_error")

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise ApiError(400, "The body is not JSON.", "invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object.", "invalid_type")
        return body

    def policed(self, session: Any) -> dict[str, Any]:
        if not isinstance(session, dict):
            raise ApiError(
                400, "Missing required parameter: 'session'.", "missing_required_parameter"
            )
        try:
            return self.broker.policy.apply(session)
        except PolicyError as exc:
            raise ApiError(400, str(exc), exc.code, exc.param) from None

    async def admitted(self) -> str:
        user = str((await self.broker.learner(self))["name"])
        refused = await self.broker.refusal(user)
        if refused is not None:
            raise ApiError(429, refused, "quota_exceeded")
        return user


class MintHandler(_Api):
    async def post(self) -> None:
        user = await self.admitted()
        body = self.json_body()
        session = self.policed(body.get("session") or {})
        ttl = min(600, int(self.broker.policy.max_call_s))
        try:
            minted = await provider.mint_client_secret(self.broker.upstream, session, ttl_s=ttl)
        except provider.RealtimeAuthError as exc:
            self.refuse_provider(exc)
        self.broker.store.secret_minted(
            _hash(minted.value), user, session.get("model"), minted.expires_at
        )
        self.finish(
            {"value": minted.value, "expires_at": minted.expires_at, "session": minted.session}
        )


class CallsHandler(_Api):
    async def post(self) -> None:
        auth = self.request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer ek_"):
            return await self._with_secret(auth[7:].strip())
        user = await self.admitted()
        sdp, session = self._form()
        session = self.policed(session)
        try:
            answer, call_id = await provider.relay_offer(self.broker.upstream, sdp, session)
        except provider.RealtimeAuthError as exc:
            self.refuse_provider(exc)
        self.broker.meter.watch(call_id, user, "realtime", session.get("model"))
        self._answer(answer, call_id)

    def _form(self) -> tuple[str, dict[str, Any]]:
        def field(name: str) -> str | None:
            files = self.request.files.get(name)
            if files:
                return bytes(files[0]["body"]).decode()
            values = self.request.body_arguments.get(name)
            return values[0].decode() if values else None

        sdp, session = field("sdp"), field("session")
        if not sdp:
            raise ApiError(
                400, "Missing required parameter: 'sdp'.", "missing_required_parameter", "sdp"
            )
        try:
            parsed = json.loads(session) if session else {"type": "realtime"}
        except ValueError:
            raise ApiError(
                400, "The 'session' field must be JSON.", "invalid_json", "session"
            ) from None
        return sdp, parsed

    async def _with_secret(self, secret: str) -> None:
        # The page posts its offer with the client secret the broker minted for its learner.
        owner = self.broker.store.secret_owner(_hash(secret))
        if owner is None:
            raise ApiError(
                401,
                "This client secret was not minted by the broker, or expired.",
                "invalid_api_key",
            )
        user, model = owner
        refused = await self.broker.refusal(user)
        if refused is not None:
            raise ApiError(429, refused, "quota_exceeded")
        import httpx

        async with httpx.AsyncClient(timeout=provider.TIMEOUT_S, verify=tls_context()) as http:
            try:
                res = await http.post(
                    self.broker.upstream.calls_url,
                    content=self.request.body,
                    headers={
                        "Authorization": f"Bearer {secret}",
                        "Content-Type": "application/sdp",
                    },
                )
            except httpx.HTTPError as exc:
                raise ApiError(
                    502, f"The provider could not be reached: {exc}", "upstream_unreachable"
                ) from None
        if res.status_code != 201:
            self.set_status(res.status_code)
            self.set_header("Content-Type", res.headers.get("Content-Type", "application/json"))
            self.finish(res.content)
            return
        call_id = provider.call_id_from(res.headers.get("Location", ""))
        self.broker.meter.watch(call_id, user, "realtime", model)
        self._answer(res.text, call_id)

    def _answer(self, sdp: str, call_id: str) -> None:
        self.set_status(201)
        self.set_header("Content-Type", "application/sdp")
        self.set_header("Location", f"/v1/realtime/calls/{call_id}")
        self.finish(sdp)


class LiveHandler(_Api):
    async def post(self) -> None:
        user = await self.admitted()
        body = self.json_body()
        session = self.policed(body.get("session"))
        if not is_live_model(str(session.get("model"))):
            raise ApiError(
                400,
                "A GPT-Live session needs a gpt-live-* model.",
                "invalid_model",
                "session.model",
            )
        transport = body.get("transport") or {}
        try:
            answer, session_id = await provider.create_live_session(
                self.broker.upstream, str(transport.get("sdp") or ""), session
            )
        except provider.RealtimeAuthError as exc:
            self.refuse_provider(exc)
        self.broker.meter.watch(session_id, user, "live", session.get("model"))
        self.set_status(201)
        self.finish({"session": {"id": session_id}, "transport": {"type": "webrtc", "sdp": answer}})


class HangupHandler(_Api):
    async def post(self, call_id: str) -> None:
        user = str((await self.broker.learner(self))["name"])
        watched = self.broker.meter.calls.get(call_id)
        if watched is None:
            raise ApiError(404, f"Call '{call_id}' not found (it has ended).", "call_id_not_found")
        if watched.user != user:
            raise ApiError(403, "This call is another learner's.", "forbidden")
        await self.broker.meter.end(call_id, "hung up by the learner")
        self.finish(b"")


class SidebandHandler(WebSocketHandler):
    """A learner kernel's sideband to its own call, relayed with the instructor's key: the
    Realtime ``?call_id=`` WebSocket and GPT-Live's ``…/attach`` (an MCP server's credentials in
    ``update_session``; GPT-Live's ``update_session`` and fixtures). Only a call the broker made
    for the same learner; every message is passed on as it is, both ways."""

    broker: Broker

    def initialize(self, broker: Broker) -> None:
        self.broker = broker
        self._upstream: Any = None
        self._pump: asyncio.Task[None] | None = None

    def check_origin(self, origin: str) -> bool:
        return True  # a kernel's client, with a token; a browser's cookie grants nothing here

    def check_xsrf_cookie(self) -> None:
        pass

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Who is asking, before the upgrade: a refusal is an HTTP error, not a closed socket.
        try:
            user = str((await self.broker.learner(self))["name"])
        except ApiError as exc:
            self.set_status(exc.status_code)
            self.finish(exc.body)
            return
        call_id = kwargs.get("session_id") or self.get_query_argument("call_id", "")
        watched = self.broker.meter.calls.get(call_id)
        if watched is None or watched.user != user:
            self.set_status(404 if watched is None else 403)
            self.finish(
                {
                    "error": {
                        "message": f"No call '{call_id}' of yours is open.",
                        "code": "call_id_not_found",
                    }
                }
            )
            return
        self._target = (call_id, watched.kind == "live")
        await super().get(*args, **kwargs)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        import websockets

        call_id, live = self._target
        base = self.broker.upstream.base_url.replace("http", "ws", 1)
        url = (
            f"{base}/live/sessions/{call_id}/attach"
            if live
            else f"{base}/realtime?call_id={call_id}"
        )
        try:
            self._upstream = await websockets.connect(
                url, additional_headers=self.broker.upstream.headers(), max_size=None
            )
        except Exception:  # the provider refused or is gone: say so by closing
            self.close(1011, "The provider's sideband could not be opened.")
            return
        self._pump = asyncio.get_running_loop().create_task(self._down())

    async def _down(self) -> None:
        try:
            async for message in self._upstream:
                await self.write_message(message)
        except Exception:  # either side closing ends the relay
            pass
        self.close()

    async def on_message(self, message: str | bytes) -> None:
        if self._upstream is not None:
            await self._upstream.send(message)

    def on_close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self._upstream is not None:
            asyncio.get_running_loop().create_task(self._upstream.close())


# --- the instructor ---------------------------------------------------------------------------


def _instructor_mixin() -> type:
    from jupyterhub.services.auth import HubOAuthenticated

    mixin: type = HubOAuthenticated
    return mixin


class _Instructor(_instructor_mixin(), web.RequestHandler):  # type: ignore[misc]
    """Hub admins and members of the ``instructors`` group (the hub's OAuth in a browser, or a
    token with access to the service for the Python API)."""

    broker: Broker

    def initialize(self, broker: Broker) -> None:
        self.broker = broker
        self.hub_auth = broker.hub_auth

    async def require_instructor(self) -> str:
        model = self.current_user
        if not model:
            raise ApiError(401, "Log in to the hub first.", "missing_token")
        name = str(model["name"])
        groups, admin = await self.broker.groups_of(name)
        if not admin and INSTRUCTORS not in groups:
            raise ApiError(
                403,
                f"{name} is not an instructor: hub admins and the '{INSTRUCTORS}' group are.",
                "forbidden",
            )
        return name

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body = getattr(exc, "body", None) or {"error": {"message": self._reason, "code": None}}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class UsageHandler(_Instructor):
    @web.authenticated
    async def get(self) -> None:
        await self.require_instructor()
        self.finish(self.broker.usage())


class CsvHandler(_Instructor):
    @web.authenticated
    async def get(self) -> None:
        await self.require_instructor()
        out = io.StringIO()
        rows = self.broker.store.all_calls()
        writer = csv.DictWriter(
            out,
            fieldnames=[
                "id",
                "user",
                "kind",
                "model",
                "started",
                "ended",
                "end_reason",
                "seconds",
                "cost",
            ],
        )
        writer.writeheader()
        writer.writerows(rows)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="realtime-usage.csv"')
        self.finish(out.getvalue())


class EndHandler(_Instructor):
    def check_xsrf_cookie(self) -> None:
        # The page sends the hub's XSRF token; the Python API a token header (no cookie).
        if "Authorization" not in self.request.headers:
            super().check_xsrf_cookie()

    @web.authenticated
    async def post(self) -> None:
        await self.require_instructor()
        body = json.loads(self.request.body or b"{}")
        ended = await self.broker.end(call=body.get("call"), user=body.get("user"))
        self.finish({"ended": ended})


class PageHandler(_Instructor):
    @web.authenticated
    async def get(self) -> None:
        name = await self.require_instructor()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(PAGE.replace("{{name}}", name).replace("{{xsrf}}", self.xsrf_token.decode()))


PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")


def make_app(broker: Broker, prefix: str) -> web.Application:
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    args = {"broker": broker}
    return web.Application(
        [
            (prefix + "v1/realtime/client_secrets", MintHandler, args),
            (prefix + "v1/realtime/calls", CallsHandler, args),
            (prefix + r"v1/realtime/calls/([^/]+)/hangup", HangupHandler, args),
            (prefix + "v1/live/sessions", LiveHandler, args),
            (prefix + r"v1/live/sessions/([^/]+)/hangup", HangupHandler, args),
            (prefix + "v1/realtime", SidebandHandler, args),
            (prefix + r"v1/live/sessions/(?P<session_id>[^/]+)/attach", SidebandHandler, args),
            (prefix + "api/usage", UsageHandler, args),
            (prefix + "api/usage.csv", CsvHandler, args),
            (prefix + "api/end", EndHandler, args),
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix, PageHandler, args),
        ],
        cookie_secret=os.urandom(32),
        xsrf_cookies=True,
        hub_auth=broker.hub_auth,
    )


def upstream_endpoint(url: str | None, key: str | None) -> Endpoint:
    """The provider the broker calls: OpenAI (the instructor's key), or a local server."""
    if not key:
        raise ConfigError(
            "The broker needs the instructor's key: set OPENAI_API_KEY in its environment "
            "(c.JupyterHub.services[...]['environment']) or pass --api-key-file."
        )
    if url in (None, "", "openai"):
        return Endpoint.openai(key)
    return Endpoint(url.rstrip("/"), key, "bearer", "upstream")


def run(
    *,
    policy_path: str | None = None,
    upstream: str | None = None,
    api_key_file: str | None = None,
    db: str | None = None,
) -> None:
    """Run the broker as the hub started it (its ``JUPYTERHUB_SERVICE_*`` environment)."""
    import asyncio

    from jupyterhub.services.auth import HubOAuth

    key = Path(api_key_file).read_text(encoding="utf-8").strip() if api_key_file else None
    key = key or os.environ.get("REALTIME_WIDGET_BROKER_KEY") or os.environ.get("OPENAI_API_KEY")
    endpoint = upstream_endpoint(upstream or os.environ.get("REALTIME_WIDGET_UPSTREAM"), key)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/broker/")
    service_url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8181"))
    store = Store(db or os.environ.get("REALTIME_WIDGET_BROKER_DB") or "realtime-broker.sqlite")
    # The singleton: the OAuth callback handler finds the same instance (and its login states).
    hub_auth = HubOAuth.instance(cache_max_age=60)
    broker = Broker(
        Policy.load(policy_path or os.environ.get("REALTIME_WIDGET_POLICY")),
        store,
        endpoint,
        hub_auth,
    )

    async def main() -> None:
        provider.share_client(endpoint)  # one client and pool for every learner's request
        app = make_app(broker, prefix)
        app.listen(service_url.port or 8181, address=service_url.hostname or "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())
