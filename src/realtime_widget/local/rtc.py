"""WebRTC media for the local server: one aiortc peer connection per call.

The engine speaks through :class:`VoiceTrack` and hears through :func:`read_audio`; :class:`RtcCall`
wires both to a peer connection and its data channel, the way OpenAI's ``/v1/realtime/calls``
answers a browser's offer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fractions
import functools
import hashlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import aioice.ice
import numpy as np
import numpy.typing as npt
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, CodecContext, Packet

from .audio import SAMPLE_RATE, resample, to_mono
from .bundling import bundle_data_chunks
from .certificate import share_certificate
from .decoding import decode_on_the_loop
from .window import cap_congestion_window

__all__ = ["RtcCall", "VoiceTrack", "read_audio", "tune_aiortc", "use_loopback_candidates"]

logger = logging.getLogger(__name__)

PCM16 = npt.NDArray[np.int16]

# WebRTC's Opus runs at 48 kHz; sending at that rate spares aiortc's encoder a resampling step.
TRACK_RATE = 48000
FRAME_MS = 20
FRAME_SAMPLES = TRACK_RATE * FRAME_MS // 1000
_TIME_BASE = fractions.Fraction(1, TRACK_RATE)
# played_ms is asked about recent responses only; keep a bounded history for long sessions.
_PLAYED_HISTORY = 256
# Speech is encoded once per clip, not frame by frame on the sender: a room of calls hears the
# same few replies, so clips are kept encoded (by content), this many.
_ENCODED_CLIPS = 128
_OPUS_BITRATE = 48_000  # mono voice; a stereo-negotiated decoder plays mono packets as both


def _opus_encoder() -> Any:
    codec = CodecContext.create("libopus", "w")
    codec.bit_rate = _OPUS_BITRATE
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = TRACK_RATE
    codec.time_base = _TIME_BASE
    codec.options = {"application": "voip"}
    return codec


def _encode(samples: PCM16) -> list[bytes]:
    """48 kHz mono int16, padded to whole 20 ms frames, as the encoder's packets (its lookahead
    flushed, so there can be one more packet than frames)."""
    frames = -(-samples.size // FRAME_SAMPLES)
    padded = np.zeros(frames * FRAME_SAMPLES, dtype=np.int16)
    padded[: samples.size] = samples
    codec = _opus_encoder()
    packets: list[bytes] = []
    for i in range(frames):
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(padded[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
        frame.sample_rate = TRACK_RATE
        frame.pts = i * FRAME_SAMPLES
        frame.time_base = _TIME_BASE
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets + [bytes(p) for p in codec.encode(None)]


def encode_opus(samples: PCM16) -> list[bytes]:
    """48 kHz mono int16 as one Opus packet per 20 ms frame (a short tail padded).

    >>> len(encode_opus(np.zeros(FRAME_SAMPLES * 3, dtype=np.int16)))
    3
    """
    frames = -(-samples.size // FRAME_SAMPLES)
    packets = _encode(samples)[:frames]
    return packets + [_silence()] * (frames - len(packets))


@functools.cache
def _silence() -> bytes:
    """One 20 ms Opus packet of silence, encoded once: what an idle call sends."""
    return _encode(np.zeros(FRAME_SAMPLES * 10, dtype=np.int16))[5]  # past the start-up


class _Clips:
    """Encoded clips by content, shared by every call in the process (bounded, LRU)."""

    def __init__(self) -> None:
        self._done: OrderedDict[bytes, list[bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="opus")

    def encoded(self, samples: PCM16) -> concurrent.futures.Future[list[bytes]]:
        key = hashlib.blake2b(samples.tobytes(), digest_size=16).digest()
        with self._lock:
            packets = self._done.get(key)
            if packets is not None:
                self._done.move_to_end(key)
        if packets is not None:
            ready: concurrent.futures.Future[list[bytes]] = concurrent.futures.Future()
            ready.set_result(packets)
            return ready
        return self._pool.submit(self._encode, key, samples)

    def _encode(self, key: bytes, samples: PCM16) -> list[bytes]:
        packets = encode_opus(samples)
        with self._lock:
            self._done[key] = packets
            while len(self._done) > _ENCODED_CLIPS:
                self._done.popitem(last=False)
        return packets


_clips = _Clips()
_HOST_ADDRESSES_S = 5.0


def tune_aiortc() -> None:
    """What this package changes in aiortc for a server's many calls, in one place: received
    audio decoded on the event loop, one DTLS certificate per process, a burst of data-channel
    messages several to a packet, and a ceiling on how much of it is in flight. Each checks
    aiortc's internals and is idempotent.

    >>> tune_aiortc()
    """
    decode_on_the_loop()
    share_certificate()
    bundle_data_chunks()
    cap_congestion_window()


def use_loopback_candidates() -> None:
    """Make aioice offer 127.0.0.1 as a host candidate, so ICE works where ``lo`` is all there is.

    aioice's ``get_host_addresses`` skips 127.0.0.1; a host with no other interface then gathers
    no candidate and ICE never leaves "checking". The list is kept for a few seconds. Calling
    this again does nothing.

    >>> use_loopback_candidates()
    >>> use_loopback_candidates()  # idempotent
    """
    original = aioice.ice.get_host_addresses
    if getattr(original, "_realtime_widget_loopback", False):
        return

    # Listing the interfaces (ifaddr) costs about 0.5 ms, twice per call; a room's calls arrive
    # within seconds of each other, and an address that changes is picked up a moment later.
    known: dict[tuple[bool, bool], tuple[float, list[str]]] = {}

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        now = time.monotonic()
        listed = known.get((use_ipv4, use_ipv6))
        if listed is not None and now - listed[0] < _HOST_ADDRESSES_S:
            return list(listed[1])
        addresses: list[str] = original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses = [*addresses, "127.0.0.1"]
        known[use_ipv4, use_ipv6] = (now, addresses)
        return list(addresses)

    get_host_addresses._realtime_widget_loopback = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = get_host_addresses


class VoiceTrack(MediaStreamTrack):
    """The server's outgoing voice: 20 ms Opus packets, paced in real time.

    Sends silence when idle (one packet encoded once); a clip is encoded once when queued, off
    the event loop, and kept by content for every call in the process. aiortc sends packets a
    track yields as they are (``RTCRtpSender`` packs them): no encoder runs per frame per call.
    ``on_started(response_id)`` runs when the first frame of a response
    is handed to the sender; ``on_stopped(response_id)`` runs once its last frame has been sent and
    its 20 ms have elapsed (on the next ``recv``). :meth:`clear` calls neither.

    >>> track = VoiceTrack(on_started=print, on_stopped=print)
    >>> track.play("resp_1", np.zeros(2400, dtype=np.int16))
    >>> track.playing is None  # nothing sent yet
    True
    """

    kind = "audio"

    def __init__(
        self,
        *,
        on_started: Callable[[str], None] | None = None,
        on_stopped: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_started = on_started
        self._on_stopped = on_stopped
        # Queued responses as (response_id, 48 kHz samples, their packets being encoded);
        # _offset is how far into the first, in samples.
        self._queue: deque[tuple[str, PCM16, concurrent.futures.Future[list[bytes]]]] = deque()
        self._offset = 0
        self._playing: str | None = None
        self._finished: str | None = None  # last frame sent; on_stopped due on the next recv
        self._played: OrderedDict[str, int] = OrderedDict()
        self._start: float | None = None
        self._timestamp = 0

    @property
    def playing(self) -> str | None:
        """The response whose audio is being sent (first frame sent, on_stopped not yet run)."""
        return self._playing

    def play(
        self, response_id: str, pcm: npt.NDArray[np.int16], sample_rate: int = SAMPLE_RATE
    ) -> None:
        """Queue ``pcm`` (int16 mono at ``sample_rate``) to be spoken after anything queued before.

        >>> track = VoiceTrack()
        >>> track.play("resp_1", np.zeros(24000, dtype=np.int16))
        """
        samples = resample(np.asarray(pcm, dtype=np.int16).reshape(-1), sample_rate, TRACK_RATE)
        if samples.size == 0:
            # An empty clip still gets started/stopped, so the engine's buffer events pair up.
            samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._queue.append((response_id, samples, _clips.encoded(samples)))

    def clear(self) -> str | None:
        """Drop all queued audio; return the response that was playing, or None.

        >>> VoiceTrack().clear() is None
        True
        """
        was = self._playing
        self._queue.clear()
        self._offset = 0
        self._playing = None
        self._finished = None
        return was

    def played_ms(self, response_id: str) -> int:
        """Milliseconds of ``response_id`` handed to the sender so far (0 if unknown).

        >>> VoiceTrack().played_ms("resp_1")
        0
        """
        return self._played.get(response_id, 0) * 1000 // TRACK_RATE

    def _note_played(self, response_id: str, samples: int) -> None:
        self._played[response_id] = self._played.get(response_id, 0) + samples
        self._played.move_to_end(response_id)
        while len(self._played) > _PLAYED_HISTORY:
            self._played.popitem(last=False)

    async def _next_packet(self) -> bytes:
        """The next frame's packet from the queue, firing the start/stop callbacks."""
        if self._finished is not None:
            finished, self._finished = self._finished, None
            if self._playing == finished:
                self._playing = None
            if self._on_stopped is not None:
                self._on_stopped(finished)
        if not self._queue:
            return _silence()
        response_id, samples, encoding = self._queue[0]
        if not encoding.done():
            # Queued a moment ago: its encoding (about 1 ms a second of speech) is on its way.
            await asyncio.wrap_future(encoding)
            if not self._queue or self._queue[0][2] is not encoding:
                return _silence()  # cleared meanwhile
        index = self._offset // FRAME_SAMPLES
        chunk = min(FRAME_SAMPLES, samples.size - self._offset)
        if self._offset == 0:
            self._playing = response_id
            self._played.setdefault(response_id, 0)
            if self._on_started is not None:
                self._on_started(response_id)
        self._offset += chunk
        self._note_played(response_id, chunk)
        if self._offset >= samples.size:
            # One response per frame: a short tail is padded rather than mixed with the next.
            self._queue.popleft()
            self._offset = 0
            self._finished = response_id
        return encoding.result()[index]

    async def recv(self) -> Packet:  # type: ignore[type-arg]
        """Return the next 20 ms packet, waiting until it is due (as aiortc's AudioStreamTrack)."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
            self._timestamp = 0
        else:
            self._timestamp += FRAME_SAMPLES
            wait = self._start + self._timestamp / TRACK_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        if self.readyState != "live":
            raise MediaStreamError
        packet = Packet(await self._next_packet())
        packet.pts = self._timestamp
        packet.time_base = _TIME_BASE
        return packet


def _frame_to_pcm(frame: AudioFrame) -> PCM16:
    """One received frame as 24 kHz mono int16."""
    channels = len(frame.layout.channels)
    fmt = frame.format.name
    if fmt == "s16" and channels == 2 and frame.sample_rate == 2 * SAMPLE_RATE:
        # What aiortc's Opus decoder gives, 50 times a second per call: both channels of two
        # samples in a row averaged in one step (the mix and the 2:1 block mean, fused).
        quads = np.frombuffer(bytes(frame.planes[0]), dtype=np.int16)[: frame.samples * 2]
        return np.asarray(quads.reshape(-1, 4).sum(axis=1, dtype=np.int32) // 4, dtype=np.int16)
    data = frame.to_ndarray()
    if fmt in ("s16", "s16p"):
        mono = to_mono(data, channels)
    elif fmt in ("flt", "fltp", "dbl", "dblp"):
        mono = to_mono(data.astype(np.float64), channels)
    elif fmt in ("s32", "s32p"):
        mono = to_mono((np.asarray(data, dtype=np.int32) >> 16).astype(np.int16), channels)
    else:
        raise MediaStreamError(f"unsupported audio sample format {fmt!r}")
    return resample(mono, int(frame.sample_rate), SAMPLE_RATE)


async def read_audio(track: MediaStreamTrack, sink: Callable[[PCM16], None]) -> None:
    """Receive ``track`` until it ends, calling ``sink`` with each frame as 24 kHz mono int16.

    >>> # asyncio.create_task(read_audio(track, buffer.append))
    """
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, AudioFrame):
            sink(_frame_to_pcm(frame))


class RtcCall:
    """One WebRTC call: the server's side of a peer connection, its voice and its data channel.

    ``on_closed`` runs at most once, when the peer connection fails or closes or the data channel
    closes; not when the server itself calls :meth:`close` (it knows already).

    >>> async def handle(offer_sdp: str) -> str:
    ...     call = RtcCall(on_message=print, on_open=lambda: None,
    ...                    on_audio=lambda pcm: None, on_closed=lambda: None)
    ...     return await call.answer(offer_sdp)
    """

    def __init__(
        self,
        *,
        on_message: Callable[[str], None],
        on_open: Callable[[], None],
        on_audio: Callable[[PCM16], None],
        on_closed: Callable[[], None],
        on_playback_started: Callable[[str], None] | None = None,
        on_playback_stopped: Callable[[str], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_open = on_open
        self._on_audio = on_audio
        self._on_closed = on_closed
        self.player = VoiceTrack(on_started=on_playback_started, on_stopped=on_playback_stopped)
        tune_aiortc()  # a room of calls shares one loop
        # No STUN/TURN: aiortc would otherwise default to Google's STUN server, which is both a
        # network dependency and a gathering delay for a server meant to run offline.
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._channel: RTCDataChannel | None = None
        self._outbox: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed_notified = False
        self._closing = False
        self._answered = False
        self._opened_once = False
        self._pc.on("datachannel", self._on_datachannel)
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)

    @property
    def connection_state(self) -> str:
        """The peer connection's state: "new", "connecting", "connected", "failed" or "closed"."""
        return str(self._pc.connectionState)

    async def answer(self, offer_sdp: str) -> str:
        """Accept the client's SDP offer and return the answer (with gathered candidates).

        Raises ``ValueError`` if ``offer_sdp`` is not an SDP offer with an audio m-line.

        >>> # answer_sdp = await call.answer(offer_sdp)
        """
        if self._answered:
            raise ValueError("this call has already answered an offer")
        if not isinstance(offer_sdp, str) or not offer_sdp.lstrip().startswith("v=0"):
            raise ValueError("the body is not an SDP offer (it must start with 'v=0')")
        lines = offer_sdp.replace("\r\n", "\n").split("\n")
        if not any(line.startswith("m=audio ") for line in lines):
            raise ValueError("the SDP offer has no audio m-line ('m=audio')")
        self._answered = True
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises a mix of ValueError, KeyError, IndexError...
            raise ValueError(f"the SDP offer could not be applied: {exc}") from exc
        # addTrack reuses the offer's audio transceiver and makes it sendrecv (sendonly if the
        # client offered recvonly, i.e. has no microphone).
        self._pc.addTrack(self.player)
        answer = await self._pc.createAnswer()
        await self._pc.setLocalDescription(answer)
        return str(self._pc.localDescription.sdp)

    def send(self, text: str) -> None:
        """Send ``text`` on the data channel; queued until it opens, dropped once it has closed.

        >>> # call.send('{"type": "session.created", ...}')
        """
        channel = self._channel
        if channel is None:
            if not self._closing:
                self._outbox.append(text)
            return
        if channel.readyState == "open":
            channel.send(text)
        elif channel.readyState == "connecting":
            self._outbox.append(text)

    async def close(self) -> None:
        """Stop playback, the receiving task and the peer connection; calling again does nothing.

        >>> # await call.close()
        """
        if self._closing:
            return
        self._closing = True
        # A close we asked for is not news to the caller: on_closed is for the peer going away.
        self._closed_notified = True
        self._outbox.clear()
        self.player.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await self._pc.close()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close_channel(self) -> None:
        """Close only the data channel, as a dropped channel looks to the peer (for tests).

        The peer connection stays up until the channel's close ends the call (``on_closed``).
        """
        if self._channel is not None:
            self._channel.close()

    def go_silent(self) -> None:
        """Stop sending and receiving without a word, as a dropped network looks to the peer
        (for tests): the ICE sockets close, nothing says goodbye (no DTLS or SCTP close)."""
        sctp = self._pc.sctp
        if sctp is None:
            return
        connection = sctp.transport.transport._connection
        for protocol in list(connection._protocols):
            if protocol.transport is not None:
                protocol.transport.close()

    # --- aiortc event handlers (run on the event loop) --------------------------------------------

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self._channel is not None:
            # OpenAI's API uses one channel; a second one is ignored rather than mixed in.
            logger.debug("ignoring extra data channel %r", channel.label)
            return
        self._channel = channel

        @channel.on("message")  # type: ignore[untyped-decorator,unused-ignore]
        def on_message(message: Any) -> None:
            if self._closing:
                return
            if isinstance(message, bytes):
                message = message.decode("utf-8", errors="replace")
            self._on_message(message)

        @channel.on("close")  # type: ignore[untyped-decorator,unused-ignore]
        def on_close() -> None:
            self._notify_closed()

        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", self._opened)

    def _opened(self) -> None:
        if self._opened_once or self._closing:
            return
        self._opened_once = True
        # on_open first: the engine's session.created must precede anything queued before it.
        self._on_open()
        outbox, self._outbox = self._outbox, []
        for text in outbox:
            self.send(text)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        task = asyncio.get_running_loop().create_task(read_audio(track, self._feed))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _feed(self, pcm: PCM16) -> None:
        if not self._closing:
            self._on_audio(pcm)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("receiving audio failed", exc_info=task.exception())

    def _on_connection_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            self._notify_closed()

    def _notify_closed(self) -> None:
        if self._closed_notified:
            return
        self._closed_notified = True
        self._on_closed()
