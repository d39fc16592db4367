"""The widget end to end: JupyterLab, headless Chromium with a fake microphone, the local server.

The fake microphone loops 1.5 s of silence, 1 s of a 440 Hz tone and 2.5 s of silence, so server
VAD hears a "turn" every five seconds; tests that are not about the microphone turn VAD off.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Lab, write_notebook
from .jupyter import JupyterServer

QUIET = "turn_detection=None"  # VAD off: the looping fake microphone must not barge in


def widget_cell(*options: str, name: str = "w") -> str:
    args = ", ".join(['endpoint="local"', *options])
    return f"from realtime_widget import RealtimeWidget\n{name} = RealtimeWidget({args})\n{name}"


async def click_connect(lab: Lab, index: int = 0) -> None:
    await lab.page.locator(".rtw-connect").nth(index).click()


async def calls_in_page(lab: Lab) -> int:
    return int(await lab.page.evaluate("() => (window.__rtw_calls || new Set()).size"))


async def test_the_quickstart_runs_top_to_bottom(lab: Lab) -> None:
    await lab.open("quickstart.ipynb")
    await lab.run_all()
    # Its last cell disconnects: by then the reply must be in Python and in the page.
    await lab.wait_kernel("'widget' in globals() and widget.status == 'closed'", timeout=60)
    transcript = await lab.kernel_json("[[t.role, t.text] for t in widget.transcript]")
    assert transcript[:2] == [["user", "hello"], ["assistant", "You said: hello"]]
    # The tools section: the kernel ran the notebook's function and the reply used its result.
    # The quickstart mutes the microphone before it types, so the fake microphone's looping tone
    # cannot barge in and cut a reply short: the whole reply is there, every run.
    assert transcript[-1] == ["assistant", "The to_fahrenheit tool returned: 69.8"]
    assert [t[0] for t in transcript].count("user") == 2
    # The usage handler's print shows in the cell that registered it, not in a hidden log.
    await lab.page.locator(".jp-OutputArea-output", has_text="tokens:").first.wait_for()
    calls = await lab.kernel_json("[[c.name, c.output] for c in widget.conversation.calls()]")
    assert calls == [["to_fahrenheit", "69.8"]]
    totals = await lab.kernel_json("widget.totals")
    assert totals["turns"] >= 3 and totals["cost"] > 0
    # The page shows what the kernel measured: the totals, and each reply's latency and cost.
    await lab.page.locator(".rtw-totals", has_text=f"{totals['turns']} turns").first.wait_for()
    await lab.page.locator(".rtw-assistant .rtw-turn-meta", has_text="$").first.wait_for()
    await lab.page.locator(".rtw-assistant", has_text="You said: hello").first.wait_for()
    types = await lab.kernel_json("widget.events.types()")
    assert types[0] == "session.created" and "response.done" in types
    # Listen back: the call was recorded, and its recording and a reply play in the notebook.
    assert await lab.kernel_json("widget.transcript[1].audio.channel") == "model"
    assert await lab.kernel_json("widget.recording.duration") > 2
    await lab.page.wait_for_function(
        """() => {
            const players = [...document.querySelectorAll('audio.rtw-player')];
            return players.length >= 2 && players.every((a) => a.duration > 0.2);
        }""",
        timeout=30_000,
    )
    label = await lab.page.locator(".rtw-player-label").first.inner_text()
    assert "you left, the model right" in label
    # The GPT-Live section: the same tool ran through Live's delegation, and the hang-up was
    # graceful (session.closed with the usage, the seconds counted).
    await lab.wait_kernel("'live' in globals() and live.status == 'closed'", timeout=60)
    live = await lab.kernel_json("[[r.name, r.output] for r in live.tool_results]")
    assert live == [["to_fahrenheit", "69.8"]]
    assert await lab.kernel_json("live.events.types()[0]") == "session.started"
    assert await lab.kernel_json("live.events.filter('session.closed')[-1].event['reason']") == (
        "close_requested"
    )
    assert "seconds" in await lab.kernel_json("live.totals")
    errors = await lab.page.locator(".jp-OutputArea-output[data-mime-type*='error']").count()
    assert errors == 0


@pytest.mark.parametrize("mode", ["ephemeral", "relay"])
async def test_connect_in_both_modes_and_say_hello(lab: Lab, workdir: Path, mode: str) -> None:
    name = write_notebook(workdir, f"modes_{mode}.ipynb", [widget_cell(QUIET, f'mode="{mode}"')])
    await lab.open(name)
    await lab.run_all()
    await lab.page.locator(".rtw-connect").wait_for()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    await lab.wait_kernel("len(w.events.filter('session.created')) == 1")
    assert (await lab.kernel("print(w.call_id)")).strip().startswith("rtc_")
    await lab.kernel('w.say("hello")')
    await lab.page.locator(".rtw-assistant", has_text="You said: hello").wait_for()
    await lab.wait_kernel("any(t.text == 'You said: hello' for t in w.transcript)")
    # Every event went through the kernel with both clocks.
    record = await lab.kernel_json(
        "[(r.direction, r.t_browser > 0, r.t_kernel >= r.t_browser - 5000) "
        "for r in w.events.filter('response.create')][0]"
    )
    assert record == ["out", True, True]


async def test_the_fake_microphone_drives_vad_and_gets_an_answer(lab: Lab, workdir: Path) -> None:
    name = write_notebook(workdir, "vad.ipynb", [widget_cell('transcription="whisper-1"')])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    await lab.wait_kernel(
        "len(w.events.filter('input_audio_buffer.speech_stopped')) >= 1", timeout=20
    )
    await lab.wait_kernel(
        "any(t.role == 'assistant' and t.text.startswith('I heard') for t in w.transcript)",
        timeout=20,
    )
    await lab.wait_kernel(
        "len(w.events.filter('conversation.item.input_audio_transcription.completed')) >= 1"
    )


async def test_the_page_plays_non_silent_model_audio(lab: Lab, workdir: Path) -> None:
    name = write_notebook(workdir, "audio.ipynb", [widget_cell(QUIET)])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    await lab.kernel('w.say("please say something long enough to be heard clearly")')
    await lab.wait_kernel("len(w.events.filter('output_audio_buffer.stopped')) >= 1", timeout=20)
    energy = await lab.page.evaluate(
        "async () => { const [c] = [...window.__rtw_calls]; return (await c.inboundAudio()); }"
    )
    assert energy["packets"] > 50 and energy["energy"] > 0.001, energy


async def test_two_views_of_one_widget_make_one_call(lab: Lab, workdir: Path) -> None:
    name = write_notebook(workdir, "views.ipynb", [widget_cell(QUIET), "w"])
    await lab.open(name)
    await lab.run_all()
    await lab.page.locator(".rtw-root").nth(1).wait_for()
    await click_connect(lab, 1)
    await lab.wait_kernel("w.status == 'connected'")
    assert await calls_in_page(lab) == 1
    await lab.kernel('w.say("one call")')
    for view in range(2):
        await lab.page.locator(".rtw-assistant", has_text="You said: one call").nth(view).wait_for()


async def test_disconnect_releases_the_microphone(lab: Lab, workdir: Path) -> None:
    name = write_notebook(workdir, "release.ipynb", [widget_cell(QUIET)])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    live = "() => { const [c] = [...window.__rtw_calls]; return c.micTrack?.readyState ?? null; }"
    assert await lab.page.evaluate(live) == "live"
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
    assert await lab.page.evaluate(live) is None  # tracks stopped and dropped
    assert await lab.page.locator("audio[data-rtw]").count() == 0


async def test_a_refused_key_shows_the_providers_message(lab: Lab, workdir: Path) -> None:
    cell = (
        "from realtime_widget import RealtimeWidget\n"
        "from realtime_widget.local import LocalServer\n"
        "guarded = LocalServer(api_key='sk-right').start()\n"
        "w = RealtimeWidget(endpoint=guarded.base_url, api_key='sk-wrong-key-for-test')\n"
        "w"
    )
    name = write_notebook(workdir, "refused.ipynb", [cell])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'error'")
    error = json.loads(await lab.kernel("import json; print(json.dumps(w.error))"))
    assert error.startswith("[key]") and "401" in error and "Incorrect API key" in error
    await lab.page.locator(".rtw-error", has_text="Incorrect API key").wait_for()


async def test_connect_again_after_a_disconnect(lab: Lab, workdir: Path) -> None:
    name = write_notebook(workdir, "again.ipynb", [widget_cell(QUIET)])
    await lab.open(name)
    await lab.run_all()
    await lab.page.locator(".rtw-connect").wait_for()
    call_ids = []
    for _ in range(2):
        await lab.kernel("ready = w.wait_for('session.created'); w.connect(); await ready")
        call_ids.append((await lab.kernel("print(w.call_id)")).strip())
        await lab.kernel("w.disconnect()")
        await lab.wait_kernel("w.status == 'closed'")
    assert len(set(call_ids)) == 2 and all(c.startswith("rtc_") for c in call_ids)


async def test_the_model_calls_a_python_tool_defined_in_the_notebook(
    lab: Lab, workdir: Path
) -> None:
    cells = [
        widget_cell(QUIET),
        "@w.tool\n"
        "def get_weather(city: str) -> str:\n"
        '    """The weather in a city."""\n'
        '    return f"sunny and 21 degrees in {city}"\n',
    ]
    name = write_notebook(workdir, "tools.ipynb", cells)
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    await lab.kernel('w.say("please call get_weather with city=Paris")')
    # The kernel ran the tool, answered, and asked for the spoken follow-up.
    await lab.wait_kernel(
        "any(t.role == 'assistant' and 'sunny and 21 degrees in Paris' in t.text "
        "for t in w.transcript)",
        timeout=30,
    )
    calls = await lab.kernel_json(
        "[[c.name, c.arguments, c.output] for c in w.conversation.calls()]"
    )
    assert calls == [["get_weather", '{"city": "Paris"}', "sunny and 21 degrees in Paris"]]
    spoken = await lab.kernel_json(
        "[r.event['transcript'] for r in w.events.filter('response.output_audio_transcript.done')]"
    )
    assert spoken[-1] == "The get_weather tool returned: sunny and 21 degrees in Paris"
    await lab.page.locator(".rtw-tool", has_text="get_weather").first.wait_for()
    await lab.page.locator(".rtw-tool", has_text="sunny and 21 degrees").first.wait_for()


async def test_a_call_killed_mid_turn_reconnects_with_nothing_lost(lab: Lab, workdir: Path) -> None:
    name = write_notebook(workdir, "recover.ipynb", [widget_cell(QUIET, "auto_reconnect=True")])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    await lab.kernel('w.say("remember the word marmalade")')
    await lab.wait_kernel("len(w.events.filter('response.done')) == 1")
    first_call = (await lab.kernel("print(w.call_id)")).strip()
    await lab.kernel('w.say("tell me a long story about a lighthouse keeper and the sea")')
    await lab.wait_kernel("len(w.events.filter('output_audio_buffer.started')) >= 2")
    # Kill the call on the server mid-turn, as a dropped connection would.
    await lab.kernel(
        "import httpx\nhttpx.post(w.endpoint.hangup_url(w.call_id), headers=w.endpoint.headers())"
    )
    await lab.wait_kernel(
        f"w.call_id not in ('', {first_call!r}) and w.status == 'connected'", timeout=30
    )
    snapshot = await lab.kernel_json(
        "[w.events[0].type, len(w.events), [i.id for i in w.conversation.items][:3]]"
    )
    assert snapshot[0] == "session.created"  # the first call's events are still there
    replayed = await lab.kernel_json(
        "[r.event['item'].get('id') for r in w.events.filter('conversation.item.create', 'out')]"
    )
    ids = snapshot[2]
    assert ids[0] in replayed and ids[1] in replayed  # the first turn was replayed by id
    await lab.kernel('w.say("what did I ask you to remember?")')
    # The reply grows from deltas: wait for the whole of it, not for the turn to appear.
    await lab.wait_kernel(
        "'You said: what did I ask you to remember?' in [t.text for t in w.transcript]",
        timeout=30,
    )
    transcript = await lab.kernel_json("[t.text for t in w.transcript]")
    assert transcript[:2] == [
        "remember the word marmalade",
        "You said: remember the word marmalade",
    ]


def test_the_favicons_swapped_on_every_kernel_status_come_from_the_browsers_cache(
    jupyter: JupyterServer,
) -> None:
    # JupyterLab swaps the tab's favicon on each busy/idle, twice per message from the page.
    for name in ("favicon.ico", "favicon-busy-1.ico"):
        response = jupyter.api("GET", f"/static/favicons/{name}")
        assert response.status_code == 200, name
        assert "immutable" in response.headers["Cache-Control"], response.headers
    # The rest of jupyter_server's static files keep its own policy.
    other = jupyter.api("GET", "/static/favicon.ico")
    assert other.status_code == 200
    assert "immutable" not in other.headers.get("Cache-Control", "")
