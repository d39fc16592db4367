"""The browser transport: the widget's page carries the call (WebRTC), the comm carries the rest.

The page holds the microphone, the peer connection and the data channel; this side speaks the
custom messages of docs/protocol.md with it: events in batches, the call's status, requests for
a client secret or a relayed offer, and the composer's checks. It also keeps the kernel's view
of the page honest:

- A message for a page that has not said ``hello`` yet waits for it. A dashboard or app
  (marimo, Voila) connects in the cell that displays the widget, before the page listens; the
  connect must still happen, not vanish.
- A page that loads while a call is live is asked (``ping``) whether it holds the call; no
  answer twice means the page that held it is gone (reloaded, closed), and the call is ended.
- A call that never hears from any page within ``FRONT_END_TIMEOUT_S`` fails, saying the widget
  must be displayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events
from ..config import ConfigError
from ..messages import MessageError, parse_browser_message
from ..protocol import schema
from ..providers import openai as provider
from ..redact import contains_secret, redact, redact_exception, redact_value, register
from ..session.core import DEFAULT_MAX_MESSAGE_BYTES, Session, background_loop
from ..session.live import KERNEL_ONLY, page_client_events
from ..session.log import EventRecord
from .websocket import KernelSocket

if TYPE_CHECKING:
    from ..widget import RealtimeWidget

FRONT_END_TIMEOUT_S = 15.0
# A page loaded while a call is live: the page holding it must answer a ping within this, twice.
PROBE_TIMEOUT_S = 4.0
PROBE_STRIKES = 2
PAGE_GONE = (
    "The page that held the call went away (reloaded or closed), so the call ended. "
    "Connect again, or run w.reconnect() to continue the conversation."
)
NOT_DISPLAYED = (
    "No answer from the widget's front end: display the widget (make it the last line of a "
    "cell) in JupyterLab, Notebook 7, VS Code, marimo or Voila, then connect again."
)


LIVE_HAS_NO_KEYS = (
    "GPT-Live has no ephemeral keys: the kernel posts the page's offer itself. Reload the "
    "page (its front end predates GPT-Live), then connect again."
)


def live_creation(config: dict[str, Any]) -> dict[str, Any]:
    """A GPT-Live session as the kernel creates it for the page: the data channel may send
    every client event but the kernel's own (``session.update``, fixtures), so the page cannot
    change what the kernel decided; a config that sets its own allow-list keeps it."""
    if "client" in config:
        return config
    allowed = {"allowed_client_events": page_client_events()}
    return {**config, "client": {"data_channel": allowed}}


class BrowserTransport:
    """The page side of one widget's calls (see the module docstring)."""

    def __init__(
        self,
        widget: RealtimeWidget,
        session: Session,
        post: Callable[..., None],
    ) -> None:
        self._widget = widget
        self._session = session
        self._post = post  # the comm's custom message (ipywidgets' Widget.send)
        self.max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES
        self._lock = threading.Lock()
        self._page_ready = False  # a page said hello: messages reach someone
        self._held: list[dict[str, Any]] = []
        self._claimed = False  # a page reported on the current call: it holds it
        self._front_end_timer: threading.Timer | None = None
        self._probe_timer: threading.Timer | None = None
        self._sideband = Sideband(session)
        # Recordings sent by play(), by id, until the page says they were spoken.
        self._plays: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}
        self._play_ids = itertools.count(1)

    # --- Transport ----------------------------------------------------------------------------

    def open_call(self) -> None:
        with self._lock:
            self._claimed = False
        self.post({"kind": "connect"})
        self._watch_front_end()

    def close_call(self) -> None:
        self.post({"kind": "disconnect"})

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        # An event that carries a credential the kernel holds (an MCP server's authorization)
        # goes over the kernel's own line to the call, never through the page.
        kernel_only = KERNEL_ONLY if self._session.is_live else frozenset()
        private = [e for e in batch if e.get("type") in kernel_only or contains_secret(e)]
        if private:
            self._sideband.send(self._session.call_id, private)
            batch = [e for e in batch if not any(e is p for p in private)]
        if batch:
            self.post({"kind": "send", "events": batch})

    def waiting_problem(self) -> str | None:
        if "marimo" in sys.modules and _in_marimo():
            return (
                "marimo hands widget messages to the kernel only between cells, so an event "
                "awaited in a cell can never arrive while it waits. Use w.on(...) callbacks "
                "(or a button's on_click) and read the results in another cell."
            )
        return None

    def wait_hint(self) -> str:
        if not self._page_ready:
            return (
                "The widget is not on a page yet: display it (the last line of a cell) and "
                "let that cell run first."
            )
        return "The page is setting the call up (the microphone, the key, the offer, ICE)."

    # --- to the page --------------------------------------------------------------------------

    def post(self, message: dict[str, Any], *, secret: str | None = None) -> None:
        """A custom message to the page, redacted; held until a page has said hello.

        ``secret`` is the one secret a message may carry on purpose (the client secret of a
        key reply), set as ``value.secret`` after redaction.
        """
        message = redact_value(message)
        if secret is not None:
            message["value"] = {**message["value"], "secret": secret}
        with self._lock:
            if not self._page_ready:
                self._held.append(message)
                return
        self._post(message)

    async def play(self, pcm: bytes) -> None:
        """Speak a recording (24 kHz mono PCM16) into the page's call; returns once it has been
        sent. It travels as the message's binary buffer, not as base64 in JSON."""
        if self._session.status != "connected" or not self._page_ready:
            raise RuntimeError("Not connected: w.play() speaks into a live call; connect first.")
        loop = asyncio.get_running_loop()
        play_id = next(self._play_ids)
        done: asyncio.Future[None] = loop.create_future()
        self._plays[play_id] = (loop, done)
        try:
            self._post({"kind": "play", "id": play_id}, [pcm])
            # The recording's length, and room for the page to take it and answer.
            await asyncio.wait_for(done, len(pcm) / (2 * 24_000) + 15)
        except asyncio.TimeoutError:
            raise TimeoutError("The page did not say the recording was played.") from None
        finally:
            self._plays.pop(play_id, None)

    def _played(self, message: dict[str, Any]) -> None:
        entry = self._plays.get(message["id"])
        if entry is None:
            return
        loop, done = entry

        def settle() -> None:
            if done.done():
                return
            if message["ok"]:
                done.set_result(None)
            else:
                done.set_exception(RuntimeError(message.get("error") or "It could not be played."))

        loop.call_soon_threadsafe(settle)

    # --- from the page ------------------------------------------------------------------------

    def receive(self, content: Any, buffers: list[Any] | tuple[Any, ...] = ()) -> None:
        """One custom message from the page (the comm handler), with its binary buffers."""
        try:
            message = parse_browser_message(content)
        except MessageError as exc:
            self._session._notice(f"Ignored a browser message: {exc}")
            return
        kind = message["kind"]
        if kind in ("events", "status"):
            self._cancel_probe()  # the page holding the call is alive
        if kind == "hello":
            self._hello()
        elif kind == "events":
            now = time.time() * 1000
            self._session.receive(
                [EventRecord(e["dir"], e["event"], float(e["t"]), now) for e in message["events"]]
            )
        elif kind == "status":
            self._status(message)
        elif kind == "played":
            self._played(message)
        elif kind == "audio":
            if self._session.record and buffers:
                self._session.record_audio(message["t0"], message["frame"], bytes(buffers[0]))
        elif kind == "unrecorded":
            self._session._notice(message["error"])
        elif message["op"] == "clip":
            self._clip(message)
        elif message["op"] in ("check", "send"):
            self.post(self._compose(message))
        elif message["op"] == "configure":
            self.post(self._configure(message))
        elif message["op"] == "approve":
            self.post(self._approve(message))
        elif message["op"] == "schema":
            # The page checks as the kernel does, with the schema of the kernel's own `openai`.
            self.post({"kind": "reply", "id": message["id"], "ok": True, "value": schema()})
        else:
            self._session.spawn(self._answer(message))

    def _hello(self) -> None:
        with self._lock:
            first, self._page_ready = not self._page_ready, True
            held, self._held = self._held, []
            claimed = self._claimed
        for message in held:
            self._post(message)
        if not first and self._session.live and claimed:
            self._probe(PROBE_STRIKES)

    def _status(self, message: dict[str, Any]) -> None:
        self._cancel_front_end_timer()
        with self._lock:
            self._claimed = True
        widget = self._widget
        if "muted" in message:
            widget.set_trait("muted", bool(message["muted"]))
        if "microphone" in message:
            widget.set_trait("microphone_error", message["microphone"] or "")
        if message.get("max_message_size"):
            self.max_message_bytes = int(message["max_message_size"])
        error = message.get("error") or ""
        if message["status"] == "error" and message.get("step"):
            error = f"[{message['step']}] {error}"
        self._session.call_status(message["status"], error, call_id=message.get("call_id"))
        if message["status"] in ("closed", "error"):
            self._sideband.close()

    def _clip(self, request: dict[str, Any]) -> None:
        """A view plays a turn: its recorded audio, as a WAV in the reply's binary buffer."""
        clip = self._session.clip(request["item_id"])
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        if clip is None or clip.frames == 0:
            error = "No audio was recorded for this turn (typed, or not heard yet)."
            self.post(reply | {"ok": False, "error": error})
            return
        value = {"seconds": round(clip.duration, 3), "channel": clip.channel}
        self._post(reply | {"ok": True, "value": value}, [clip.wav])

    def _compose(self, request: dict[str, Any]) -> dict[str, Any]:
        """The composer's event, checked (as it is typed) or sent, by the rules of send()."""
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        try:
            if request["op"] == "check":
                events.prepare(request["event"])
                return reply | {"ok": True, "value": {}}
            sent = self._session.send(request["event"])
            return reply | {"ok": True, "value": {"event_id": sent[0]["event_id"]}}
        except (events.InvalidEventError, RuntimeError) as exc:
            return reply | {"ok": False, "error": str(exc)}

    def _configure(self, request: dict[str, Any]) -> dict[str, Any]:
        """A panel sets the next call's config (update_session outside a call)."""
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        fields = {k: v for k, v in request["event"].items() if k != "type"}
        try:
            self._session.update_session(**fields)
        except (events.InvalidEventError, RuntimeError) as exc:
            return reply | {"ok": False, "error": str(exc)}
        return reply | {"ok": True, "value": {}}

    def _approve(self, request: dict[str, Any]) -> dict[str, Any]:
        """The user answered an MCP server's approval request in the page."""
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        try:
            self._session.approve(request["approval_request_id"], request["approve"])
        except (events.InvalidEventError, RuntimeError) as exc:
            return reply | {"ok": False, "error": str(exc)}
        return reply | {"ok": True, "value": {}}

    async def _answer(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "reply", "id": request["id"]}
        session = self._session
        secret: str | None = None
        try:
            if request["op"] == "key" and session.is_live:
                raise ConfigError(LIVE_HAS_NO_KEYS)
            if request["op"] != "key" and session.is_live:
                creation = live_creation(session.config)
                source, session._live.fork_from = session._live.fork_from, None
                if source:
                    answer, call_id = await provider.fork_live_session(
                        session.endpoint,
                        source,
                        request["sdp"],
                        session._live.fork_config(creation),
                    )
                else:
                    answer, call_id = await provider.create_live_session(
                        session.endpoint, request["sdp"], creation
                    )
                session.set_trait("call_id", call_id)
                reply |= {"ok": True, "value": {"sdp": answer, "call_id": call_id}}
            elif request["op"] == "key":
                minted = await provider.mint_client_secret(session.endpoint, dict(session.config))
                register(minted.value)  # it goes to the page, and nowhere else
                secret = minted.value
                value = {"calls_url": session.endpoint.calls_url, "expires_at": minted.expires_at}
                reply |= {"ok": True, "value": value}
            else:
                answer, call_id = await provider.relay_offer(
                    session.endpoint, request["sdp"], dict(session.config)
                )
                session.set_trait("call_id", call_id)
                reply |= {"ok": True, "value": {"sdp": answer, "call_id": call_id}}
        except (provider.RealtimeAuthError, ConfigError) as exc:
            reply |= {"ok": False, "error": redact(str(exc))}
        except Exception as exc:  # never leave the page waiting on a reply
            text = redact_exception(exc)
            reply |= {"ok": False, "error": f"The kernel failed to answer: {text}"}
            session._notice(f"Answering the browser's {request['op']} request failed: {text}")
        self.post(reply, secret=secret)

    # --- is the page there? -------------------------------------------------------------------

    def _probe(self, strikes: int) -> None:
        """A page loaded while a call is live: is the page that holds the call still there?

        After a reload the old page (and its call) is gone, and nothing tells the kernel. The
        page holding the call answers a ping with its status; no answer twice in a row (twice,
        so that a kernel busy with a cell is not taken for a lost page) ends the call.
        """
        self._cancel_probe()
        self.post({"kind": "ping"})
        timer = threading.Timer(PROBE_TIMEOUT_S, self._probe_expired, args=(strikes,))
        timer.daemon = True
        self._probe_timer = timer
        timer.start()

    def _probe_expired(self, strikes: int) -> None:
        self._probe_timer = None
        if not self._session.live:
            return
        if strikes > 1:
            self._probe(strikes - 1)
            return
        # Closed without the user asking: the session hangs the call up on the provider too.
        self._session.call_status("closed", PAGE_GONE)

    def _cancel_probe(self) -> None:
        timer, self._probe_timer = self._probe_timer, None
        if timer is not None:
            timer.cancel()

    def _watch_front_end(self) -> None:
        # A cell can't wait for the browser, but a missing front end must not stay silent.
        self._cancel_front_end_timer()
        timer = threading.Timer(FRONT_END_TIMEOUT_S, self._front_end_missing)
        timer.daemon = True
        self._front_end_timer = timer
        timer.start()

    def _front_end_missing(self) -> None:
        if self._session.status == "connecting":
            self._session.call_status("error", NOT_DISPLAYED)

    def _cancel_front_end_timer(self) -> None:
        timer, self._front_end_timer = self._front_end_timer, None
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        self._cancel_front_end_timer()
        self._cancel_probe()
        self._sideband.close()


class Sideband:
    """The kernel's WebSocket to the page's call (``?call_id=``, the standard key), opened
    when an event must not pass through the page; what it sends is logged as ``out`` events,
    as the page's echo would have done."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._socket: KernelSocket | None = None
        self._reader: asyncio.Task[None] | None = None

    def send(self, call_id: str, batch: list[dict[str, Any]]) -> None:
        if not call_id:
            self._session._notice(
                "Not sent: an event carrying a credential waits for the call's id, which the "
                "provider has not given yet. Send it again once connected."
            )
            return
        asyncio.run_coroutine_threadsafe(self._send(call_id, batch), background_loop())

    async def _send(self, call_id: str, batch: list[dict[str, Any]]) -> None:
        try:
            if self._socket is None or self._socket.call_id != call_id:
                await self._close()
                socket = KernelSocket(
                    self._session.endpoint, call_id=call_id, live=self._session.is_live
                )
                await socket.open()
                self._socket = socket
                self._reader = asyncio.get_running_loop().create_task(self._drain(socket))
            for event in batch:
                await self._socket.send(event)
        except Exception as exc:
            self._session._notice(
                f"Sending {', '.join(str(e.get('type')) for e in batch)} over the kernel's "
                f"line to the call failed: {redact_exception(exc)}"
            )
            return
        now = time.time() * 1000
        self._session.receive([EventRecord("out", e, now, now) for e in batch])

    @staticmethod
    async def _drain(socket: KernelSocket) -> None:
        # The page already brings every server event to the kernel: these are read only so
        # the socket never backs up.
        with contextlib.suppress(Exception):
            async for _ in socket.events():
                pass

    def close(self) -> None:
        if self._socket is not None:
            asyncio.run_coroutine_threadsafe(self._close(), background_loop())

    async def _close(self) -> None:
        socket, self._socket = self._socket, None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close()


def _in_marimo() -> bool:
    try:
        import marimo

        return bool(marimo.running_in_notebook())
    except Exception:
        return False
