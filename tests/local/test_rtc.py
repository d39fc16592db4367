"""The local server's WebRTC media: an aiortc client calling an RtcCall directly on loopback."""

from __future__ import annotations

import asyncio
import fractions
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc import rtcsctptransport as sctp
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcsctptransport import SCTP_MAX_PACKET_LENGTH, DataChunk, parse_packet
from av import AudioFrame, CodecContext, Packet

from realtime_widget.local.audio import SAMPLE_RATE, synthesize_speech
from realtime_widget.local.bundling import _packets
from realtime_widget.local.decoding import _DecodeOnPut, _NoThread, decode_on_the_loop
from realtime_widget.local.rtc import (
    FRAME_SAMPLES,
    TRACK_RATE,
    RtcCall,
    VoiceTrack,
    _clips,
    _frame_to_pcm,
    encode_opus,
    read_audio,
    use_loopback_candidates,
)
from realtime_widget.local.window import MAX_CWND, cap_congestion_window

TIMEOUT = 10.0
T = TypeVar("T")


class ToneTrack(MediaStreamTrack):
    """A microphone that plays a 440 Hz tone at -12 dBFS, 20 ms frames at 48 kHz."""

    kind = "audio"

    def __init__(self, freq: float = 440.0) -> None:
        super().__init__()
        self._freq = freq
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        wait = self._start + self._sent / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (self._sent + np.arange(960)) / 48000
        samples = (0.25 * 32767 * np.sin(2 * np.pi * self._freq * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, 48000)
        self._sent += 960
        return frame


class Signal:
    """Woken by every callback the test observes: waits re-check exactly when something changed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def touch(self, *_: object) -> None:
        self._event.set()

    def wrap(self, fn: Callable[[T], object]) -> Callable[[T], None]:
        def wrapped(value: T) -> None:
            fn(value)
            self._event.set()

        return wrapped

    async def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        """Wait for ``condition`` to hold; fail after ``timeout``."""

        async def wait() -> None:
            while not condition():
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(wait(), timeout)


def dominant_hz(pcm: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(pcm.size)))
    return float(np.fft.rfftfreq(pcm.size, 1 / rate)[np.argmax(spectrum)])


@dataclass
class Harness:
    """What the server side (RtcCall) and the client side (an aiortc peer) saw."""

    server_messages: list[str] = field(default_factory=list)
    client_messages: list[str] = field(default_factory=list)
    server_audio: list[npt.NDArray[np.int16]] = field(default_factory=list)
    client_audio: list[npt.NDArray[np.int16]] = field(default_factory=list)
    playback: list[tuple[str, str, float]] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    closed: list[str] = field(default_factory=list)
    call: RtcCall | None = None
    client: RTCPeerConnection | None = None
    channel: RTCDataChannel | None = None
    connect_s: float = 0.0
    signal: Signal = field(default_factory=Signal)

    async def until(self, condition: Callable[[], bool]) -> None:
        await self.signal.until(condition)

    def client_pcm(self) -> npt.NDArray[np.int16]:
        return np.concatenate(self.client_audio) if self.client_audio else np.zeros(0, np.int16)


@pytest_asyncio.fixture()
async def harness() -> AsyncIterator[Harness]:
    use_loopback_candidates()
    h = Harness()
    wrap = h.signal.wrap
    call = RtcCall(
        on_message=wrap(h.server_messages.append),
        on_open=h.opened.set,
        on_audio=wrap(h.server_audio.append),
        on_closed=lambda: wrap(h.closed.append)("closed"),
        on_playback_started=wrap(lambda rid: h.playback.append(("started", rid, time.monotonic()))),
        on_playback_stopped=wrap(lambda rid: h.playback.append(("stopped", rid, time.monotonic()))),
    )
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    h.call, h.client = call, client
    client.addTrack(ToneTrack())
    channel = client.createDataChannel("oai-events")
    h.channel = channel
    channel.on("message", wrap(h.client_messages.append))
    client.on("connectionstatechange", h.signal.touch)
    tasks: list[asyncio.Task[None]] = []

    @client.on("track")  # type: ignore[untyped-decorator,unused-ignore]
    def on_track(track: MediaStreamTrack) -> None:
        tasks.append(
            asyncio.get_running_loop().create_task(read_audio(track, wrap(h.client_audio.append)))
        )

    started = time.perf_counter()
    await client.setLocalDescription(await client.createOffer())
    answer = await call.answer(client.localDescription.sdp)
    await client.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await asyncio.wait_for(h.opened.wait(), TIMEOUT)
    h.connect_s = time.perf_counter() - started
    try:
        yield h
    finally:
        await call.close()
        await client.close()
        for task in tasks:
            await asyncio.wait_for(task, TIMEOUT)  # read_audio returns once the track ends


async def test_data_channel_opens_and_messages_flow_both_ways(harness: Harness) -> None:
    assert harness.call is not None and harness.channel is not None
    assert harness.channel.readyState == "open"
    assert harness.call.connection_state == "connected"
    harness.call.send('{"type": "session.created"}')
    harness.channel.send('{"type": "session.update"}')
    await harness.until(lambda: bool(harness.client_messages and harness.server_messages))
    assert harness.client_messages == ['{"type": "session.created"}']
    assert harness.server_messages == ['{"type": "session.update"}']
    # Connecting on loopback takes well under a second (about 0.1 s measured).
    assert harness.connect_s < 3.0


async def test_a_burst_of_events_shares_packets_in_order(harness: Harness) -> None:
    assert harness.call is not None
    dtls = harness.call._pc.sctp.transport
    packets: list[int] = []
    send_data = dtls._send_data

    async def counting(data: bytes) -> None:
        packets.append(len(data))
        await send_data(data)

    dtls._send_data = counting
    burst = [
        json.dumps({"type": "response.output_text.delta", "delta": f"w{i} "}) for i in range(300)
    ]
    burst.append(json.dumps({"type": "big", "text": "x" * 5000}))  # more than a packet holds
    for text in burst:
        harness.call.send(text)
    await harness.until(lambda: len(harness.client_messages) >= len(burst))
    assert harness.client_messages == burst  # every one, in order, the long one whole
    # Bundled (local/bundling.py): far fewer packets than messages, none over SCTP's size.
    assert len(packets) < len(burst) // 4
    assert max(packets) <= SCTP_MAX_PACKET_LENGTH


def test_held_chunks_are_packed_in_order_within_the_packet_size() -> None:
    transport = SimpleNamespace(_local_port=5000, _remote_port=5000, _remote_verification_tag=7)
    chunks = []
    for tsn in range(40):
        chunk = DataChunk()
        chunk.tsn, chunk.user_data = tsn, b"e" * (37 + tsn * 7)  # sizes that need padding
        chunks.append(bytes(chunk))
    parsed = [parse_packet(packet) for packet in _packets(transport, chunks)]
    assert all(len(packet) <= SCTP_MAX_PACKET_LENGTH for packet in _packets(transport, chunks))
    assert all(tag == 7 for _, _, tag, _ in parsed)  # checksums verified by parse_packet too
    tsns = [chunk.tsn for *_, packed in parsed for chunk in packed]
    assert tsns == list(range(40)) and 1 < len(parsed) < 40


async def test_incoming_audio_is_24khz_mono_at_the_right_pitch(harness: Harness) -> None:
    # One second of microphone audio (after Opus and back) is enough for a 1 Hz FFT.
    await harness.until(lambda: sum(c.size for c in harness.server_audio) >= 2 * SAMPLE_RATE)
    assert all(c.dtype == np.int16 and c.ndim == 1 for c in harness.server_audio)
    assert harness.server_audio[0].size == 480  # 20 ms at 24 kHz
    pcm = np.concatenate(harness.server_audio)[SAMPLE_RATE:]  # skip the codec's start-up
    assert dominant_hz(pcm[:SAMPLE_RATE], SAMPLE_RATE) == pytest.approx(440, abs=5)
    # Decoded on the event loop (decode_on_the_loop): no decoder thread per call was started.
    assert not [t for t in threading.enumerate() if t.name == "audio-decoder"]
    assert harness.call is not None
    receivers = [t.receiver for t in harness.call._pc.getTransceivers()]
    threads = [getattr(r, "_RTCRtpReceiver__decoder_thread", None) for r in receivers]
    assert threads and all(isinstance(t, _NoThread) for t in threads)


async def test_a_receiver_decodes_on_the_loop_and_ends_its_track() -> None:
    from aiortc.codecs import get_capabilities

    assert decode_on_the_loop() and decode_on_the_loop()  # in effect, and idempotent
    track_queue: asyncio.Queue[Any] = asyncio.Queue()
    error = threading.Event()
    queue = _DecodeOnPut(track_queue, error)
    codec = next(c for c in get_capabilities("audio").codecs if c.name == "opus")
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / TRACK_RATE)).astype(np.int16)
    for n, packet in enumerate(encode_opus(np.tile(tone, 3))):
        queue.put((codec, JitterFrame(data=packet, timestamp=n * FRAME_SAMPLES)))
    frames = [track_queue.get_nowait() for _ in range(track_queue.qsize())]
    assert len(frames) == 3 and all(isinstance(f, AudioFrame) for f in frames)
    assert np.abs(_frame_to_pcm(frames[-1])).max() > 2000  # the tone, not silence
    queue.put((codec, JitterFrame(data=b"\xff" * 3, timestamp=0)))  # not Opus
    assert error.is_set() and track_queue.empty()  # reported as aiortc would, nothing queued
    queue.put(None)
    assert track_queue.get_nowait() is None  # the track ends


async def test_playing_a_response_reaches_the_client(harness: Harness) -> None:
    assert harness.call is not None
    clip = synthesize_speech("hello there")
    clip_ms = clip.size * 1000 // SAMPLE_RATE
    player = harness.call.player
    await harness.until(lambda: len(harness.client_audio) > 10)  # the client hears silence at first
    assert np.abs(harness.client_pcm()).max() < 100  # Opus's silence: near zero
    heard_before = len(harness.client_audio)
    played_at = time.monotonic()
    player.play("resp_1", clip)
    await harness.until(lambda: any(kind == "stopped" for kind, _, _ in harness.playback))
    kinds = [(kind, rid) for kind, rid, _ in harness.playback]
    assert kinds == [("started", "resp_1"), ("stopped", "resp_1")]
    started_at, stopped_at = harness.playback[0][2], harness.playback[1][2]
    # Paced in real time: the clip takes about its own length to send, not an instant.
    assert started_at - played_at < 0.2
    assert stopped_at - started_at == pytest.approx(clip_ms / 1000, abs=0.15)
    assert player.played_ms("resp_1") == clip_ms
    assert player.playing is None
    # The client received the voice: loud audio, at a voice's level, after the silence.
    await harness.until(lambda: len(harness.client_audio) > heard_before + clip_ms // 20)
    heard = np.concatenate(harness.client_audio[heard_before:])
    assert np.abs(heard).max() > 3000


async def test_clear_stops_playback_midway(harness: Harness) -> None:
    assert harness.call is not None
    player = harness.call.player
    clip = synthesize_speech("one two three four five six seven eight nine ten")
    player.play("resp_2", clip)
    player.play("resp_3", synthesize_speech("never heard"))
    await harness.until(lambda: player.played_ms("resp_2") >= 300)
    assert player.playing == "resp_2"
    assert player.clear() == "resp_2"
    assert player.playing is None
    played = player.played_ms("resp_2")
    assert 300 <= played < clip.size * 1000 // SAMPLE_RATE
    # What follows is silence, and neither on_stopped nor the queued response came.
    after = len(harness.client_audio)
    await harness.until(lambda: len(harness.client_audio) > after + 25)
    assert player.played_ms("resp_2") == played
    assert player.played_ms("resp_3") == 0
    assert [(k, r) for k, r, _ in harness.playback] == [("started", "resp_2")]
    tail = np.concatenate(harness.client_audio[after + 10 :])
    assert np.abs(tail).max() < 100
    assert player.clear() is None


async def test_peer_hanging_up_calls_on_closed_once(harness: Harness) -> None:
    assert harness.client is not None and harness.call is not None
    await harness.client.close()
    await harness.until(lambda: bool(harness.closed))
    await harness.call.close()
    await harness.call.close()  # idempotent
    assert harness.closed == ["closed"]
    harness.call.send("dropped")  # after close: dropped silently


async def test_server_close_ends_the_call_cleanly(harness: Harness) -> None:
    assert harness.call is not None and harness.client is not None
    await harness.call.close()
    await harness.call.close()
    assert harness.call.connection_state == "closed"
    # The server chose to close: on_closed is for the peer going away, so it is not called.
    assert harness.closed == []
    await harness.until(
        lambda: harness.client is not None and harness.client.connectionState == "closed"
    )


async def test_messages_sent_before_open_are_queued() -> None:
    use_loopback_candidates()
    received: list[str] = []
    order: list[str] = []
    signal = Signal()
    opened = asyncio.Event()

    def on_open() -> None:
        order.append("open")
        call.send("first, from on_open")
        opened.set()

    call = RtcCall(
        on_message=lambda _: None,
        on_open=on_open,
        on_audio=lambda _: None,
        on_closed=lambda: None,
    )
    call.send("queued before open")
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTransceiver("audio", direction="recvonly")  # a client with no microphone
    channel = client.createDataChannel("any-label")
    channel.on("message", signal.wrap(received.append))
    try:
        await client.setLocalDescription(await client.createOffer())
        answer = await call.answer(client.localDescription.sdp)
        assert "a=sendonly" in answer
        await client.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(opened.wait(), TIMEOUT)
        await signal.until(lambda: len(received) == 2)
        assert received == ["first, from on_open", "queued before open"]
    finally:
        await call.close()
        await client.close()


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        ("", "not an SDP offer"),
        ("hello", "not an SDP offer"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no audio m-line"),
        ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "could not be applied"),
    ],
)
async def test_bad_offers_raise_value_error(sdp: str, message: str) -> None:
    call = RtcCall(
        on_message=lambda _: None,
        on_open=lambda: None,
        on_audio=lambda _: None,
        on_closed=lambda: None,
    )
    try:
        with pytest.raises(ValueError, match=message):
            await call.answer(sdp)
    finally:
        await call.close()


async def test_voice_track_packets_and_callbacks_without_a_peer() -> None:
    events: list[tuple[str, str]] = []
    track = VoiceTrack(
        on_started=lambda rid: events.append(("started", rid)),
        on_stopped=lambda rid: events.append(("stopped", rid)),
    )
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000)).astype(np.int16)
    track.play("a", tone[: 24000 * 60 // 1000])  # 60 ms: 3 frames
    track.play("b", np.zeros(0, dtype=np.int16))  # empty: still started and stopped
    packets = [await track.recv() for _ in range(8)]
    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(8)]
    # Opus, as aiortc's sender packs it: the tone, then silence (the same packet every time).
    decoder = CodecContext.create("libopus", "r")
    decoder.sample_rate, decoder.layout, decoder.format = TRACK_RATE, "mono", "s16"
    levels = []
    for packet in packets:
        frames = decoder.decode(Packet(bytes(packet)))
        levels.append(max(int(np.abs(f.to_ndarray()).max()) for f in frames))
    assert all(level > 2000 for level in levels[1:3]) and max(levels[5:]) < 100
    assert bytes(packets[6]) == bytes(packets[7])
    assert events == [("started", "a"), ("stopped", "a"), ("started", "b"), ("stopped", "b")]
    assert track.played_ms("a") == 60
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_encoded_clips_are_kept_by_content_for_every_call() -> None:
    clip = (4000 * np.sin(np.arange(9600) / 10)).astype(np.int16)
    first = _clips.encoded(clip).result(5)
    again = _clips.encoded(clip.copy())
    assert again.done() and again.result() is first  # no second encoding
    assert len(first) == 9600 // FRAME_SAMPLES


def test_loopback_candidates_patch_is_idempotent() -> None:
    import aioice.ice

    use_loopback_candidates()
    patched = aioice.ice.get_host_addresses
    use_loopback_candidates()
    assert aioice.ice.get_host_addresses is patched
    addresses = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    assert addresses.count("127.0.0.1") == 1


async def test_a_flood_fills_the_window_up_to_its_ceiling_and_no_further(
    harness: Harness,
) -> None:
    # aiortc alone grew it to 180 KiB in such a flood and lost bursts to the receiving socket.
    assert harness.call is not None
    association = harness.call._pc.sctp
    flood = [
        json.dumps({"type": "error", "error": {"message": "x" * 200, "event_id": f"evt_{i}"}})
        for i in range(3_000)
    ]
    for text in flood:
        harness.call.send(text)
    await harness.until(lambda: len(harness.client_messages) >= len(flood))
    assert harness.client_messages == flood
    # Slow start took the window to the ceiling and no further (every write goes through it).
    assert association._cwnd == MAX_CWND


def test_the_ceiling_is_left_off_an_aiortc_that_keeps_its_window_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cap_congestion_window() and cap_congestion_window()  # in effect, and idempotent

    class Elsewhere:
        def __init__(self) -> None:
            self.window = 3 * 1200

    monkeypatch.setattr(sctp, "RTCSctpTransport", Elsewhere)
    assert cap_congestion_window() is False
    assert "_cwnd" not in vars(Elsewhere)
