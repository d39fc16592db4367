"""Experiments against the local server, headless: the issue's example as written, checks that
pass and fail, the cost cap across runs, a failed run among good ones, files that load again,
and an experiment run by nbclient with no browser at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from realtime_widget import Experiment, Results, Scenario, check
from realtime_widget.workbench import Run
from realtime_widget.workbench.audio import RATE, pcm16
from tests.conftest import write_speech_wav


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny and 21 degrees in {city}"


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_speech_wav(tmp_path_factory.mktemp("audio") / "question.wav")  # 5 s, 48 kHz


async def test_the_example_runs_every_variant_on_every_scenario_with_its_checks(
    spoken: Path,
) -> None:
    exp = Experiment(
        variants={
            "terse": {"instructions": "Be brief."},
            "warm": {"instructions": "Be warm.", "voice": "marin"},
        },
        scenarios=[
            Scenario("greeting", ["Hi there"], expect=[check.contains("hi there")]),
            Scenario(
                "weather",
                ["call get_weather with city=Paris"],
                expect=[check.called("get_weather", city="Paris"), check.contains("sunny")],
            ),
            Scenario("spoken", [str(spoken)], expect=[check.regex(r"heard 5\.0 seconds")]),
        ],
        tools=[get_weather],
        repeats=2,
        max_cost=2.00,
        endpoint="local",
    )
    results = await exp.run(concurrency=4)
    assert len(results) == 2 * 3 * 2
    # In plan order, whatever order they finished in.
    assert [(r.variant, r.scenario, r.repeat) for r in results] == [
        (v, s, k)
        for v in ("terse", "warm")
        for s in ("greeting", "weather", "spoken")
        for k in (0, 1)
    ]
    assert all(r.passed for r in results), [(r.scenario, r.error, r.checks) for r in results]
    weather = results.filter(variant="warm", scenario="weather")[0]
    assert weather.tool_calls == [
        {
            "name": "get_weather",
            "arguments": {"city": "Paris"},
            "output": "sunny and 21 degrees in Paris",
        }
    ]
    assert weather.replies == ["The get_weather tool returned: sunny and 21 degrees in Paris"]
    # Each variant's own session went to the server.
    warm = results.filter(variant="warm")[0]
    sent = [e["event"] for e in warm.events if e["dir"] == "out"]
    assert sent[0]["type"] == "session.update"
    assert sent[0]["session"]["instructions"] == "Be warm."
    assert sent[0]["session"]["audio"]["output"]["voice"] == "marin"
    # Figures per run, and compared per variant.
    assert all(r.cost > 0 and r.input_tokens > 0 and r.latency_ms is not None for r in results)
    summary = results.summary()
    assert set(summary) == {"terse", "warm"} and summary["terse"]["pass_rate"] == 1.0
    frame = results.to_dataframe()
    assert len(frame) == 12 and "check: contains('hi there')" in frame.columns
    assert list(results.compare().index) == ["terse", "warm"]


async def test_a_check_that_fails_says_why_and_a_broken_check_fails_too() -> None:
    def raises(run: Run) -> bool:
        raise KeyError("nope")

    exp = Experiment(
        variants={"only": {}},
        scenarios=[
            Scenario(
                "hello",
                "hello",
                expect=[
                    check.contains("goodbye"),
                    check.not_contains("hello"),
                    check.called("get_weather"),
                    check.latency_below(0),
                    check.cost_below(0),
                    lambda run: (len(run.replies) == 1, "one reply"),
                    raises,
                ],
            )
        ],
        endpoint="local",
    )
    (run,) = await exp.run(progress=False)
    assert not run.error and not run.passed
    verdicts = run.checks
    assert verdicts["contains('goodbye')"] == (False, "not in 'You said: hello'")
    assert verdicts["not_contains('hello')"][0] is False
    assert verdicts["called('get_weather')"] == (
        False,
        "get_weather was not called (called: no tool)",
    )
    assert verdicts["latency_below(0)"][0] is False
    assert verdicts["cost_below(0)"][0] is False
    assert verdicts["<lambda>"] == (True, "one reply")
    assert verdicts["raises"] == (False, "the check raised KeyError: 'nope'")


async def test_max_cost_stops_the_runs_not_yet_started_and_says_why() -> None:
    exp = Experiment(
        variants={"only": {}},
        scenarios=[Scenario("hello", ["hello"])],
        repeats=4,
        max_cost=0.0001,  # less than one run costs
        endpoint="local",
    )
    results = await exp.run(concurrency=1, progress=False)
    assert not results[0].error and results[0].cost > 0.0001
    for skipped in results.runs[1:]:
        assert skipped.error.startswith("Not run: the experiment's max_cost ($0.0001) was spent")
        assert skipped.cost == 0 and skipped.events == []


async def test_a_failed_run_is_recorded_with_its_error_and_the_others_go_on() -> None:
    exp = Experiment(
        variants={"good": {}, "unknown-model": {"model": "gpt-no-such-model"}},
        scenarios=[Scenario("hello", ["hello"])],
        endpoint="local",
        turn_timeout=10,
    )
    good, bad = (await exp.run(progress=False)).runs
    assert good.passed and good.replies == ["You said: hello"]
    assert bad.error and not bad.passed
    assert "gpt-no-such-model" in bad.error


def test_mistakes_fail_when_the_experiment_is_made_naming_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Variant 'live': .*gpt-live"):
        Experiment(variants={"live": {"model": "gpt-live-1"}}, scenarios=[Scenario("a", "hi")])
    with pytest.raises(FileNotFoundError, match="no audio file at"):
        Scenario("spoken", [str(tmp_path / "missing.wav")])
    with pytest.raises(ValueError, match="must differ"):
        Experiment(variants={"a": {}}, scenarios=[Scenario("x", "hi"), Scenario("x", "ho")])
    with pytest.raises(TypeError, match="a function of the run"):
        Scenario("x", "hi", expect=["contains hello"])  # type: ignore[list-item]


async def test_results_save_and_load_again_with_no_key_and_no_call(tmp_path: Path) -> None:
    exp = Experiment(
        variants={"only": {}},
        scenarios=[Scenario("hello", ["hello"], expect=[check.contains("hello")])],
        endpoint="local",
    )
    results = await exp.run(progress=False)
    folder = results.save(tmp_path / "runs")
    loaded = Results.load(folder)
    assert [r.to_json() for r in loaded] == [r.to_json() for r in results]
    run = loaded[0]
    assert run.passed and run.transcript == [("user", "hello"), ("assistant", "You said: hello")]
    assert [r.type for r in run.log.filter("response.done")] == ["response.done"]
    with pytest.raises(FileNotFoundError, match=r"Results\.save"):
        Results.load(tmp_path / "nothing")


def test_audio_turns_are_24khz_mono_pcm16_from_wav_files_and_arrays(spoken: Path) -> None:
    import numpy as np

    pcm = pcm16(str(spoken))  # 5 s at 48 kHz, read and resampled
    assert len(pcm) == 5 * RATE * 2
    # At its level: a 0.3 tone stays one (averaging the file's one channel gave floats, once
    # taken for [-1, 1] samples and clipped to a square wave).
    samples = np.frombuffer(pcm, dtype="<i2")
    assert 0.29 * 32767 < samples.max() < 0.31 * 32767
    stereo_ints = np.stack([samples, samples // 2], axis=1)
    averaged = np.frombuffer(pcm16((stereo_ints, RATE)), dtype="<i2")
    assert np.abs(averaged.astype(int) - (samples.astype(int) * 3 // 4)).max() <= 1
    stereo = np.zeros((RATE, 2), dtype=np.float32)
    stereo[:, 0] = 0.5
    mono = np.frombuffer(pcm16((stereo, RATE)), dtype="<i2")
    assert len(mono) == RATE and abs(int(mono[0]) - round(0.25 * 32767)) <= 1
    with pytest.raises(ValueError, match="not a WAV file"):
        pcm16(b"not audio")


def test_an_experiment_runs_under_nbclient_with_no_browser(tmp_path: Path) -> None:
    cells = [
        "from realtime_widget import Experiment, Scenario, check\n"
        "exp = Experiment(\n"
        "    variants={'a': {}, 'b': {'instructions': 'Be warm.'}},\n"
        "    scenarios=[Scenario('hi', ['hello'], expect=[check.contains('hello')])],\n"
        "    endpoint='local', repeats=2)\n"
        "results = await exp.run(concurrency=2)",
        "import json\nprint(json.dumps({v: s['pass_rate'] for v, s in results.summary().items()}))",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    execute(notebook, tmp_path)
    printed = notebook.cells[1].outputs[0]["text"]
    assert json.loads(printed) == {"a": 1.0, "b": 1.0}


async def test_the_grid_shows_every_run_with_its_marks_figures_voice_and_log() -> None:
    import io
    import wave

    exp = Experiment(
        variants={"terse": {}, "warm": {"instructions": "Be warm."}},
        scenarios=[
            Scenario("greeting", ["hello"], expect=[check.contains("hello")]),
            Scenario("farewell", ["bye"], expect=[check.contains("hello")]),
        ],
        endpoint="local",
    )
    results = await exp.run(progress=False)
    voice = results[0].audio()
    with wave.open(io.BytesIO(voice)) as wav:  # the model's voice, from the socket's deltas
        assert wav.getframerate() == 24_000 and wav.getnframes() > 24_000 // 10
    grid = results.show().data
    assert grid.count("<th>terse</th>") == 1 and grid.count("<th>farewell</th>") == 1
    assert grid.count("<audio") == 4  # every run spoke
    assert grid.count("✓ contains(&#x27;hello&#x27;)") == 2  # passed where it said hello
    assert "✗ contains(&#x27;hello&#x27;): not in &#x27;You said: bye&#x27;" in grid
    assert "50% passed" in grid and "events</summary>" in grid


def test_the_prompt_lab_notebook_runs_top_to_bottom_under_nbclient(tmp_path: Path) -> None:
    """The shipped notebook, as written, with no browser: every check passes on the local
    server (its replies are predictable)."""
    source = Path(__file__).resolve().parents[2] / "notebooks" / "prompt-lab.ipynb"
    notebook = nbformat.read(source, as_version=4)
    execute(notebook, tmp_path)
    runs = next(o for o in notebook.cells[3].outputs if o["output_type"] == "execute_result")
    assert runs["data"]["text/plain"].startswith("<Results: 18 runs, 18 passed, 0 failed")
    grid = next(o for o in notebook.cells[8].outputs if o["output_type"] == "execute_result")
    assert "<table" in grid["data"]["text/html"]
    # A run replayed: its transcript back from the saved events, and the widget's views.
    replayed = "".join(o.get("text", "") for o in notebook.cells[12].outputs)
    assert "**user:** Hi there" in replayed
    shown = next(o for o in notebook.cells[12].outputs if o["output_type"] == "execute_result")
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]


def execute(notebook: Any, folder: Path) -> None:
    """Run a notebook top to bottom in a kernel, no browser (as nbclient or papermill would)."""
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
