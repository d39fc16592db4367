"""The local server's GPT-Live endpoints (``/v1/live``), beside its Realtime ones.

- ``POST /v1/live/sessions``: JSON ``{session, transport: {type: "webrtc", sdp}}`` with the
  standard key (GPT-Live has no client secrets), ``201 {session: {id}, transport: {sdp}}``.
- WebSocket ``/v1/live/sessions``: a primary WebSocket, ``session.start`` first, audio as
  ``session.input_audio.append`` / ``session.output_audio.delta``.
- WebSocket ``/v1/live/sessions/{id}/attach``: the sideband of a WebRTC session (every event,
  no allow-list; the trusted side).
- ``POST /v1/live/sessions/{id}/hangup``: end it from the server side.

Live models are refused on the Realtime endpoints and Realtime models here, as OpenAI does.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ..protocol import SchemaError, validate, validate_client_event, validate_live_session
from .engine.live import LiveSession, history_input, live_model_problem
from .engine.state import new_id
from .rtc import RtcCall

if TYPE_CHECKING:
    from .app import Call, RealtimeServer


def _json_error(status: int, message: str, **fields: Any) -> web.Response:
    from .app import _json_error as error

    response: web.Response = error(status, message, **fields)
    return response


class LiveRoutes:
    """The GPT-Live endpoints of one :class:`~realtime_widget.local.app.RealtimeServer`
    (its keys, calls and limits)."""

    def __init__(self, server: RealtimeServer) -> None:
        self.server = server
        # Sessions made with store: true, once closed: their config and what was said, which a
        # fork starts from (OpenAI keeps them 30 days; this server, while it runs).
        self.stored: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        router = server.app.router
        router.add_post("/v1/live/sessions", self._live_create)
        router.add_get("/v1/live/sessions", self._live_socket)
        router.add_get("/v1/live/sessions/{session_id}/attach", self._live_attach)
        router.add_post("/v1/live/sessions/{session_id}/hangup", self._live_hangup)
        router.add_post("/v1/live/sessions/{session_id}/fork", self._live_fork)

    def _live_config(self, raw: Any, *, websocket: bool = False) -> dict[str, Any] | web.Response:
        if not isinstance(raw, dict):
            return _json_error(
                400,
                "Missing required parameter: 'session'.",
                code="missing_required_parameter",
                param="session",
            )
        try:
            if websocket:  # session.start's config (it may set audio.format)
                config = validate_client_event({"type": "session.start", "session": raw}, live=True)
                config = config["session"]
            else:
                config = validate_live_session(raw)
        except SchemaError as exc:
            return _json_error(400, exc.message, code=exc.code, param=exc.param)
        refused = live_model_problem(config.get("model"))
        if refused is not None:
            return _json_error(400, refused[1], code=refused[0], param="session.model")
        return config

    async def _live_create(self, request: web.Request) -> web.Response:
        refused = self.server._check_standard(self.server._presented_key(request))
        if refused is not None:
            return refused
        if request.content_type != "application/json":
            return _json_error(
                400,
                'Post a JSON body: {"session": {...}, "transport": {"type": "webrtc", '
                '"sdp": "..."}}.',
                code="unsupported_content_type",
            )
        body = await self.server._read_json(request)
        offer = _offer(body)
        if isinstance(offer, web.Response):
            return offer
        config = self._live_config(body.get("session"))
        if isinstance(config, web.Response):
            return config
        return await self._live_answer(offer, config)

    async def _live_answer(self, offer: str, config: dict[str, Any]) -> web.Response:
        from .app import Call

        box: list[Call] = []

        def emit(event: dict[str, Any], to_page: bool) -> None:
            box[0].emit(event, to_page=to_page)

        def on_open() -> None:
            self.server.sessions_started += 1
            box[0].session.start()

        def on_closed() -> None:
            if box and box[0].id in self.server.calls:
                # The page went without session.close: the session ends, connection_lost.
                session = box[0].session
                if isinstance(session, LiveSession):
                    session._finish("connection_lost")
                self.server._ending_call(box[0])

        def on_message(text: str) -> None:
            session = box[0].session
            if isinstance(session, LiveSession):
                session.receive(text, from_page=True)

        rtc = RtcCall(
            on_message=on_message,
            on_open=on_open,
            on_audio=lambda pcm: box[0].session.feed_audio(pcm),
            on_closed=on_closed,
        )

        def on_close(code: int, reason: str) -> None:
            session = box[0].session
            if config.get("store") and isinstance(session, LiveSession):
                self.stored[box[0].id] = (config, list(session.history))
            self._live_closing(box[0])

        session = LiveSession(
            config,
            emit=emit,
            transport="webrtc",
            player=rtc.player,
            on_close=on_close,
            max_duration_s=self.server.max_session_s,
            text_delay_s=self.server.text_delay_s,
        )
        call = Call(str(session.session["id"]), session, rtc)
        box.append(call)
        try:
            answer = await rtc.answer(offer)
        except ValueError as exc:
            await rtc.close()
            session.close()
            return _json_error(
                400, f"Invalid SDP offer: {exc}", code="invalid_offer", param="transport.sdp"
            )
        self.server.calls[call.id] = call
        return web.json_response(
            {"session": {"id": call.id}, "transport": {"type": "webrtc", "sdp": answer}},
            status=201,
        )

    async def _live_fork(self, request: web.Request) -> web.Response:
        """A new WebRTC session continuing a closed, stored one: its model, voice, instructions
        and history, with the overrides a fork allows (store, client, Responses delegation)."""
        refused = self.server._check_standard(self.server._presented_key(request))
        if refused is not None:
            return refused
        source_id = request.match_info["session_id"]
        if source_id in self.server.calls:
            return _json_error(
                400,
                f"Session '{source_id}' is still active: fork it after session.closed.",
                code="session_active",
            )
        stored = self.stored.get(source_id)
        if stored is None:
            return _json_error(
                404,
                f"Session '{source_id}' was not stored: create it with store: true to fork it.",
                code="session_not_stored",
            )
        body = await self.server._read_json(request)
        offer = _offer(body)
        if isinstance(offer, web.Response):
            return offer
        overrides = body.get("session") or {}
        try:
            validate("live_fork_session", overrides, "session")
        except SchemaError as exc:
            return _json_error(400, exc.message, code=exc.code, param=exc.param)
        config, history = stored
        forked = {**config, **{k: v for k, v in overrides.items() if k != "delegation"}}
        if "delegation" in overrides:
            now = config.get("delegation") or {}
            responses = {
                **(now.get("responses") or {}),
                **(overrides["delegation"].get("responses") or {}),
            }
            forked["delegation"] = {**now, **overrides["delegation"], "responses": responses}
        forked["input"] = history_input(history)
        return await self._live_answer(offer, forked)

    def _live_closing(self, call: Call) -> None:
        # session.closed has gone out on the channel: let it arrive, then close the peer.
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, self.server._ending_call, call)

    async def _live_hangup(self, request: web.Request) -> web.Response:
        refused = self.server._check_standard(self.server._presented_key(request))
        if refused is not None:
            return refused
        call = self.server.calls.get(request.match_info["session_id"])
        if call is None or not isinstance(call.session, LiveSession):
            return _json_error(
                404,
                f"Session '{request.match_info['session_id']}' not found.",
                code="session_not_found",
            )
        call.session._finish("close_requested")
        await asyncio.sleep(0.2)  # session.closed reaches the page and sidebands first
        await self.server._end_call(call)
        return web.Response(status=200)

    async def _live_attach(self, request: web.Request) -> web.StreamResponse:
        from .app import Outbox

        refused = self.server._check_standard(self.server._presented_key(request))
        if refused is not None:
            return refused
        call = self.server.calls.get(request.match_info["session_id"])
        if call is None or not isinstance(call.session, LiveSession):
            return _json_error(
                404,
                f"Session '{request.match_info['session_id']}' not found.",
                code="session_not_found",
                param="session_id",
            )
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        self.server.websockets.add(ws)
        outbox = Outbox(ws)
        call.sidebands.add(outbox)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    call.session.receive(msg.data)
        finally:
            call.sidebands.discard(outbox)
            self.server.websockets.discard(ws)
            await outbox.close()
        return ws

    async def _live_socket(self, request: web.Request) -> web.StreamResponse:
        """A primary WebSocket: ``session.start`` first, then the session."""
        from .app import Outbox

        refused = self.server._check_standard(self.server._presented_key(request))
        if refused is not None:
            return refused
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        self.server.websockets.add(ws)
        outbox = Outbox(ws)
        session: LiveSession | None = None
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if session is not None:
                    session.receive(msg.data)
                    continue
                session = self._live_start(msg.data, outbox)
                if session is None:
                    break
        finally:
            if session is not None:
                session.close()
            self.server.websockets.discard(ws)
            await outbox.close()
        return ws

    def _live_start(self, text: str | bytes, outbox: Any) -> LiveSession | None:
        def refuse(code: str, message: str, param: str | None = None) -> None:
            error: dict[str, Any] = {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
            }
            if param:
                error["param"] = param
            outbox.put(json.dumps({"type": "error", "event_id": new_id("event_"), "error": error}))

        try:
            first = json.loads(text)
        except ValueError:
            refuse("invalid_json", "We could not parse the JSON body of your request.")
            return None
        if not isinstance(first, dict) or first.get("type") != "session.start":
            refuse("session_not_started", "Send session.start first on a primary WebSocket.")
            return None
        config = self._live_config(first.get("session"), websocket=True)
        if isinstance(config, web.Response):
            error = json.loads(str(config.text))["error"]
            refuse(error.get("code") or "invalid_request", error["message"], error.get("param"))
            return None
        session = LiveSession(
            config,
            emit=lambda event, to_page: outbox.put(json.dumps(event)),
            transport="websocket",
            on_close=lambda code, reason: _later(outbox.close(code)),
            max_duration_s=self.server.max_session_s,
            text_delay_s=self.server.text_delay_s,
        )
        self.server.sessions_started += 1
        session.start()
        return session


def _offer(body: Any) -> str | web.Response:
    """The SDP offer of a create or fork body (``transport.sdp``), or the API's error."""
    transport = body.get("transport") if isinstance(body, dict) else None
    if not isinstance(transport, dict) or not isinstance(transport.get("sdp"), str):
        return _json_error(
            400,
            "Missing required parameter: 'transport.sdp'.",
            code="missing_required_parameter",
            param="transport.sdp",
        )
    return str(transport["sdp"])


def _later(coro: Any) -> None:
    asyncio.get_running_loop().create_task(coro)
