"""WebRTC for the local server (aiortc): one peer connection per call, its voice, its ears.

- :class:`RtcCall` answers a browser's (or any peer's) offer: it accepts the client's data channel
  (OpenAI's label is ``oai-events``; any label works), sends the model's voice on an audio track
  and hands the incoming microphone audio to the engine.
- :class:`VoiceTrack` is that outgoing track. It reports when a response's first frame is really
  sent and when its last one is, which is what ``output_audio_buffer.started``/``stopped`` mean.
- :func:`use_loopback_candidates` makes aioice offer 127.0.0.1, so calls work on a host whose
  only interface is ``lo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from .audio import SAMPLE_RATE, resample, to_mono

TRACK_RATE = 48000
FRAME_SAMPLES = TRACK_RATE * 20 // 1000  # 20 ms, Opus's usual frame

_loopback_patched = False


def use_loopback_candidates() -> None:
    """Offer 127.0.0.1 as an ICE host candidate (idempotent, process-wide).

    aioice leaves loopback out of its host candidates; on a host whose only interface is ``lo``
    ICE then never leaves "checking". The local server calls this when bound to loopback, and so
    must any Python client on the same machine.
    """
    global _loopback_patched
    if _loopback_patched:
        return
    import aioice.ice

    original = aioice.ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses: list[str] = original(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses = ["127.0.0.1", *addresses]
        return addresses

    aioice.ice.get_host_addresses = with_loopback
    _loopback_patched = True


class VoiceTrack(MediaStreamTrack):
    """The server's voice: queued speech in 20 ms frames at 48 kHz, silence in between."""

    kind = "audio"

    def __init__(
        self,
        on_started: Callable[[str], None] | None = None,
        on_stopped: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._queue: deque[tuple[str, np.ndarray]] = deque()
        self._played: dict[str, int] = {}  # samples sent, per response
        self._playing: str | None = None
        self._start: float | None = None
        self._pts = 0

    @property
    def playing(self) -> str | None:
        """The response whose audio is being sent, if any."""
        return self._playing

    def play(self, response_id: str, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        """Queue a response's speech; it plays after whatever is queued already."""
        samples = resample(pcm.astype(np.int16), sample_rate, TRACK_RATE)
        self._queue.append((response_id, samples))
        self._played.setdefault(response_id, 0)
        while len(self._played) > 64:
            self._played.pop(next(iter(self._played)))

    def clear(self) -> str | None:
        """Drop all queued speech; returns the response that was playing (no on_stopped)."""
        was = self._playing
        self._queue.clear()
        self._playing = None
        return was

    def played_ms(self, response_id: str) -> int:
        return self._played.get(response_id, 0) * 1000 // TRACK_RATE

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        # Pace frames in real time (as aiortc's AudioStreamTrack does): audio "sent" must mean
        # audio the listener is hearing now, not audio buffered ahead.
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / TRACK_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        finished: list[str] = []
        while filled < FRAME_SAMPLES and self._queue:
            response_id, samples = self._queue[0]
            if self._playing != response_id:
                self._playing = response_id
                if self._on_started is not None:
                    self._on_started(response_id)
            take = min(FRAME_SAMPLES - filled, samples.size)
            frame[filled : filled + take] = samples[:take]
            filled += take
            self._played[response_id] = self._played.get(response_id, 0) + take
            if take == samples.size:
                self._queue.popleft()
                finished.append(response_id)
            else:
                self._queue[0] = (response_id, samples[take:])
        for response_id in finished:
            if not any(rid == response_id for rid, _ in self._queue):
                if self._playing == response_id:
                    self._playing = None
                if self._on_stopped is not None:
                    self._on_stopped(response_id)
        out = AudioFrame.from_ndarray(frame.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = TRACK_RATE
        out.pts = self._pts
        out.time_base = fractions.Fraction(1, TRACK_RATE)
        self._pts += FRAME_SAMPLES
        return out


def frame_to_pcm(frame: AudioFrame) -> np.ndarray:
    """A decoded audio frame → mono int16 at 24 kHz."""
    channels = len(frame.layout.channels)
    mono = to_mono(frame.to_ndarray(), channels=channels)
    return resample(mono, frame.sample_rate, SAMPLE_RATE)


async def read_audio(track: MediaStreamTrack, sink: Callable[[np.ndarray], None]) -> None:
    """Feed a remote audio track to ``sink`` (mono int16, 24 kHz) until the track ends."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, AudioFrame):
            sink(frame_to_pcm(frame))


class RtcCall:
    """One call's server-side peer connection."""

    def __init__(
        self,
        *,
        on_message: Callable[[str], None],
        on_open: Callable[[], None],
        on_audio: Callable[[np.ndarray], None],
        on_closed: Callable[[], None],
        on_playback_started: Callable[[str], None] | None = None,
        on_playback_stopped: Callable[[str], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_open = on_open
        self._on_audio = on_audio
        self._on_closed = on_closed
        self.player = VoiceTrack(on_playback_started, on_playback_stopped)
        self.pc = RTCPeerConnection()
        self._channel: Any = None
        self._outbox: list[str] = []
        self._closed = False
        self._opened = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_datachannel(self, channel: Any) -> None:
        if self._channel is not None:
            return  # one events channel per call; others are ignored
        self._channel = channel

        @channel.on("message")  # type: ignore[untyped-decorator]
        def on_message(message: str | bytes) -> None:
            if not self._closed:
                self._on_message(message.decode() if isinstance(message, bytes) else message)

        channel.on("open", self._channel_open)
        channel.on("close", self._ended)
        if channel.readyState == "open":
            self._channel_open()

    def _channel_open(self) -> None:
        if self._opened or self._closed:
            return
        self._opened = True
        self._on_open()
        outbox, self._outbox = self._outbox, []
        for text in outbox:
            self._channel.send(text)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        task = asyncio.get_running_loop().create_task(read_audio(track, self._feed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _feed(self, pcm: np.ndarray) -> None:
        if not self._closed:
            self._on_audio(pcm)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._ended()

    def _ended(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_closed()

    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer and return the answer SDP (after ICE gathering, as aiortc does)."""
        if not offer_sdp.lstrip().startswith("v=0") or "m=audio" not in offer_sdp:
            raise ValueError("expected an SDP offer (starting with v=0) with an audio m-line")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises several kinds for a bad SDP
            raise ValueError(f"the offer could not be applied: {exc}") from None
        self.pc.addTrack(self.player)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def send(self, text: str) -> None:
        """Send on the data channel; queued until it opens, dropped once closed."""
        if self._closed:
            return
        if self._channel is not None and self._channel.readyState == "open":
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._channel.send(text)
        else:
            self._outbox.append(text)

    async def close(self) -> None:
        """End the call (idempotent)."""
        self._closed = True
        self.player.stop()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pc.close()
