"""record=True in the kernel: the page's chunks on the tape, turns cut from their events' times.

The page's side (the Web Audio tap, the Transcript view's play buttons, the player) runs in
JupyterLab in tests/e2e/test_audio_lab.py; here the kernel is driven by the same messages.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path
from typing import Any

import pytest

from realtime_widget import RealtimeWidget
from realtime_widget.session.recording import RATE, Recording, Tape

from .browser import FakeBrowser

T0 = 1_750_000_000_000.0  # the page time of the page clock's frame 0 (ms)
USER, MODEL = 3000, 5000  # the two sides' levels in the synthetic call


def stereo(frames: int, left: int = 0, right: int = 0) -> bytes:
    return struct.pack("<hh", left, right) * frames


def call_audio(seconds: float = 8.0) -> list[tuple[int, bytes]]:
    """The page's chunks (200 ms) of a call: the user speaks 1-3 s, the model 4-6 s."""
    chunks = []
    for start in range(0, int(seconds * RATE), 4_800):
        frames = []
        for frame in range(start, start + 4_800):
            second = frame / RATE
            frames.append(
                struct.pack("<hh", USER if 1 <= second < 3 else 0, MODEL if 4 <= second < 6 else 0)
            )
        chunks.append((start, b"".join(frames)))
    return chunks


def at(seconds: float) -> float:
    return T0 + seconds * 1000


def spoken_turns(browser: FakeBrowser, user: str = "item_u", reply: str = "item_a") -> None:
    """The events of one spoken exchange, at the page times they would arrive."""
    browser.events(
        {"type": "input_audio_buffer.speech_started", "item_id": user, "audio_start_ms": 700},
        t=at(1.3),  # the VAD reports speech a little after it began
    )
    browser.events(
        {"type": "input_audio_buffer.speech_stopped", "item_id": user, "audio_end_ms": 2700},
        {
            "type": "conversation.item.added",
            "item": {
                "id": user,
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        },
        t=at(3.5),  # and its end after the silence that ends a turn
    )
    browser.events(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": user,
            "content_index": 0,
            "transcript": "Hello there.",
        },
        {
            "type": "response.output_item.added",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {"id": reply, "type": "message", "role": "assistant", "content": []},
        },
        {
            "type": "conversation.item.added",
            "item": {"id": reply, "type": "message", "role": "assistant", "content": []},
        },
        t=at(3.7),
    )
    browser.events({"type": "output_audio_buffer.started", "response_id": "resp_1"}, t=at(4.0))
    browser.events(
        {
            "type": "response.output_audio_transcript.done",
            "item_id": reply,
            "response_id": "resp_1",
            "output_index": 0,
            "content_index": 0,
            "transcript": "Hi! How can I help?",
        },
        t=at(4.2),
    )
    browser.events({"type": "output_audio_buffer.stopped", "response_id": "resp_1"}, t=at(6.0))


@pytest.fixture()
def recorded() -> tuple[RealtimeWidget, FakeBrowser]:
    w = RealtimeWidget(endpoint="local", record=True)
    browser = FakeBrowser(w)
    for frame, pcm in call_audio():
        browser.post({"kind": "audio", "t0": T0, "frame": frame}, [pcm])
    spoken_turns(browser)
    return w, browser


def levels(recording: Recording) -> Any:
    import numpy as np

    samples = recording.to_numpy()
    return np.count_nonzero(samples, axis=0)


def test_the_call_is_kept_as_stereo_the_user_left_and_the_model_right(
    recorded: tuple[RealtimeWidget, FakeBrowser], tmp_path: Any
) -> None:
    w, _ = recorded
    assert w.record and w.recording.duration == pytest.approx(8.0)
    assert list(levels(w.recording)) == [2 * RATE, 2 * RATE]  # each side's two seconds
    saved = w.recording.save(tmp_path / "call.wav")
    with wave.open(str(saved)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, RATE, 2)
        assert wav.getnframes() == 8 * RATE
        first_word = wav.readframes(RATE + 1)[-4:]
    assert struct.unpack("<hh", first_word) == (USER, 0)
    # One side at a time, mono.
    assert w.recording.user.channels == 1 and w.recording.user.duration == pytest.approx(8.0)
    assert set(w.recording.model.cut(4, 6).to_numpy().tolist()) == {MODEL}
    assert "8.00 s" in repr(w.recording) and "user left" in repr(w.recording)


def test_each_spoken_turn_is_its_cut_on_its_speakers_channel(
    recorded: tuple[RealtimeWidget, FakeBrowser],
) -> None:
    w, _ = recorded
    user, reply = w.transcript
    assert (user.role, user.text, reply.role, reply.text) == (
        "user",
        "Hello there.",
        "assistant",
        "Hi! How can I help?",
    )
    assert user.audio is not None and reply.audio is not None
    assert user.audio.channel == "user" and reply.audio.channel == "model"
    # All of what each said is in its cut (the user began before the VAD said so; the model
    # played on after the server stopped sending), and the cut is not much longer.
    assert levels(user.audio) == 2 * RATE and 2.0 <= user.audio.duration <= 3.2
    assert levels(reply.audio) == 2 * RATE and 2.0 <= reply.audio.duration <= 2.6
    assert set(user.audio.to_numpy().tolist()) == {0, USER}


def test_a_view_plays_a_turn_from_a_wav_in_the_replys_binary_buffer(
    recorded: tuple[RealtimeWidget, FakeBrowser],
) -> None:
    _, browser = recorded
    browser.post({"kind": "request", "id": 7, "op": "clip", "item_id": "item_a"})
    reply = browser.custom("reply")[-1]
    assert reply["ok"] and reply["value"]["channel"] == "model"
    wav = browser.buffers[[d.get("content") for d in browser.sent].index(reply)][0]
    with wave.open(io.BytesIO(bytes(wav))) as clip:
        assert (clip.getnchannels(), clip.getframerate()) == (1, RATE)
        assert clip.getnframes() / RATE == pytest.approx(reply["value"]["seconds"], abs=1e-3)
    # A typed turn (or one never heard) has no audio, and the view is told so.
    browser.post({"kind": "request", "id": 8, "op": "clip", "item_id": "item_typed"})
    refused = browser.custom("reply")[-1]
    assert refused["id"] == 8 and not refused["ok"] and "No audio" in refused["error"]


def test_the_player_carries_the_wav_as_a_binary_trait(
    recorded: tuple[RealtimeWidget, FakeBrowser],
) -> None:
    w, _ = recorded
    player = w.transcript[1].audio.player()  # type: ignore[union-attr]
    assert player.wav[:4] == b"RIFF" and "the model" in player.label
    bundle, _ = w.recording._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Recording(8.00 s")


def test_a_second_call_follows_the_first_on_the_tape_and_its_turns_cut_from_it() -> None:
    w = RealtimeWidget(endpoint="local", record=True)
    browser = FakeBrowser(w)
    for frame, pcm in call_audio(7.0):
        browser.post({"kind": "audio", "t0": T0, "frame": frame}, [pcm])
    # The next call, ten minutes later, with a new audio clock: no ten minutes of silence.
    later = T0 + 600_000
    for frame, pcm in call_audio(7.0):
        browser.post({"kind": "audio", "t0": later, "frame": frame}, [pcm])
    assert w.recording.duration == pytest.approx(14.0)
    browser.events(
        {"type": "input_audio_buffer.speech_started", "item_id": "item_2"}, t=later + 1300
    )
    browser.events(
        {"type": "input_audio_buffer.speech_stopped", "item_id": "item_2"}, t=later + 3500
    )
    clip = w._core.clip("item_2")
    assert clip is not None and levels(clip) == 2 * RATE
    assert clip._start >= 7 * RATE  # in the second call's part of the tape


def test_push_to_talk_turns_run_from_the_clear_to_the_commit() -> None:
    w = RealtimeWidget(endpoint="local", record=True, push_to_talk=True)
    browser = FakeBrowser(w)
    for frame, pcm in call_audio():
        browser.post({"kind": "audio", "t0": T0, "frame": frame}, [pcm])
    browser.events({"type": "input_audio_buffer.clear"}, direction="out", t=at(0.9))
    browser.events({"type": "input_audio_buffer.committed", "item_id": "item_p"}, t=at(3.1))
    clip = w._core.clip("item_p")
    assert clip is not None and clip.channel == "user" and levels(clip) == 2 * RATE
    assert clip.duration == pytest.approx(2.2)


def test_a_gap_in_the_page_clock_is_silence_not_a_shift() -> None:
    tape = Tape()
    tape.write(T0, 0, stereo(4_800, 1, 1))
    tape.write(T0, 9_600, stereo(4_800, 2, 2))  # the context was suspended for 200 ms
    recording = Recording(tape)
    assert recording.frames == 14_400
    samples = recording.user.to_numpy().tolist()
    assert samples[4_799:4_801] == [1, 0] and samples[9_599:9_601] == [0, 2]
    assert tape.position(at(0.4)) == 9_600  # page time still maps to where it was heard


def test_not_recorded_says_how_to_and_takes_no_audio() -> None:
    w = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(w)
    browser.post({"kind": "audio", "t0": T0, "frame": 0}, [stereo(4_800, 1, 1)])
    with pytest.raises(RuntimeError, match="record=True"):
        _ = w.recording
    spoken_turns(browser)
    assert [t.audio for t in w.transcript] == [None, None]
    # Set before a call, it records from then on.
    w.record = True
    browser.post({"kind": "audio", "t0": T0, "frame": 0}, [stereo(4_800, 1, 1)])
    assert w.recording.duration == pytest.approx(0.2)


def test_a_malformed_audio_message_is_reported_and_dropped() -> None:
    w = RealtimeWidget(endpoint="local", record=True)
    browser = FakeBrowser(w)
    browser.post({"kind": "audio", "t0": T0}, [stereo(10)])
    assert any("Ignored a browser message" in n and "frame" in n for n in w.notices)
    assert w.recording.frames == 0


def test_gpt_live_turns_are_cut_from_their_captions_times() -> None:
    w = RealtimeWidget(model="gpt-live-1.1", endpoint="local", record=True)
    browser = FakeBrowser(w)
    for frame, pcm in call_audio():
        browser.post({"kind": "audio", "t0": T0, "frame": frame}, [pcm])

    def caption(kind: str, delta: str, start: int, end: int, seconds: float) -> None:
        event = {"type": kind, "delta": delta, "start_ms": start, "end_ms": end}
        browser.events(event, t=at(seconds))

    # Captions stream while each speaks (the user's a little behind the speech).
    caption("session.input_transcript.delta", "Hello ", 1000, 1800, 2.0)
    caption("session.input_transcript.delta", "there.", 1800, 2900, 3.0)
    caption("session.output_transcript.delta", "Hi! ", 4000, 4600, 4.2)
    caption("session.output_transcript.delta", "How can I help?", 4600, 5900, 5.4)
    user, reply = w.transcript
    assert (user.text, reply.text) == ("Hello there.", "Hi! How can I help?")
    assert user.audio is not None and user.audio.channel == "user"
    assert reply.audio is not None and reply.audio.channel == "model"
    assert levels(user.audio) == 2 * RATE and levels(reply.audio) == 2 * RATE


def test_a_page_that_cannot_record_says_so_in_a_notice() -> None:
    w = RealtimeWidget(endpoint="local", record=True)
    browser = FakeBrowser(w)
    browser.post({"kind": "unrecorded", "error": "This page cannot record the call (no worklet)."})
    assert any("cannot record the call" in n for n in w.notices)


def test_a_turn_never_heard_to_its_end_runs_to_the_speakers_next() -> None:
    w = RealtimeWidget(endpoint="local", record=True)
    browser = FakeBrowser(w)
    for frame, pcm in call_audio():
        browser.post({"kind": "audio", "t0": T0, "frame": frame}, [pcm])
    browser.events({"type": "input_audio_buffer.speech_started", "item_id": "a"}, t=at(1.3))
    browser.events({"type": "input_audio_buffer.speech_started", "item_id": "b"}, t=at(5.0))
    first, second = w._core.clip("a"), w._core.clip("b")
    assert first is not None and first.duration == pytest.approx(4.2 - 0.5, abs=0.01)
    assert second is not None and second.duration == pytest.approx(8.0 - 4.2, abs=0.01)


def test_a_long_tape_moves_to_a_file_and_reads_back_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import realtime_widget.session.recording as recording_module

    monkeypatch.setattr(recording_module, "SAVE_FRAMES", 1_000)  # save in several pieces
    tape = Tape(in_memory_bytes=40_000)  # 10,000 frames in memory, then a file
    tape.write(T0, 0, stereo(4_800, 1, -1))
    assert not tape.on_disk
    tape.write(T0, 4_800, stereo(4_800, 2, -2))
    tape.write(T0, 19_200, stereo(4_800, 3, -3))  # past the limit, after a 200 ms gap
    assert tape.on_disk
    samples = Recording(tape).to_numpy()
    assert samples.shape == (24_000, 2)
    assert samples[:, 0].tolist() == [1] * 4_800 + [2] * 4_800 + [0] * 9_600 + [3] * 4_800
    assert (samples[:, 1] == -samples[:, 0]).all()
    saved = Recording(tape).model.cut(0.1).save(tmp_path / "model.wav")
    with wave.open(str(saved)) as reader:
        assert reader.getnchannels() == 1 and reader.getnframes() == 24_000 - 2_400
        frames = reader.readframes(reader.getnframes())
    assert frames == Recording(tape).model.cut(0.1).pcm
