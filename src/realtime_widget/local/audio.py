"""Audio for the local server: a synthetic voice, PCM16 helpers and an energy-based server VAD.

numpy only: the engine and its tests use this module without touching WebRTC.
"""

from __future__ import annotations

import base64
import itertools
import math
import os
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "SAMPLE_RATE",
    "EnergyVAD",
    "VadEvent",
    "base64_to_pcm16",
    "pcm16_to_base64",
    "resample",
    "synthesize_speech",
    "to_mono",
]

PCM16 = npt.NDArray[np.int16]

SAMPLE_RATE = 24000
"""The Realtime API's ``audio/pcm`` rate: 16-bit little-endian mono at 24 kHz."""

# A comfortable speaking level: peaks at -6 dBFS leave headroom for the Opus encoder.
_PEAK = 10 ** (-6 / 20) * 32767
_ESPEAK_TIMEOUT_S = 10.0
_ESPEAK_WPM = 175


def to_mono(pcm: npt.NDArray[np.generic], channels: int = 1) -> PCM16:
    """Mix interleaved or planar samples down to one int16 channel.

    ``pcm`` is either interleaved (1-D, or 2-D with one row, as PyAV gives packed formats) or
    planar (2-D with one row per channel). Float input is taken as -1..1.

    >>> to_mono(np.array([100, 300, -100, -300], dtype=np.int16), channels=2).tolist()
    [200, -200]
    """
    samples = np.asarray(pcm)
    if np.issubdtype(samples.dtype, np.floating):
        samples = np.clip(samples * 32768.0, -32768, 32767)
    if samples.ndim == 2 and samples.shape[0] == channels and channels > 1:
        planar_mix = samples.astype(np.float64).mean(axis=0)
        return np.asarray(np.round(planar_mix), dtype=np.int16)
    flat = samples.reshape(-1)
    if channels <= 1:
        return flat.astype(np.int16, copy=False)
    usable = flat[: flat.size - flat.size % channels]
    mixed = usable.reshape(-1, channels).astype(np.float64).mean(axis=1)
    return np.asarray(np.round(mixed), dtype=np.int16)


def resample(pcm: npt.NDArray[np.int16], from_rate: int, to_rate: int) -> PCM16:
    """Resample mono int16 audio; the same rate returns the input unchanged.

    An integer down-sampling ratio (48 kHz to 24 kHz, the WebRTC case) averages each block, a cheap
    low-pass that keeps per-frame conversion stateless; any other ratio interpolates linearly.

    >>> resample(np.array([0, 10, 20, 30], dtype=np.int16), 48000, 24000).tolist()
    [5, 25]
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")
    samples = np.asarray(pcm, dtype=np.int16).reshape(-1)
    if from_rate == to_rate or samples.size == 0:
        return samples
    if from_rate % to_rate == 0:
        factor = from_rate // to_rate
        usable = samples[: samples.size - samples.size % factor]
        blocks = usable.reshape(-1, factor).astype(np.int32)
        # Integer mean rounded half away from zero would need more work; floor division is fine
        # for a one-LSB difference and keeps this allocation-light.
        return np.asarray(blocks.sum(axis=1) // factor, dtype=np.int16)
    out_len = round(samples.size * to_rate / from_rate)
    if out_len == 0:
        return np.zeros(0, dtype=np.int16)
    positions = np.arange(out_len, dtype=np.float64) * (from_rate / to_rate)
    out = np.interp(positions, np.arange(samples.size, dtype=np.float64), samples)
    return np.asarray(np.round(out), dtype=np.int16)


def pcm16_to_base64(pcm: npt.NDArray[np.int16]) -> str:
    """Encode int16 samples as the API's base64 little-endian PCM16.

    >>> pcm16_to_base64(np.array([1, -1], dtype=np.int16))
    'AQD//w=='
    """
    return base64.b64encode(np.asarray(pcm, dtype="<i2").tobytes()).decode("ascii")


def base64_to_pcm16(data: str) -> PCM16:
    """Decode the API's base64 PCM16 into int16 samples; a trailing odd byte is dropped.

    >>> base64_to_pcm16("AQD//w==").tolist()
    [1, -1]
    """
    raw = base64.b64decode(data, validate=False)
    raw = raw[: len(raw) - len(raw) % 2]
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


# --- the synthetic voice --------------------------------------------------------------------------

# (F1, F2, F3) in Hz for a few vowels; each word picks one from its letters so that different
# words sound different while staying deterministic.
_VOWEL_FORMANTS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (390.0, 1990.0, 2550.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (440.0, 1020.0, 2240.0),
}


def _formant_gain(
    freqs: npt.NDArray[np.float64], formants: tuple[float, ...]
) -> npt.NDArray[np.float64]:
    """Gain of a harmonic at each frequency: resonance peaks at the formants, ~80 Hz wide."""
    gain = np.full_like(freqs, 0.05)
    for i, f in enumerate(formants):
        bw = 80.0 + 40.0 * i
        gain += (1.0 / (1 + i)) / (1.0 + ((freqs - f) / bw) ** 2)
    return gain


def _synthetic_voice(text: str, speed: float, sample_rate: int) -> PCM16:
    words = text.split()
    if not words:
        return np.zeros(0, dtype=np.int16)
    gap = int(0.06 / speed * sample_rate)
    pieces: list[npt.NDArray[np.float64]] = [np.zeros(gap // 2)]
    n_words = len(words)
    for index, word in enumerate(words):
        seed = zlib.crc32(word.lower().encode("utf-8"))
        letters = [c for c in word.lower() if c.isalpha()]
        # 0.25-0.35 s per word, longer words taking longer, scaled by speed.
        duration = (0.25 + 0.01 * min(len(letters), 10)) / speed
        n = max(int(duration * sample_rate), 1)
        t = np.arange(n, dtype=np.float64) / sample_rate
        # Pitch contour: a declination across the sentence (170 Hz down to 125 Hz), a small rise
        # and fall inside each word, and a per-word offset so repeated words keep their shape.
        progress = index / max(n_words - 1, 1)
        base_f0 = 170.0 - 45.0 * progress + ((seed % 11) - 5.0)
        f0 = base_f0 * (1.0 + 0.06 * np.sin(np.pi * t / duration))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        vowel = next((c for c in letters if c in _VOWEL_FORMANTS), "aeiou"[seed % 5])
        formants = _VOWEL_FORMANTS[vowel]
        n_harmonics = int(3800.0 // base_f0)
        harmonics = np.arange(1, n_harmonics + 1, dtype=np.float64)
        # Glottal pulses have a spectrum falling ~12 dB/octave; the formants shape it into a vowel.
        amps = _formant_gain(harmonics * base_f0, formants) / harmonics
        signal = np.sin(np.outer(phase, harmonics)) @ amps
        # One syllable for short words, two for longer ones: raised-cosine bumps.
        syllables = 1 if len(letters) <= 4 else 2
        envelope = np.zeros(n)
        bounds = np.linspace(0, n, syllables + 1).astype(int)
        for start, stop in itertools.pairwise(bounds.tolist()):
            envelope[start:stop] = np.sin(np.linspace(0.0, np.pi, stop - start)) ** 1.5
        pieces.append(signal * envelope)
        pieces.append(np.zeros(gap))
    wave_f = np.concatenate(pieces)
    peak = float(np.max(np.abs(wave_f)))
    if peak > 0:
        wave_f *= _PEAK / peak
    return np.asarray(np.round(wave_f), dtype=np.int16)


def _read_wav(data: bytes) -> tuple[PCM16, int]:
    """Read 16-bit PCM WAV bytes, tolerating the bogus sizes a WAV streamed to stdout carries."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    pos = 12
    channels, rate, bits = 1, 0, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            bits = int.from_bytes(data[body + 14 : body + 16], "little")
        elif chunk == b"data":
            if bits != 16 or rate <= 0:
                raise ValueError(f"unsupported WAV: {bits}-bit at {rate} Hz")
            # espeak-ng writes 0x7FFFFFFF-ish sizes when streaming: take what is there.
            payload = data[body : body + size] if body + size <= len(data) else data[body:]
            payload = payload[: len(payload) - len(payload) % (2 * channels)]
            samples = np.frombuffer(payload, dtype="<i2").astype(np.int16)
            return to_mono(samples, channels), rate
        pos = body + size + (size & 1)
    raise ValueError("WAV has no data chunk")


def _espeak(text: str, speed: float, sample_rate: int) -> PCM16 | None:
    if os.environ.get("REALTIME_WIDGET_ESPEAK", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    exe = shutil.which("espeak-ng")
    if exe is None or not text.strip():
        return None
    wpm = max(80, min(450, round(_ESPEAK_WPM * speed)))
    try:
        done = subprocess.run(
            [exe, "--stdout", "-s", str(wpm), "--", text],
            capture_output=True,
            timeout=_ESPEAK_TIMEOUT_S,
            check=True,
        )
        samples, rate = _read_wav(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if samples.size == 0 or not np.any(samples):
        return None
    out = resample(samples, rate, sample_rate).astype(np.float64)
    # Bring espeak's level to the synthetic voice's so both sound alike through the same path.
    out *= _PEAK / float(np.max(np.abs(out)))
    return np.asarray(np.round(out), dtype=np.int16)


def synthesize_speech(text: str, *, speed: float = 1.0, sample_rate: int = SAMPLE_RATE) -> PCM16:
    """Speak ``text`` as int16 mono samples at ``sample_rate``, deterministically.

    Uses ``espeak-ng`` when it is on PATH (unless ``REALTIME_WIDGET_ESPEAK=0``), otherwise a
    synthetic voice: a harmonic series at 120-180 Hz with a pitch contour and vowel formants, one
    or two syllables per word, ~0.25-0.35 s per word divided by ``speed``, peaks at -6 dBFS. Blank
    text gives an empty array.

    >>> pcm = synthesize_speech("hello there", speed=1.5)
    >>> pcm.dtype, pcm.ndim
    (dtype('int16'), 1)
    """
    if not math.isfinite(speed) or speed <= 0:
        raise ValueError(f"speed must be a positive number, got {speed!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    spoken = _espeak(text, speed, sample_rate)
    if spoken is not None:
        return spoken
    return _synthetic_voice(text, speed, sample_rate)


# --- server VAD ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VadEvent:
    """A turn boundary found by :class:`EnergyVAD`; ``audio_ms`` counts from the first sample."""

    kind: Literal["speech_started", "speech_stopped"]
    audio_ms: int


class EnergyVAD:
    """Server VAD on frame energy, shaped like the Realtime API's ``server_vad``.

    Audio is cut into 20 ms frames; a frame is speech when its RMS level is at least
    ``-70 + 60 * threshold`` dBFS, so ``threshold`` 0.0 → -70 dBFS, 0.5 (the API default) →
    -40 dBFS, 0.8 → -22 dBFS, 1.0 → -10 dBFS. A 440 Hz tone peaking at -20 dBFS (RMS -23 dBFS) is
    speech at the default; digital silence and -70 dBFS noise are not.

    Speech starts after two consecutive speech frames (a single click does not count);
    ``speech_started`` reports the onset minus ``prefix_padding_ms`` (not below 0). Speech stops
    once ``silence_duration_ms`` of non-speech frames have passed; ``speech_stopped`` reports when
    that silence began.

    >>> vad = EnergyVAD()
    >>> tone = (3000 * np.sin(np.arange(24000) * 2 * np.pi * 440 / 24000)).astype(np.int16)
    >>> vad.process(np.concatenate([np.zeros(24000, np.int16), tone, np.zeros(24000, np.int16)]))
    [VadEvent(kind='speech_started', audio_ms=700), VadEvent(kind='speech_stopped', audio_ms=2000)]
    """

    FRAME_MS = 20
    MIN_SPEECH_FRAMES = 2

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
        if prefix_padding_ms < 0 or silence_duration_ms < 0:
            raise ValueError("prefix_padding_ms and silence_duration_ms must not be negative")
        if sample_rate <= 0 or sample_rate * self.FRAME_MS % 1000:
            raise ValueError(f"sample_rate must give whole {self.FRAME_MS} ms frames")
        self.threshold = threshold
        self.threshold_dbfs = -70.0 + 60.0 * threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.sample_rate = sample_rate
        self._frame = sample_rate * self.FRAME_MS // 1000
        # Compare mean squares rather than dB per frame: no log in the hot path.
        self._min_power = (10 ** (self.threshold_dbfs / 20) * 32768.0) ** 2 * self._frame
        self._silence_frames = -(-silence_duration_ms // self.FRAME_MS)
        self.reset()

    def reset(self) -> None:
        """Forget all audio and state; ``position_ms`` starts again at 0."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames_done = 0
        self._samples_fed = 0
        self._speaking = False
        self._run = 0  # consecutive speech frames while idle, silent frames while speaking
        self._run_start = 0  # frame index where that run began

    @property
    def speaking(self) -> bool:
        """Whether the VAD is inside a speech turn."""
        return self._speaking

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio fed since the start (or the last ``reset``)."""
        return self._samples_fed * 1000 // self.sample_rate

    def process(self, pcm: npt.NDArray[np.int16]) -> list[VadEvent]:
        """Feed int16 mono samples of any length; return the turn boundaries they complete."""
        samples = np.asarray(pcm).reshape(-1)
        self._samples_fed += samples.size
        if self._pending.size:
            samples = np.concatenate([self._pending, samples])
        n_frames = samples.size // self._frame
        cut = n_frames * self._frame
        self._pending = samples[cut:].astype(np.int16, copy=True)
        if n_frames == 0:
            return []
        frames = samples[:cut].astype(np.float32).reshape(n_frames, self._frame)
        # einsum gives the per-frame sum of squares without a temporary the size of the input.
        loud = np.einsum("ij,ij->i", frames, frames) >= self._min_power
        events: list[VadEvent] = []
        base = self._frames_done
        self._frames_done += n_frames
        # Only frames where loudness flips matter; walk those, not every frame.
        flips = (np.flatnonzero(loud[1:] != loud[:-1]) + 1).tolist()
        for start, end in itertools.pairwise([0, *flips, n_frames]):
            self._segment(bool(loud[start]), base + start, end - start, events)
        return events

    def _segment(self, loud: bool, first: int, count: int, events: list[VadEvent]) -> None:
        """Advance the state machine over ``count`` equally loud frames from frame ``first``."""
        ms = self.FRAME_MS
        if not self._speaking:
            if not loud:
                self._run = 0
                return
            if self._run == 0:
                self._run_start = first
            self._run += count
            if self._run >= self.MIN_SPEECH_FRAMES:
                self._speaking = True
                onset = self._run_start * ms
                events.append(VadEvent("speech_started", max(0, onset - self.prefix_padding_ms)))
                self._run = 0
            return
        if loud:
            self._run = 0
            return
        if self._run == 0:
            self._run_start = first
        self._run += count
        if self._run >= self._silence_frames:
            self._speaking = False
            events.append(VadEvent("speech_stopped", self._run_start * ms))
            self._run = 0
