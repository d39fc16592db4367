"""HTTP and WebSocket front of the local server: the GA Realtime endpoints, auth and CORS.

Its doors, since a workshop may put it on a network:

- Browsers may use it only from the origins allowed (the notebook server's; loopback origins by
  default, more with ``allowed_origins``): others, ``null`` included, are refused on HTTP and on
  the WebSocket upgrade. Chromium's Private Network Access preflight is answered for them, and
  the request headers an official client sends are allowed. Requests with no ``Origin`` (not from
  a browser: the ``openai`` package, curl) are not a CORS matter.
- Keys are compared in constant time; a client secret opens only the call it made (another
  call's sideband answers 403).
- The retired beta shape (``OpenAI-Beta: realtime=v1``, ``/v1/realtime/sessions``) is refused
  with the API's ``beta_api_shape_disabled``, as OpenAI refuses it.

Endpoints (GA shape only):

- ``POST /v1/realtime/client_secrets``: a standard key mints an ``ek_…`` client secret.
- ``POST /v1/realtime/calls``: ``application/sdp`` with an ``ek_…`` key, or multipart
  ``sdp`` + ``session`` with a standard key (a JSON ``{sdp, session}`` body, as openai-python's
  ``calls.create`` sends, is accepted too). Answers 201, the answer SDP and ``Location``.
- ``POST /v1/realtime/calls/{call_id}/hangup``: ends the call.
- ``GET /v1/realtime?model=…`` (a WebSocket session) or ``?call_id=…`` (the call's sideband).
- ``GET /``: a status page.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from ..protocol import SchemaError, check, validate_session
from .engine import Session, effective_session, new_id, session_problem
from .engine.live import LiveSession
from .live_routes import LiveRoutes
from .rtc import RtcCall

_EXPIRES = {
    "type": "object",
    "properties": {
        "anchor": {"const": "created_at"},
        "seconds": {"type": "integer", "minimum": 10, "maximum": 7200},
    },
    "additionalProperties": False,
}
_MINT_BODY_FIELDS = {"expires_after", "session"}
R = TypeVar("R", bound=web.StreamResponse)
# What a page may send when it does not say (a simple request's preflight never asks).
_CORS_HEADERS = "Authorization, Content-Type, OpenAI-Safety-Identifier, api-key"
# Loopback origins, any port: a notebook server on this machine.
LOOPBACK_ORIGIN = re.compile(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$")
BETA_DISABLED = (
    "The Realtime API's beta interface has been turned off. Use the GA interface: no "
    "'OpenAI-Beta: realtime=v1' header, client secrets from /v1/realtime/client_secrets and "
    "WebRTC calls at /v1/realtime/calls."
)


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Loopback origins, and those listed (exact, or ``*`` for every origin)."""
    if origin == "null":
        return False  # sandboxed frames, files, data: URLs; never a notebook server
    listed = set(allowed)
    return "*" in listed or origin in listed or bool(LOOPBACK_ORIGIN.match(origin))


def error_body(
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    type_: str = "invalid_request_error",
) -> dict[str, Any]:
    """OpenAI's HTTP error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _json_error(
    status: int,
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    type_: str = "invalid_request_error",
) -> web.Response:
    return web.json_response(
        error_body(message, code=code, param=param, type_=type_), status=status
    )


def _form_text(value: Any) -> str:
    """A multipart field as text, whether it came as a plain field or as a file part."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode()
    return str(value.file.read().decode())


def _mask(key: str) -> str:
    return key[:4] + "*" * 8 + key[-4:] if len(key) > 12 else "*" * len(key)


@dataclass
class ClientSecret:
    value: str
    expires_at: float
    session: dict[str, Any]


class Outbox:
    """One writer per WebSocket, so server events keep their order on it."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._pump())

    def put(self, text: str) -> None:
        self._queue.put_nowait(text)

    async def _pump(self) -> None:
        while (text := await self._queue.get()) is not None:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, code: int = 1000) -> None:
        """Send what is queued, then close the socket with ``code``."""
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(self._task, 2)
        except asyncio.TimeoutError:
            self._task.cancel()
        await self.ws.close(code=code)


@dataclass
class Call:
    """A WebRTC call: its peer connection, its session, and any sideband WebSockets."""

    id: str
    session: Session | LiveSession
    rtc: RtcCall
    sidebands: set[Outbox] = field(default_factory=set)
    created: float = field(default_factory=time.time)
    secret: str | None = None  # the client secret that made it (it opens this call only)

    def emit(self, event: dict[str, Any], *, to_page: bool = True) -> None:
        text = json.dumps(event)
        if to_page:  # a GPT-Live session's allow-list may keep an event from the page
            self.rtc.send(text)
        for outbox in self.sidebands:
            outbox.put(text)


class RealtimeServer:
    """The aiohttp application and the state behind it (keys, calls, sessions); the GPT-Live
    endpoints come from :class:`LiveRoutes`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        max_session_s: float = 3600,
        text_delay_s: float = 0.005,
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.api_key = api_key
        self.allowed_origins = tuple(allowed_origins)
        self.max_session_s = max_session_s
        self.text_delay_s = text_delay_s
        self.secrets: dict[str, ClientSecret] = {}
        self.calls: dict[str, Call] = {}
        self.websockets: set[web.WebSocketResponse] = set()
        self.sessions_started = 0
        self._ending: set[asyncio.Task[None]] = set()
        self.app = web.Application(middlewares=[self._cors])
        self.app.router.add_get("/", self._status)
        self.app.router.add_post("/v1/realtime/client_secrets", self._mint)
        self.app.router.add_post("/v1/realtime/calls", self._create_call)
        self.app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self._hangup)
        self.app.router.add_get("/v1/realtime", self._websocket)
        # The retired beta shape: refused as OpenAI refuses it.
        self.app.router.add_post("/v1/realtime/sessions", self._beta)
        self.app.router.add_post("/v1/realtime", self._beta)
        self.live = LiveRoutes(self)
        self.app.on_shutdown.append(self._shutdown)

    # --- middleware and auth -------------------------------------------------------------

    @web.middleware
    async def _cors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and not origin_allowed(origin, self.allowed_origins):
            # No CORS headers: the browser keeps the answer from the page that asked.
            return _json_error(
                403,
                f"Origin {origin!r} is not allowed to use this server. Start it with "
                f"--allow-origin {origin} (allowed_origins=...) if that page is yours.",
                code="origin_not_allowed",
            )
        if request.method == "OPTIONS":
            return self._with_cors(web.Response(status=204), request, preflight=True)
        if "realtime=v1" in request.headers.get("OpenAI-Beta", ""):
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await self._beta_socket(request)
            return self._with_cors(self._beta_error(), request)
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            raise self._with_cors(exc, request) from None
        return self._with_cors(response, request)

    @staticmethod
    def _with_cors(response: R, request: web.Request, *, preflight: bool = False) -> R:
        origin = request.headers.get("Origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Expose-Headers"] = "Location"
            if preflight:
                # What an official client sends (x-stainless-*, openai-*): allowed as asked.
                asked = request.headers.get("Access-Control-Request-Headers")
                response.headers["Access-Control-Allow-Headers"] = asked or _CORS_HEADERS
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response.headers["Access-Control-Max-Age"] = "600"
                if request.headers.get("Access-Control-Request-Private-Network") == "true":
                    # Chromium's Private Network Access: a public page asking a private server.
                    response.headers["Access-Control-Allow-Private-Network"] = "true"
        return response

    @staticmethod
    def _beta_error() -> web.Response:
        return _json_error(400, BETA_DISABLED, code="beta_api_shape_disabled")

    async def _beta(self, request: web.Request) -> web.Response:
        return self._beta_error()

    async def _beta_socket(self, request: web.Request) -> web.WebSocketResponse:
        """A beta client's WebSocket: the API's error event, then the socket closes."""
        ws = web.WebSocketResponse(protocols=("realtime",))
        await ws.prepare(request)
        body = error_body(BETA_DISABLED, code="beta_api_shape_disabled")["error"]
        await ws.send_json({"type": "error", "event_id": new_id("event_"), "error": body})
        await ws.close(code=1008, message=b"beta_api_shape_disabled")
        return ws

    def _presented_key(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        if request.headers.get("api-key"):
            return request.headers["api-key"].strip() or None
        for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
            proto = proto.strip()
            if proto.startswith("openai-insecure-api-key."):
                return proto.removeprefix("openai-insecure-api-key.") or None
        return None

    def _check_standard(self, key: str | None) -> web.Response | None:
        if not key:
            return _json_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        wrong = self.api_key is not None and not hmac.compare_digest(
            key.encode(), self.api_key.encode()
        )
        if key.startswith("ek_") or wrong:
            return _json_error(
                401,
                f"Incorrect API key provided: {_mask(key)}. This local server accepts "
                + (
                    "the key it was started with (--api-key)."
                    if self.api_key
                    else "any non-empty "
                    "standard key on loopback; client secrets (ek_…) can't be used here."
                ),
                code="invalid_api_key",
            )
        return None

    def _secret(self, key: str | None) -> ClientSecret | web.Response:
        secret = self.secrets.get(key or "")
        if secret is None or secret.expires_at <= time.time():
            if secret is not None:
                del self.secrets[secret.value]
            return _json_error(
                401,
                "The client secret is unknown or has expired. Mint a new one with "
                "POST /v1/realtime/client_secrets just before connecting.",
                code="invalid_api_key",
            )
        return secret

    def counts(self) -> dict[str, int]:
        """What the status page shows: active calls and sockets, sessions started, and calls
        hung up but still closing (a benchmark waits for none before its next measurement)."""
        return {
            "calls": len(self.calls),
            "closing": len(self._ending),
            "websockets": len(self.websockets),
            "sessions_started": self.sessions_started,
        }

    # --- endpoints -----------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        if request.query.get("format") == "json":  # for a front's status page (serve --workers)
            return web.json_response(self.counts())
        base = html.escape(f"{request.scheme}://{request.host}/v1")  # Host is the client's
        page = f"""<!doctype html><meta charset="utf-8"><title>realtime-widget local server</title>
<h1>realtime-widget local server</h1>
<p>A Realtime-API-compatible server (GA shape) with a small deterministic model.</p>
<p>Base URL: <code>{base}</code></p>
<ul><li>Active WebRTC calls: {len(self.calls)}</li>
<li>Active WebSocket sessions: {len(self.websockets)}</li>
<li>Sessions started: {self.sessions_started}</li>
<li>Auth: {"the key given with --api-key" if self.api_key else "any non-empty key"}</li></ul>
<p>Endpoints: <code>POST /v1/realtime/client_secrets</code>, <code>POST /v1/realtime/calls</code>,
<code>POST /v1/realtime/calls/{{call_id}}/hangup</code>, WebSocket <code>/v1/realtime</code>.</p>
"""
        return web.Response(text=page, content_type="text/html")

    async def _read_json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(
                text=json.dumps(
                    error_body(
                        "We could not parse the JSON body of your request. Send a JSON object.",
                        code="invalid_json",
                    )
                ),
                content_type="application/json",
            ) from None

    def _validated_session(self, session: Any) -> dict[str, Any] | web.Response:
        try:
            checked = validate_session(session)
        except SchemaError as exc:
            return _json_error(400, exc.message, code=exc.code, param=exc.param)
        refused = session_problem(checked)
        if refused is not None:
            code, param, message = refused
            return _json_error(400, message, code=code, param=param)
        return checked

    async def _mint(self, request: web.Request) -> web.Response:
        refused = self._check_standard(self._presented_key(request))
        if refused is not None:
            return refused
        body = await self._read_json(request)
        if not isinstance(body, dict):
            return _json_error(400, "The request body must be a JSON object.", code="invalid_type")
        for name in body:
            if name not in _MINT_BODY_FIELDS:
                return _json_error(
                    400, f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name
                )
        try:
            expires = body.get("expires_after", {})
            check(_EXPIRES, expires, "expires_after")
        except SchemaError as exc:
            return _json_error(400, exc.message, code=exc.code, param=exc.param)
        session = self._validated_session(body.get("session", {"type": "realtime"}))
        if isinstance(session, web.Response):
            return session
        seconds = expires.get("seconds", 600)
        value = new_id("ek_", 32)
        expires_at = int(time.time() + seconds)
        effective = effective_session(session)
        effective["expires_at"] = expires_at
        self.secrets[value] = ClientSecret(value, expires_at, session)
        self._forget_expired_secrets()
        return web.json_response({"value": value, "expires_at": expires_at, "session": effective})

    def _forget_expired_secrets(self) -> None:
        now = time.time()
        for value in [v for v, s in self.secrets.items() if s.expires_at <= now]:
            del self.secrets[value]

    async def _create_call(self, request: web.Request) -> web.Response:
        key = self._presented_key(request)
        content_type = request.content_type
        session_config: dict[str, Any]
        if key and key.startswith("ek_"):
            secret = self._secret(key)
            if isinstance(secret, web.Response):
                return secret
            session_config = secret.session
            if content_type != "application/sdp":
                return _json_error(
                    400,
                    "With a client secret, post the SDP offer as the body with "
                    "Content-Type: application/sdp.",
                    code="unsupported_content_type",
                )
            offer = await request.text()
            return await self._answer(offer, session_config, secret=secret.value)
        refused = self._check_standard(key)
        if refused is not None:
            return refused
        parsed = await self._offer_with_session(request)
        if isinstance(parsed, web.Response):
            return parsed
        offer, session_config = parsed
        return await self._answer(offer, session_config)

    async def _offer_with_session(
        self, request: web.Request
    ) -> tuple[str, dict[str, Any]] | web.Response:
        content_type = request.content_type
        raw_session: Any = {"type": "realtime"}
        if content_type == "application/sdp":
            offer = await request.text()
        elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.post()
            sdp = form.get("sdp")
            if sdp is None:
                return _json_error(
                    400,
                    "Missing required parameter: 'sdp'.",
                    code="missing_required_parameter",
                    param="sdp",
                )
            offer = _form_text(sdp)
            if "session" in form:
                text = _form_text(form["session"])
                try:
                    raw_session = json.loads(text)
                except ValueError:
                    return _json_error(
                        400,
                        "The 'session' field must be a JSON object.",
                        code="invalid_json",
                        param="session",
                    )
        elif content_type == "application/json":
            body = await self._read_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("sdp"), str):
                return _json_error(
                    400,
                    "Missing required parameter: 'sdp'.",
                    code="missing_required_parameter",
                    param="sdp",
                )
            offer = body["sdp"]
            raw_session = body.get("session", raw_session)
        else:
            return _json_error(
                400,
                "Post the SDP offer as application/sdp, or as multipart/form-data with the "
                "fields 'sdp' and 'session'.",
                code="unsupported_content_type",
            )
        session = self._validated_session(raw_session)
        if isinstance(session, web.Response):
            return session
        return offer, session

    async def _answer(
        self, offer: str, config: dict[str, Any], *, secret: str | None = None
    ) -> web.Response:
        call_id = new_id("rtc_", 24)
        session_holder: list[Session] = []

        def on_message(text: str) -> None:
            session_holder[0].receive(text)

        def on_audio(pcm: Any) -> None:
            session_holder[0].feed_audio(pcm)

        def on_open() -> None:
            self.sessions_started += 1
            session_holder[0].start()

        def on_closed() -> None:
            call = self.calls.get(call_id)
            if call is not None:
                self._ending_call(call)

        rtc = RtcCall(
            on_message=on_message,
            on_open=on_open,
            on_audio=on_audio,
            on_closed=on_closed,
            on_playback_started=lambda rid: session_holder[0].playback_started(rid),
            on_playback_stopped=lambda rid: session_holder[0].playback_stopped(rid),
        )
        call_box: list[Call] = []

        def emit(event: dict[str, Any]) -> None:
            call_box[0].emit(event)

        def on_session_close(code: int, reason: str) -> None:
            self._ending_call(call_box[0], code=code)

        session = Session(
            config,
            emit=emit,
            transport="webrtc",
            player=rtc.player,
            on_close=on_session_close,
            max_duration_s=self.max_session_s,
            text_delay_s=self.text_delay_s,
        )
        session_holder.append(session)
        call = Call(call_id, session, rtc, secret=secret)
        call_box.append(call)
        try:
            answer = await rtc.answer(offer)
        except ValueError as exc:
            await rtc.close()
            session.close()
            return _json_error(400, f"Invalid SDP offer: {exc}", code="invalid_offer", param="sdp")
        self.calls[call_id] = call
        return web.Response(
            status=201,
            text=answer,
            content_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call_id}"},
        )

    def _ending_call(self, call: Call, *, code: int = 1000) -> None:
        # Kept until done, so shutdown can wait for calls that are halfway through closing.
        task = asyncio.get_running_loop().create_task(self._end_call(call, code=code))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end_call(self, call: Call, *, code: int = 1000) -> None:
        if self.calls.pop(call.id, None) is None:
            return
        call.session.close()
        for outbox in list(call.sidebands):
            await outbox.close(code)
        await call.rtc.close()

    async def drop_channel(self, call_id: str) -> None:
        """Test-only: close a call's data channel mid-session, as a dropped connection does."""
        await self.calls[call_id].rtc.close_channel()

    async def go_silent(self, call_id: str) -> None:
        """Test-only: a call's network drops: the server stops answering, says nothing."""
        self.calls[call_id].rtc.go_silent()

    async def _hangup(self, request: web.Request) -> web.Response:
        refused = self._check_standard(self._presented_key(request))
        if refused is not None:
            return refused
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return _json_error(
                404, f"Call '{request.match_info['call_id']}' not found.", code="call_id_not_found"
            )
        await self._end_call(call)
        return web.Response(status=200)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        key = self._presented_key(request)
        call_id = request.query.get("call_id")
        config: dict[str, Any] = {"type": "realtime"}
        minted: str | None = None
        if key and key.startswith("ek_"):
            secret = self._secret(key)
            if isinstance(secret, web.Response):
                return secret
            config, minted = secret.session, secret.value
        else:
            refused = self._check_standard(key)
            if refused is not None:
                return refused
        call = None
        if call_id is not None:
            call = self.calls.get(call_id)
            if call is None:
                return _json_error(
                    404, f"Call '{call_id}' not found.", code="call_id_not_found", param="call_id"
                )
            if minted is not None and (
                call.secret is None or not hmac.compare_digest(call.secret, minted)
            ):
                return _json_error(
                    403,
                    "This client secret did not make this call: a client secret opens only "
                    "the call it made. Attach with the standard key.",
                    code="call_forbidden",
                    param="call_id",
                )
        elif request.query.get("intent") == "transcription":
            config = {"type": "transcription"}  # live captions: no model of its own
        elif "model" in request.query and "model" not in config:
            config = {**config, "model": request.query["model"]}
            problem = session_problem(config)
            if problem is not None:
                return _json_error(400, problem[2], code=problem[0], param="model")
        protocols = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        ]
        ws = web.WebSocketResponse(
            protocols=["realtime"] if "realtime" in protocols else (),
            heartbeat=None,
            max_msg_size=16 * 1024 * 1024,
        )
        await ws.prepare(request)
        self.websockets.add(ws)
        try:
            if call is not None:
                await self._sideband(ws, call)
            else:
                await self._ws_session(ws, config)
        finally:
            self.websockets.discard(ws)
        return ws

    async def _sideband(self, ws: web.WebSocketResponse, call: Call) -> None:
        outbox = Outbox(ws)
        call.sidebands.add(outbox)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    call.session.receive(msg.data)
        finally:
            call.sidebands.discard(outbox)
            await outbox.close()

    async def _ws_session(self, ws: web.WebSocketResponse, config: dict[str, Any]) -> None:
        outbox = Outbox(ws)
        closing: list[int] = []

        def on_close(code: int, reason: str) -> None:
            closing.append(code)
            asyncio.get_running_loop().create_task(outbox.close(code))

        session = Session(
            config,
            emit=lambda event: outbox.put(json.dumps(event)),
            transport="websocket",
            on_close=on_close,
            max_duration_s=self.max_session_s,
            text_delay_s=self.text_delay_s,
        )
        self.sessions_started += 1
        session.start()
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    session.receive(msg.data)
        finally:
            session.close()
            if not closing:
                await outbox.close()

    async def _shutdown(self, app: web.Application) -> None:
        for call in list(self.calls.values()):
            await self._end_call(call, code=1001)
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
        for ws in list(self.websockets):
            await ws.close(code=1001)
