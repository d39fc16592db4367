"""Both sides of a call, recorded in the kernel: what the page sent and what it heard.

The page taps its outgoing track (the microphone, or a recording ``w.play()`` put in its
place) and the model's incoming track into one Web Audio graph, so the two channels are
sample-aligned by construction, and sends 24 kHz stereo PCM16 (user left, model right) in
chunks of about 200 ms as binary buffers. Each chunk says where it starts: the frame of the
page's audio clock and the page time of that clock's frame 0, so chunks land where they belong
and a gap (a suspended context) is silence, not a shift.

Calls follow one another on the tape with no silence for the time between them; each keeps its
own mapping from page time to tape position, which is how a turn (known from its events' page
times, see :class:`TurnSpans`) is cut out of it.

The tape is 96 KB a second (350 MB an hour): past its first minutes it moves from memory to an
unnamed temporary file, so a long recorded call costs the kernel disk, not memory.

Pure Python (the standard library's ``wave``); ``to_numpy()`` needs numpy.
"""

from __future__ import annotations

import bisect
import io
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .log import EventRecord

RATE = 24_000
FRAME_BYTES = 4  # a stereo frame: two little-endian int16 samples, user then model
# Kept in memory up to this (5 minutes), then in a temporary file (deleted with the tape).
IN_MEMORY_BYTES = 5 * 60 * RATE * FRAME_BYTES
# save() writes a long recording in pieces of this many frames (a minute), not all at once.
SAVE_FRAMES = 60 * RATE
Channel = Literal["user", "model"]

# Events say when a turn was heard, not when its audio began or ended: a user's speech starts
# before the server's VAD reports it, and the model's voice plays on after the server stops
# sending it (the page's jitter buffer). Cuts are widened by these, on the speaker's own
# channel only, where the margin holds the speaker's silence.
USER_LEAD_MS = 800.0
MODEL_TAIL_MS = 400.0
CAPTION_LEAD_MS = {"user": 1500.0, "model": 300.0}
CAPTION_TAIL_MS = 800.0


@dataclass
class _Segment:
    """One page audio clock (one call): page time of its frame 0, and where frame 0 sits."""

    t0: float  # ms since the epoch, the page's clock
    base: int  # tape frame of the clock's frame 0
    begin: int  # tape frame of its first written frame
    end: int  # tape frame after its last written frame


class Tape:
    """The growing stereo recording of a widget's calls; written by the comm, read anywhere."""

    def __init__(self, in_memory_bytes: int = IN_MEMORY_BYTES) -> None:
        # Open for the tape's life (a context manager would close it with this method).
        self._pcm = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=in_memory_bytes, prefix="rtw-tape-"
        )
        self._in_memory = in_memory_bytes
        self._size = 0  # bytes written, gaps included
        self._segments: list[_Segment] = []  # in page-time order
        self._lock = threading.Lock()

    def write(self, t0: float, frame: int, pcm: bytes) -> None:
        """A chunk from the page: stereo PCM16 starting at ``frame`` of the clock whose frame 0
        was at page time ``t0``."""
        pcm = pcm[: len(pcm) - len(pcm) % FRAME_BYTES]
        with self._lock:
            segment = next((s for s in reversed(self._segments) if s.t0 == t0), None)
            if segment is None:
                # A new call: it starts where the tape ends.
                here = self._size // FRAME_BYTES
                segment = _Segment(t0=t0, base=here - frame, begin=here, end=here)
                self._segments.append(segment)
                self._segments.sort(key=lambda s: s.t0)
            at = (segment.base + frame) * FRAME_BYTES
            if at < segment.begin * FRAME_BYTES:
                return  # before the call's first chunk (out of order): nowhere to put it
            # Writing past the end leaves zeros in between: a gap is silence.
            self._pcm.seek(at)
            self._pcm.write(pcm)
            self._size = max(self._size, at + len(pcm))
            segment.end = max(segment.end, segment.base + frame + len(pcm) // FRAME_BYTES)

    @property
    def frames(self) -> int:
        return self._size // FRAME_BYTES

    @property
    def on_disk(self) -> bool:
        """Whether the tape has moved to its temporary file."""
        return self._size > self._in_memory

    def position(self, t_ms: float) -> int:
        """The tape frame at page time ``t_ms`` (clamped to the call it falls in, or near)."""
        with self._lock:
            if not self._segments:
                return 0
            times = [s.t0 for s in self._segments]
            segment = self._segments[max(0, bisect.bisect_right(times, t_ms) - 1)]
            frame = segment.base + round((t_ms - segment.t0) * RATE / 1000)
            return max(segment.begin, min(frame, segment.end))

    def read(self, start: int, stop: int) -> bytes:
        start, stop = max(0, start) * FRAME_BYTES, min(stop * FRAME_BYTES, self._size)
        if stop <= start:
            return b""
        with self._lock:
            self._pcm.seek(start)
            return bytes(self._pcm.read(stop - start))


class Recording:
    """Recorded audio: both sides of a call (stereo, the user left, the model right) or one of
    them (mono), 24 kHz PCM16. In a notebook it shows as an audio player.

    >>> w = RealtimeWidget(endpoint="local", record=True)  # doctest: +SKIP
    >>> w.recording.save("call.wav"); w.transcript[0].audio  # doctest: +SKIP
    """

    rate = RATE

    def __init__(
        self,
        tape: Tape,
        start: int = 0,
        stop: int | None = None,
        channel: Channel | None = None,
    ) -> None:
        self._tape = tape
        self._start = start
        self._stop = stop  # None: up to the tape's end, as it grows
        self.channel = channel  # None: both, stereo

    @property
    def channels(self) -> int:
        return 1 if self.channel else 2

    @property
    def frames(self) -> int:
        stop = self._tape.frames if self._stop is None else min(self._stop, self._tape.frames)
        return max(0, stop - self._start)

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.frames / RATE

    @property
    def user(self) -> Recording:
        """The user's side alone (what the page sent: microphone or ``w.play()``), mono."""
        return Recording(self._tape, self._start, self._stop, "user")

    @property
    def model(self) -> Recording:
        """The model's side alone (what the page heard), mono."""
        return Recording(self._tape, self._start, self._stop, "model")

    def cut(self, start: float, end: float | None = None) -> Recording:
        """The part from ``start`` to ``end`` seconds (``None``: to the end)."""
        first = self._start + max(0, round(start * RATE))
        last = None if end is None else self._start + max(0, round(end * RATE))
        if self._stop is not None:
            last = self._stop if last is None else min(last, self._stop)
        return Recording(self._tape, first, last, self.channel)

    @property
    def pcm(self) -> bytes:
        """The samples as little-endian PCM16: interleaved stereo, or the one channel."""
        data = self._tape.read(self._start, self._start + self.frames)
        if self.channel is None:
            return data
        view = memoryview(data).cast("h")
        side = view[0::2] if self.channel == "user" else view[1::2]
        return side.tobytes()

    @property
    def wav(self) -> bytes:
        """A WAV file of it (stereo: the user left, the model right)."""
        out = io.BytesIO()
        self._write_wav(out)
        return out.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write it as a WAV file, a minute at a time (an hour-long call is not loaded whole);
        returns the path."""
        target = Path(path).expanduser()
        with target.open("wb") as out:
            self._write_wav(out)
        return target

    def _write_wav(self, out: Any) -> None:
        with wave.open(out, "wb") as writer:
            writer.setnchannels(self.channels)
            writer.setsampwidth(2)
            writer.setframerate(RATE)
            frames = self.frames
            for first in range(self._start, self._start + frames, SAVE_FRAMES):
                last = min(first + SAVE_FRAMES, self._start + frames)
                writer.writeframes(Recording(self._tape, first, last, self.channel).pcm)

    def to_numpy(self) -> Any:
        """The samples as int16: shape ``(frames, 2)`` for both sides, ``(frames,)`` for one."""
        try:
            import numpy as np
        except ImportError:
            raise ImportError("Recording.to_numpy() needs numpy: pip install numpy") from None
        samples = np.frombuffer(self.pcm, dtype="<i2")
        return samples.reshape(-1, 2) if self.channel is None else samples

    def player(self) -> Any:
        """An audio player widget of it (the WAV travels as a binary buffer)."""
        from ..player import AudioPlayer

        side = {None: "you left, the model right", "user": "you", "model": "the model"}
        return AudioPlayer(wav=self.wav, label=f"{self.duration:.1f} s, {side[self.channel]}")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data, metadata = self.player()._repr_mimebundle_(**kwargs)
        return {**data, "text/plain": repr(self)}, metadata

    def __len__(self) -> int:
        return self.frames

    def __repr__(self) -> str:
        side = {None: "stereo: user left, model right", "user": "user", "model": "model"}
        return f"Recording({self.duration:.2f} s, {side[self.channel]})"


# The events a turn's timing is read from (both directions: push-to-talk clears the buffer).
FOLLOWS = frozenset(
    {
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.clear",
        "response.output_item.added",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
    }
)


@dataclass
class Span:
    """When a turn was heard, in page time (ms since the epoch); ``end`` None: still going."""

    channel: Channel
    start: float
    end: float | None = None


class TurnSpans:
    """When each spoken turn was heard, from its events' page times, by item id.

    User speech: from the VAD's ``speech_started`` (less a lead) to ``speech_stopped``; a
    push-to-talk turn from the buffer's clear to its commit. The model's voice: from
    ``output_audio_buffer.started`` to ``stopped`` (plus a tail) of its response. GPT-Live
    captions: from a turn's first caption to its last.
    """

    def __init__(self) -> None:
        self.spans: dict[str, Span] = {}
        self._buffer_start: float | None = None  # push-to-talk: the input buffer's last clear
        self._items: dict[str, list[str]] = {}  # response id -> its message items
        self._audio_start: dict[str, float] = {}  # response id -> its voice began
        self._changes = 0  # bumps whenever a span may have changed
        self._ordered: tuple[int, dict[Channel, tuple[list[Span], list[float]]]] | None = None

    def apply(self, record: EventRecord) -> None:
        self._changes += 1
        kind, event, t = record.type, record.event, record.t_browser
        item_id = event.get("item_id")
        if kind == "input_audio_buffer.speech_started" and isinstance(item_id, str):
            self.spans[item_id] = Span("user", t - USER_LEAD_MS)
        elif kind == "input_audio_buffer.speech_stopped" and isinstance(item_id, str):
            span = self.spans.setdefault(item_id, Span("user", t - USER_LEAD_MS))
            span.end = t
        elif kind in ("input_audio_buffer.clear", "input_audio_buffer.cleared"):
            self._buffer_start = t
        elif kind == "input_audio_buffer.committed":
            if isinstance(item_id, str) and item_id not in self.spans:
                start = self._buffer_start if self._buffer_start is not None else t
                self.spans[item_id] = Span("user", start, t)
            self._buffer_start = t
        elif kind == "response.output_item.added":
            item, response_id = event.get("item") or {}, event.get("response_id")
            item_id = item.get("id") if isinstance(item, dict) else None
            spoken = isinstance(item, dict) and item.get("type") == "message"
            if spoken and isinstance(item_id, str) and isinstance(response_id, str):
                self._items.setdefault(response_id, []).append(item_id)
                started = self._audio_start.get(response_id, t)
                self.spans[item_id] = Span("model", started)
        elif kind == "output_audio_buffer.started":
            response_id = event.get("response_id")
            if isinstance(response_id, str):
                self._audio_start[response_id] = t
                for item in self._items.get(response_id, ()):
                    self.spans[item].start = t
        elif kind in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            response_id = event.get("response_id")
            if isinstance(response_id, str):
                for item in self._items.get(response_id, ()):
                    self.spans[item].end = t + MODEL_TAIL_MS
                self._audio_start.pop(response_id, None)

    def caption(self, role: str, item_id: str, t: float) -> None:
        """A GPT-Live caption of turn ``item_id`` arrived at page time ``t``."""
        self._changes += 1
        channel: Channel = "user" if role == "user" else "model"
        span = self.spans.get(item_id)
        if span is None:
            self.spans[item_id] = Span(channel, t - CAPTION_LEAD_MS[channel], t + CAPTION_TAIL_MS)
        else:
            span.end = t + CAPTION_TAIL_MS

    def clip(self, tape: Tape, item_id: str | None) -> Recording | None:
        """The turn's audio on its speaker's channel, or None (typed, or never heard)."""
        span = self.spans.get(item_id) if item_id else None
        if span is None or tape.frames == 0:
            return None
        # Bounded by the speaker's turns either side: not into the previous one, and a turn
        # never heard to its end (the call ended mid-turn) runs to the next one at most.
        turns, starts = self._by_channel()[span.channel]
        at = bisect.bisect_left(starts, span.start)
        while turns[at] is not span:
            at += 1
        previous = turns[at - 1].end if at > 0 else None
        start = span.start if previous is None else max(span.start, previous)
        end = span.end
        if end is None and at + 1 < len(turns):
            end = turns[at + 1].start
        first = tape.position(start)
        stop = tape.frames if end is None else tape.position(end)
        return Recording(tape, first, max(first, stop), span.channel)

    def _by_channel(self) -> dict[Channel, tuple[list[Span], list[float]]]:
        """Each speaker's turns in order of their start, and the starts: sorted once after a
        change, so a transcript's cuts cost a search each, not a scan."""
        if self._ordered is None or self._ordered[0] != self._changes:
            turns: dict[Channel, list[Span]] = {"user": [], "model": []}
            for one in sorted(self.spans.values(), key=lambda s: s.start):
                turns[one.channel].append(one)
            ordered = {c: (spans, [s.start for s in spans]) for c, spans in turns.items()}
            self._ordered = (self._changes, ordered)
        return self._ordered[1]
