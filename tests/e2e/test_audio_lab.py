"""Push-to-talk end to end in JupyterLab: set from Python, held in the Audio tab, answered.

The fake microphone loops a 1 s tone every 5 s (tests/conftest.py). With push-to-talk on, the
page keeps the microphone silent and turn detection off; holding "Hold to talk" across one tone
and letting go commits that audio and asks for the reply, which the local server gives as
"I heard N.N seconds of audio." The kernel holds every step.
"""

from __future__ import annotations

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
