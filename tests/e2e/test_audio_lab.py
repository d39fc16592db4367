"""Push-to-talk end to end in JupyterLab: set from Python, held in the Audio tab, answered.

The fake microphone loops a 1 s tone every 5 s (tests/conftest.py). With push-to-talk on, the
page keeps the microphone silent and turn detection off; holding "Hold to talk" across one tone
and letting go commits that audio and asks for the reply, which the local server gives as
"I heard N.N seconds of audio." The kernel holds every step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_speech_wav

from .conftest import Lab, write_notebook

pytestmark = pytest.mark.parametrize("lab", ["lab"], indirect=True)

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
CELL = (
    "from realtime_widget import RealtimeWidget\n"
    'w = RealtimeWidget(endpoint="local", push_to_talk=True)\n'
    "w"
)


@pytest.fixture()
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def meter_below(level: int) -> str:
    return f"""() => Number(document.querySelector('.rtw-meter-input')
                 .getAttribute('aria-valuenow')) {level}"""


async def test_push_to_talk_set_in_python_held_in_the_page_answered_in_the_kernel(
    lab: Lab, workdir: Path, shots: Path
) -> None:
    page = lab.page
    await lab.open(write_notebook(workdir, "audio_ptt.ipynb", [CELL]))
    await lab.run_all()
    await page.locator(".rtw-connect").click()
    await lab.wait_kernel("w.status == 'connected'")
    # The call began with turn detection off: the server says so, and so does the config.
    await lab.wait_kernel(
        "w.server_session.get('audio', {}).get('input', {}).get('turn_detection', 0) is None"
    )
    assert await lab.kernel_json("w.turn_detection") is None
    await page.locator(".rtw-tab[data-tab='audio']").click()
    assert await page.locator(".rtw-ptt-toggle").is_checked()
    hold = page.locator(".rtw-ptt-hold")
    await hold.hover()
    await page.mouse.down()
    await page.wait_for_function(meter_below("> 5"), timeout=15_000)  # a tone, held
    await page.locator(".rtw-root").first.screenshot(path=str(shots / "lab-ptt-held.png"))
    await page.wait_for_function(meter_below("< 2"), timeout=10_000)  # and past it
    await page.mouse.up()
    await lab.wait_kernel("any(t.text.startswith('I heard') for t in w.transcript)")
    out = await lab.kernel_json("[r.type for r in w.events if r.direction == 'out']")
    commit = out.index("input_audio_buffer.commit")
    assert out[commit + 1] == "response.create"
    assert out.count("input_audio_buffer.commit") == 1  # VAD never committed on its own
    # Off from Python: the page gives turn detection back, and the kernel's config follows.
    await lab.kernel("w.push_to_talk = False")
    await lab.wait_kernel("(w.turn_detection or {}).get('type') == 'server_vad'")
    await page.locator(".rtw-ptt-toggle:not(:checked)").wait_for()
    await page.locator(".rtw-root").first.screenshot(path=str(shots / "lab-ptt-off.png"))
    # And the other way: the page's controls set the traits Python reads.
    await page.locator(".rtw-ptt-toggle").check()
    await lab.wait_kernel("w.push_to_talk and w.turn_detection is None")
    await page.locator(".rtw-volume").fill("0.4")
    await lab.wait_kernel("w.volume == 0.4")


async def test_a_recording_played_from_python_is_heard_as_a_spoken_turn(
    lab: Lab, workdir: Path
) -> None:
    # Muted, so only the recording speaks (the fake microphone's tone would too); server VAD
    # finds the turn in it and the local server answers it, as it would a person.
    write_speech_wav(workdir / "question.wav")
    cell = (
        "from realtime_widget import RealtimeWidget\n"
        'w = RealtimeWidget(endpoint="local", transcription="gpt-transcribe")\n'
        "w.mute()\n"
        "w"
    )
    await lab.open(write_notebook(workdir, "audio_play.ipynb", [cell]))
    await lab.run_all()
    await lab.kernel("ready = w.wait_for('session.created'); w.connect(); await ready")
    await lab.kernel("await w.play('question.wav')", timeout=60_000)
    await lab.wait_kernel("any(t.text.startswith('I heard') for t in w.transcript)")
    transcript = await lab.kernel_json("[[t.role, t.text] for t in w.transcript]")
    assert transcript[0][0] == "user" and "seconds of speech" in transcript[0][1]
    assert transcript[-1][0] == "assistant" and transcript[-1][1].startswith("I heard")
    # Refused with why when there is no call.
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
    refused = await lab.kernel(
        "try:\n    w.play('question.wav')\nexcept RuntimeError as exc:\n    print(exc)"
    )
    assert "connect first" in refused


# In the kernel: the recording's figures, with numpy (the local extra's).
RECORDING_FIGURES = """
import json, wave, numpy as np
def _rms(x):
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0
def _pitch(x):
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
    return float(np.fft.rfftfreq(len(x), 1 / 24000)[int(np.argmax(spectrum[1:])) + 1])
_user = next(t for t in w.transcript if t.role == 'user')
_reply = next(t for t in w.transcript if t.role == 'assistant')
_both = w.recording.to_numpy()
w.recording.save('call.wav')
with wave.open('call.wav') as _wav:
    _saved = [_wav.getnchannels(), _wav.getframerate(), _wav.getnframes()]
print(json.dumps({
    'seconds': w.recording.duration, 'frames': len(w.recording), 'saved': _saved,
    'user_seconds': _user.audio.duration, 'user_channel': _user.audio.channel,
    'user_rms': _rms(_user.audio.to_numpy()), 'user_pitch': _pitch(_user.audio.to_numpy()),
    'reply_seconds': _reply.audio.duration, 'reply_channel': _reply.audio.channel,
    'reply_rms': _rms(_reply.audio.to_numpy()),
    'model_during_user': _rms(w.recording.model.to_numpy()[
        _user.audio._start:_user.audio._start + len(_user.audio)]),
    'user_during_reply': _rms(w.recording.user.to_numpy()[
        _reply.audio._start:_reply.audio._start + len(_reply.audio)]),
    'left_rms': _rms(_both[:, 0]), 'right_rms': _rms(_both[:, 1]),
    'user_peak': int(np.abs(_user.audio.to_numpy()).max()),
}))
"""


async def test_a_recorded_call_keeps_both_sides_cut_per_turn_and_plays_in_the_page(
    lab: Lab, workdir: Path
) -> None:
    # Muted, so the user's side is only the played recording: a 1 s 440 Hz tone.
    write_speech_wav(workdir / "question.wav")
    cell = (
        "from realtime_widget import RealtimeWidget\n"
        'w = RealtimeWidget(endpoint="local", transcription="gpt-transcribe", record=True)\n'
        "w.mute()\n"
        "w"
    )
    await lab.open(write_notebook(workdir, "audio_record.ipynb", [cell, "w.recording"]))
    await lab.run_all()
    await lab.kernel("ready = w.wait_for('session.created'); w.connect(); await ready")
    await lab.kernel("await w.play('question.wav')", timeout=60_000)
    await lab.wait_kernel("any(t.text.startswith('I heard') for t in w.transcript)")
    await lab.wait_kernel("w.events.filter('output_audio_buffer.stopped')")
    # Hung up, the page sends what it still holds; the recording then covers the call.
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
    await lab.wait_kernel("w.recording.duration > 4.5")
    figures = json.loads(await lab.kernel(RECORDING_FIGURES))
    print("recording:", figures)
    assert figures["saved"] == [2, 24_000, figures["frames"]]  # a stereo WAV of all of it
    # The user's turn: the tone, on the user's channel, at its pitch, a few seconds long.
    assert figures["user_channel"] == "user" and 1.0 < figures["user_seconds"] < 4.5
    assert figures["user_rms"] > 1_000 and abs(figures["user_pitch"] - 440) < 15
    assert abs(figures["user_peak"] - 0.3 * 32767) < 0.02 * 32767  # as sent, no gain
    # The reply: the model's voice on the model's channel.
    assert figures["reply_channel"] == "model" and figures["reply_seconds"] > 0.5
    assert figures["reply_rms"] > 300
    # Aligned and apart: each side is quiet while the other speaks.
    assert figures["model_during_user"] < figures["reply_rms"] / 10
    assert figures["user_during_reply"] < figures["user_rms"] / 10

    # The Transcript view plays each spoken turn from the kernel's recording.
    page = lab.page
    for role in ("user", "assistant"):
        await page.locator(f".rtw-{role} .rtw-play-turn").first.click()
        await page.locator(f".rtw-{role} .rtw-play-turn.rtw-playing").first.wait_for(timeout=15_000)
    # And w.recording plays in a cell: its WAV came as a binary buffer.
    await page.evaluate(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            panel.content.activeCellIndex = 1;
            return window.jupyterapp.commands.execute('notebook:run-cell');
        }"""
    )
    seconds = await page.wait_for_function(
        """(expected) => {
            const audio = document.querySelector('audio.rtw-player');
            const d = audio && audio.duration;
            return d && Number.isFinite(d) && Math.abs(d - expected) < 0.5 ? d : null;
        }""",
        arg=figures["seconds"],
        timeout=15_000,
    )
    assert await seconds.json_value() > 4.5
    assert "you left, the model right" in await page.locator(".rtw-player-label").inner_text()
