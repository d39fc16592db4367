"""Recorded speech as the API takes it: 24 kHz mono PCM16 bytes.

From a WAV file or its bytes (the standard library reads it), an MP3/OGG/FLAC file (decoded
with PyAV, which the ``local`` extra installs), or a numpy array with its sample rate. Other
rates and stereo are converted (numpy).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

RATE = 24_000
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a")


def is_audio_path(value: Any) -> bool:
    return isinstance(value, (str, Path)) and str(value).lower().endswith(AUDIO_SUFFIXES)


def pcm16(source: Any) -> bytes:
    """24 kHz mono PCM16 from a path, WAV bytes, or ``(samples, rate)`` (a numpy array)."""
    if isinstance(source, tuple) and len(source) == 2:
        samples, rate = source
        return _convert(samples, int(rate))
    if isinstance(source, (bytes, bytearray)):
        return _from_wav(io.BytesIO(bytes(source)), "the audio bytes")
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"No audio file at {path}.")
        if path.suffix.lower() == ".wav":
            return _from_wav(str(path), str(path))
        return _decode(path)
    raise TypeError(
        f"Audio is a file path, WAV bytes or (numpy array, sample rate), not {type(source)}."
    )


def _from_wav(source: Any, name: str) -> bytes:
    try:
        with wave.open(source, "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{name} is not a WAV file the standard library reads: {exc}") from None
    if width != 2:
        raise ValueError(f"{name} has {8 * width}-bit samples; 16-bit PCM WAV is read.")
    if channels == 1 and rate == RATE:
        return frames
    np = _numpy()
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    return _convert(samples, rate)


def _decode(path: Path) -> bytes:
    try:
        import av
    except ImportError:
        raise ImportError(
            f"Reading {path.suffix} files needs PyAV: pip install 'realtime-widget[local]' "
            "(or give a 16-bit WAV file)."
        ) from None
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    out = bytearray()
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for converted in resampler.resample(frame):
                out += bytes(converted.planes[0])[: converted.samples * 2]
    for converted in resampler.resample(None):
        out += bytes(converted.planes[0])[: converted.samples * 2]
    return bytes(out)


def _convert(samples: Any, rate: int) -> bytes:
    """Mono, 24 kHz, int16: channels averaged, linear interpolation between rates."""
    np = _numpy()
    data = np.asarray(samples)
    # Floats are in [-1, 1], integers are PCM16: decided before channels are averaged (the
    # mean of integers is a float, and must not be taken for one).
    if data.dtype.kind == "f":
        data = np.clip(data, -1.0, 1.0) * 32767
    data = data.astype("float64")
    if data.ndim == 2:
        data = data.mean(axis=1)
    if rate != RATE and len(data):
        count = max(1, round(len(data) * RATE / rate))
        data = np.interp(np.linspace(0, len(data) - 1, count), np.arange(len(data)), data)
    return bytes(np.round(data).astype("<i2").tobytes())


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        raise ImportError(
            "Converting audio to 24 kHz mono needs numpy: pip install numpy "
            "(or give 24 kHz mono 16-bit WAV)."
        ) from None
    return numpy
