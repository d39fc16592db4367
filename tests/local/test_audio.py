"""The local server's audio: synthetic voice, PCM16 helpers and the energy VAD."""

from __future__ import annotations

import os
import stat
import sys
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from realtime_widget.local.audio import (
    SAMPLE_RATE,
    EnergyVAD,
    VadEvent,
    base64_to_pcm16,
    pcm16_to_base64,
    resample,
    synthesize_speech,
    to_mono,
)

RATE = SAMPLE_RATE
FRAME_MS = EnergyVAD.FRAME_MS


def tone(ms: int, *, dbfs: float = -20.0, freq: float = 440.0) -> npt.NDArray[np.int16]:
    """A sine whose peak is at ``dbfs``."""
    t = np.arange(ms * RATE // 1000) / RATE
    return (10 ** (dbfs / 20) * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(ms: int) -> npt.NDArray[np.int16]:
    return np.zeros(ms * RATE // 1000, dtype=np.int16)


def noise(ms: int, *, dbfs: float, seed: int = 1) -> npt.NDArray[np.int16]:
    """White noise with RMS at ``dbfs``."""
    rms = 10 ** (dbfs / 20) * 32768
    return np.random.default_rng(seed).normal(0, rms, ms * RATE // 1000).astype(np.int16)


def feed(vad: EnergyVAD, pcm: npt.NDArray[np.int16], chunk: int) -> list[VadEvent]:
    events: list[VadEvent] = []
    for start in range(0, pcm.size, chunk):
        events += vad.process(pcm[start : start + chunk])
    return events


@pytest.fixture(autouse=True)
def synthetic_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    # The synthetic voice is what these tests describe; espeak-ng gets its own tests below.
    monkeypatch.setenv("REALTIME_WIDGET_ESPEAK", "0")


# --- VAD ------------------------------------------------------------------------------------------


def bursts() -> npt.NDArray[np.int16]:
    """1 s silence, 0.8 s tone, 1 s silence, 0.6 s tone, 1 s silence."""
    return np.concatenate([silence(1000), tone(800), silence(1000), tone(600), silence(1000)])


def assert_events(got: list[VadEvent], expected: list[tuple[str, int]]) -> None:
    assert [e.kind for e in got] == [kind for kind, _ in expected], got
    for event, (_, ms) in zip(got, expected, strict=True):
        assert abs(event.audio_ms - ms) <= FRAME_MS, (event, ms)


def test_vad_finds_each_burst_at_the_right_time() -> None:
    vad = EnergyVAD()  # threshold 0.5, prefix 300 ms, silence 500 ms
    events = vad.process(bursts())
    assert_events(
        events,
        [
            ("speech_started", 1000 - 300),
            ("speech_stopped", 1800),
            ("speech_started", 2800 - 300),
            ("speech_stopped", 3400),
        ],
    )
    assert vad.position_ms == 4400
    assert not vad.speaking


def test_vad_prefix_padding_is_clamped_at_zero() -> None:
    events = EnergyVAD(prefix_padding_ms=300).process(np.concatenate([tone(500), silence(700)]))
    assert_events(events, [("speech_started", 0), ("speech_stopped", 500)])


@pytest.mark.parametrize("chunk", [1, 37, 480, 999, 2400, 24000, 10**6])
def test_vad_chunk_size_does_not_change_results(chunk: int) -> None:
    pcm = bursts()
    assert feed(EnergyVAD(), pcm, chunk) == EnergyVAD().process(pcm)


@pytest.mark.parametrize(
    "pcm",
    [silence(3000), noise(3000, dbfs=-70.0), noise(3000, dbfs=-55.0)],
    ids=["digital silence", "noise -70 dBFS", "noise -55 dBFS"],
)
def test_vad_ignores_silence_and_low_noise(pcm: npt.NDArray[np.int16]) -> None:
    assert EnergyVAD().process(pcm) == []


def test_vad_ignores_a_single_click() -> None:
    pcm = silence(2000)
    pcm[24000:24010] = 30000  # 10 samples, one frame loud
    assert EnergyVAD().process(pcm) == []


def test_vad_threshold_decides_what_is_speech() -> None:
    quiet = np.concatenate([silence(500), tone(600, dbfs=-40.0), silence(1000)])  # RMS -43 dBFS
    assert [e.kind for e in EnergyVAD(threshold=0.3).process(quiet)] == [
        "speech_started",
        "speech_stopped",
    ]
    assert EnergyVAD(threshold=0.5).process(quiet) == []
    loud = np.concatenate([silence(500), tone(600, dbfs=-20.0), silence(1000)])  # RMS -23 dBFS
    assert len(EnergyVAD(threshold=0.5).process(loud)) == 2
    assert EnergyVAD(threshold=0.9).process(loud) == []


def test_vad_silence_duration_decides_when_a_turn_ends() -> None:
    # Two bursts 300 ms apart: one turn with 500 ms silence_duration, two turns with 200 ms.
    pcm = np.concatenate([silence(500), tone(400), silence(300), tone(400), silence(1000)])
    assert_events(
        EnergyVAD(silence_duration_ms=500).process(pcm),
        [("speech_started", 200), ("speech_stopped", 1600)],
    )
    assert_events(
        EnergyVAD(silence_duration_ms=200, prefix_padding_ms=0).process(pcm),
        [
            ("speech_started", 500),
            ("speech_stopped", 900),
            ("speech_started", 1200),
            ("speech_stopped", 1600),
        ],
    )


def test_vad_reports_stop_only_once_the_silence_has_lasted() -> None:
    vad = EnergyVAD(silence_duration_ms=500)
    assert [e.kind for e in vad.process(np.concatenate([silence(200), tone(400)]))] == [
        "speech_started"
    ]
    assert vad.process(silence(400)) == []  # 400 ms of silence: not yet
    assert vad.process(silence(200)) == [VadEvent("speech_stopped", 600)]


def test_vad_reset_starts_the_clock_again() -> None:
    vad = EnergyVAD()
    vad.process(np.concatenate([silence(1000), tone(300)]))
    assert vad.speaking
    vad.reset()
    assert vad.position_ms == 0
    assert not vad.speaking
    assert_events(
        vad.process(np.concatenate([silence(400), tone(300), silence(600)])),
        [("speech_started", 100), ("speech_stopped", 700)],
    )


def test_vad_hears_the_synthetic_voice_as_one_turn() -> None:
    speech = synthesize_speech("hello there how are you today")
    pcm = np.concatenate([silence(500), speech, silence(1000)])
    kinds = [e.kind for e in EnergyVAD().process(pcm)]
    assert kinds == ["speech_started", "speech_stopped"]


def test_vad_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EnergyVAD(threshold=1.5)
    with pytest.raises(ValueError, match="sample_rate"):
        EnergyVAD(sample_rate=44101)


def test_vad_is_fast() -> None:
    vad = EnergyVAD()
    second = noise(1000, dbfs=-30.0)
    vad.process(second)  # warm up
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        vad.process(second)
    per_second_ms = (time.perf_counter() - start) / runs * 1000
    # Typically ~0.05 ms; the bound leaves room for a slow, busy CI machine.
    assert per_second_ms < 1.0


# --- the synthetic voice --------------------------------------------------------------------------


def test_synth_is_deterministic() -> None:
    a = synthesize_speech("the quick brown fox")
    b = synthesize_speech("the quick brown fox")
    assert a.dtype == np.int16
    assert np.array_equal(a, b)
    c = synthesize_speech("the quick brown cat")
    assert c.size != a.size or not np.array_equal(a, c)


def test_synth_duration_scales_with_words_and_speed() -> None:
    one = synthesize_speech("hello").size / RATE
    four = synthesize_speech("hello hello hello hello").size / RATE
    assert 0.25 <= one <= 0.5
    assert 3.5 <= four / one <= 4.5
    fast = synthesize_speech("hello hello hello hello", speed=2.0).size / RATE
    assert fast == pytest.approx(four / 2, rel=0.05)


def test_synth_level_is_comfortable() -> None:
    pcm = synthesize_speech("hello there")
    peak_dbfs = 20 * np.log10(np.abs(pcm).max() / 32768)
    assert -7.0 <= peak_dbfs <= -5.0
    assert blank_is_empty()


def blank_is_empty() -> bool:
    return synthesize_speech("   ").size == 0


def test_synth_sounds_like_a_voice() -> None:
    pcm = synthesize_speech("hello there, how are you today").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm)) ** 2
    freqs = np.fft.rfftfreq(pcm.size, 1 / RATE)
    band = spectrum[(freqs >= 80) & (freqs <= 4000)].sum()
    assert band / spectrum.sum() > 0.95
    # The pitch (from the autocorrelation of the loudest 40 ms) is a speaking voice's.
    loudest = int(np.argmax(np.abs(pcm)))
    window = pcm[max(0, loudest - 480) : loudest + 480]
    window = window - window.mean()
    corr = np.correlate(window, window, mode="full")[window.size - 1 :]
    lags = np.arange(corr.size)
    voiced = (lags >= RATE // 400) & (lags <= RATE // 60)
    f0 = RATE / lags[voiced][np.argmax(corr[voiced])]
    assert 110 <= f0 <= 190
    # Words are separated by gaps: the 20 ms envelope has quiet stretches between loud ones.
    frames = pcm[: pcm.size // 480 * 480].reshape(-1, 480)
    rms = np.sqrt((frames**2).mean(axis=1))
    assert (rms < rms.max() * 0.05).sum() >= 4


def test_synth_refuses_a_bad_speed() -> None:
    with pytest.raises(ValueError, match="speed"):
        synthesize_speech("hi", speed=0)


def fake_espeak(directory: Path, body: str) -> None:
    script = directory / "espeak-ng"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_espeak_is_used_when_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in espeak-ng that writes a 22050 Hz WAV of a 200 Hz tone to stdout, with the
    # streaming-style bogus data size the real one writes.
    fake_espeak(
        tmp_path,
        "import io, math, struct, sys, wave\n"
        "rate = 22050\n"
        "frames = b''.join(struct.pack('<h', int(8000 * math.sin(2 * math.pi * 200 * i / rate)))"
        " for i in range(rate // 2))\n"
        "buf = io.BytesIO()\n"
        "w = wave.open(buf, 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)\n"
        "w.writeframes(frames); w.close()\n"
        "data = bytearray(buf.getvalue()); data[40:44] = (0x7FFFFFFF).to_bytes(4, 'little')\n"
        "sys.stdout.buffer.write(bytes(data))\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REALTIME_WIDGET_ESPEAK", "1")
    pcm = synthesize_speech("anything")
    assert pcm.size == RATE // 2  # resampled from 22050 Hz to 24 kHz
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    assert np.fft.rfftfreq(pcm.size, 1 / RATE)[np.argmax(spectrum)] == pytest.approx(200, abs=3)
    assert 20 * np.log10(np.abs(pcm).max() / 32768) == pytest.approx(-6, abs=0.5)
    monkeypatch.setenv("REALTIME_WIDGET_ESPEAK", "0")
    assert synthesize_speech("anything").size != RATE // 2


def test_a_failing_espeak_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_espeak(tmp_path, "import sys\nsys.exit(1)\n")
    synthetic = synthesize_speech("hello there")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REALTIME_WIDGET_ESPEAK", "1")
    assert np.array_equal(synthesize_speech("hello there"), synthetic)


def test_the_installed_voice_speaks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whichever voice this machine has (espeak-ng or the synthetic one) must be usable speech.
    monkeypatch.setenv("REALTIME_WIDGET_ESPEAK", "1")
    pcm = synthesize_speech("hello there")
    assert 0.3 <= pcm.size / RATE <= 3.0
    assert np.array_equal(pcm, synthesize_speech("hello there"))
    assert len(EnergyVAD().process(np.concatenate([pcm, silence(1000)]))) == 2


# --- helpers -------------------------------------------------------------------------------------


def test_resample() -> None:
    pcm = tone(100)
    assert resample(pcm, RATE, RATE) is pcm or np.array_equal(resample(pcm, RATE, RATE), pcm)
    up = resample(pcm, 24000, 48000)
    assert up.size == pcm.size * 2 and up.dtype == np.int16
    down = resample(up, 48000, 24000)
    assert down.size == pcm.size
    assert np.abs(down.astype(int) - pcm.astype(int)).max() < 200
    odd = resample(tone(1000), 24000, 22050)
    assert odd.size == 22050
    with pytest.raises(ValueError):
        resample(pcm, 0, 24000)


def test_to_mono_interleaved_and_planar() -> None:
    interleaved = np.array([[100, 300, -100, -300]], dtype=np.int16)
    assert to_mono(interleaved, 2).tolist() == [200, -200]
    planar = np.array([[100, -100], [300, -300]], dtype=np.int16)
    assert to_mono(planar, 2).tolist() == [200, -200]
    assert to_mono(np.array([[0.5, -0.5]], dtype=np.float32), 1).tolist() == [16384, -16384]


def test_base64_round_trip() -> None:
    pcm = tone(50)
    assert np.array_equal(base64_to_pcm16(pcm16_to_base64(pcm)), pcm)
    assert pcm16_to_base64(np.array([1, -1], dtype=np.int16)) == "AQD//w=="


def test_wav_written_by_python_reads_like_the_real_thing(tmp_path: Path) -> None:
    # Guard for the espeak path's WAV reader with an ordinary, well-formed file.
    from realtime_widget.local.audio import _read_wav

    path = tmp_path / "x.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.array([10, 30, -10, -30], dtype="<i2").tobytes())
    samples, rate = _read_wav(path.read_bytes())
    assert rate == 16000
    assert samples.tolist() == [20, -20]
