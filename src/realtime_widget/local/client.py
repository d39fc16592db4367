"""A small Python WebRTC client for a Realtime server, following OpenAI's browser flow.

It does what the widget's front end does, without a browser: a microphone track (here a
programmable one), a data channel ``oai-events``, the SDP offer posted to ``/realtime/calls``
(with a client secret, or relayed with a standard key), and the model's audio received. Tests and
benchmarks use it against the local server; it also scripts a call from plain Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from ..providers.tls import async_http_client, tls_context
from .audio import SAMPLE_RATE
from .rtc import read_audio, tune_aiortc, use_loopback_candidates

_FRAME_SAMPLES = 960  # 20 ms at 48 kHz


class MicrophoneTrack(MediaStreamTrack):
    """A microphone that plays what it is given (PCM16, 24 kHz), and silence otherwise."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[np.ndarray] = []
        self._start: float | None = None
        self._pts = 0

    def speak(self, pcm: np.ndarray) -> None:
        """Queue audio to send (24 kHz mono int16); it plays after what is queued already."""
        upsampled = np.repeat(pcm.astype(np.int16), 2)  # 24 kHz -> 48 kHz
        self._queue.append(upsampled)

    @property
    def idle(self) -> bool:
        return not self._queue

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        # Pace frames in real time, as a sound card would.
        wait = self._start + self._pts / 48000 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = np.zeros(_FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < _FRAME_SAMPLES and self._queue:
            head = self._queue[0]
            take = min(_FRAME_SAMPLES - filled, head.size)
            samples[filled : filled + take] = head[:take]
            filled += take
            if take == head.size:
                self._queue.pop(0)
            else:
                self._queue[0] = head[take:]
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += _FRAME_SAMPLES
        return frame


class EventStream:
    """The server events received so far, and a way to wait for the next ones (shared by the
    WebRTC client here and the tests' engine harness)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def _received(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]

    async def wait_for(
        self, type_: str, *, count: int = 1, timeout: float = 10.0, **match: Any
    ) -> dict[str, Any]:
        """The ``count``-th event of this type (matching top-level fields), waiting for it."""

        async def wait() -> dict[str, Any]:
            while True:
                found = [
                    e
                    for e in self.events
                    if e["type"] == type_ and all(e.get(k) == v for k, v in match.items())
                ]
                if len(found) >= count:
                    return found[count - 1]
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)


class RealtimeCall(EventStream):
    """One WebRTC call to a Realtime server: events in and out, audio both ways.

    >>> call = RealtimeCall("http://127.0.0.1:8765/v1", api_key="sk-local")  # doctest: +SKIP
    >>> await call.connect()  # mints a client secret, then posts the offer  # doctest: +SKIP

    ``mode``: ``ephemeral`` (a client secret, then the offer), ``relay`` (the offer with the
    standard key) or ``live`` (a GPT-Live session: ``session`` is its config, with ``model``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        session: dict[str, Any] | None = None,
        mode: str = "ephemeral",
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.session_config = session or {"type": "realtime"}
        self.mode = mode
        self.on_event = on_event
        super().__init__()
        self.received_audio: list[np.ndarray] = []
        self.call_id: str | None = None
        self.secret: str | None = None  # the client secret it was made with (ephemeral)
        self.microphone = MicrophoneTrack()
        # No STUN: aiortc's default (Google's) stalls gathering up to 5 s offline, and loopback
        # or LAN host candidates are all a local server needs.
        tune_aiortc()  # as the server does: one certificate, bundled packets, decoding inline
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("oai-events")
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.timings: dict[str, float] = {}
        self.channel.on("open", self._on_open)
        self.channel.on("message", self._on_message)
        self.channel.on("close", self.closed.set)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_open(self) -> None:
        self.timings["open"] = time.perf_counter()
        self.opened.set()

    def _on_message(self, message: str | bytes) -> None:
        event = json.loads(message)
        self._received(event)
        if self.on_event is not None:
            self.on_event(event)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            task = asyncio.get_running_loop().create_task(
                read_audio(track, self.received_audio.append)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self.closed.set()

    async def connect(self, timeout: float = 10.0) -> None:
        """Offer, post it, apply the answer, and wait for the data channel to open."""
        use_loopback_candidates()
        self.pc.addTrack(self.microphone)
        self.timings["start"] = time.perf_counter()
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self.timings["offer"] = time.perf_counter()
        if self.mode == "live":
            answer = await self._create_live(timeout)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.wait_for(self.opened.wait(), timeout)
            return
        async with httpx.AsyncClient(timeout=timeout, verify=tls_context()) as http:
            if self.mode == "relay":
                res = await http.post(
                    f"{self.base_url}/realtime/calls",
                    headers={"Authorization": f"Bearer {self.api_key}"},
                    files={
                        "sdp": (None, self.pc.localDescription.sdp),
                        "session": (None, json.dumps(self.session_config)),
                    },
                )
            else:
                minted = await http.post(
                    f"{self.base_url}/realtime/client_secrets",
                    headers={"Authorization": f"Bearer {self.api_key}"},
                    json={"session": self.session_config},
                )
                minted.raise_for_status()
                self.secret = minted.json()["value"]
                res = await http.post(
                    f"{self.base_url}/realtime/calls",
                    headers={
                        "Authorization": f"Bearer {self.secret}",
                        "Content-Type": "application/sdp",
                    },
                    content=self.pc.localDescription.sdp,
                )
        if res.status_code != 201:
            raise RuntimeError(f"the server refused the offer ({res.status_code}): {res.text}")
        self.call_id = res.headers["Location"].rsplit("/", 1)[-1]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=res.text, type="answer"))
        await asyncio.wait_for(self.opened.wait(), timeout)

    async def _create_live(self, timeout: float) -> str:
        """A GPT-Live session, made as a server makes it: the official client's
        ``live.create`` with the offer (GPT-Live has no client secrets)."""
        from openai import AsyncOpenAI

        async with AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=timeout,
            max_retries=0,
            http_client=async_http_client(),
        ) as api:
            created = await api.live.create(
                session=self.session_config,  # type: ignore[arg-type]
                transport={"type": "webrtc", "sdp": self.pc.localDescription.sdp},
            )
        self.call_id = created.session.id
        return created.transport.sdp

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    def audio(self) -> np.ndarray:
        """All model audio received so far (24 kHz mono int16)."""
        if not self.received_audio:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.received_audio)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pc.close()


__all__ = ["SAMPLE_RATE", "MicrophoneTrack", "RealtimeCall"]
