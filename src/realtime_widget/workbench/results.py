"""An experiment's results: one :class:`Run` per variant × scenario × repeat, as Python objects,
a table, a comparison per variant, and files that load again with no key."""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
import wave
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..session.log import EventLog, EventRecord

RUNS_FILE = "runs.jsonl"
AUDIO_RATE = 24_000  # the Realtime API's PCM16 output
SHOWN_AUDIO_S = 30  # a grid cell's player holds at most this much of a run's voice


@dataclass
class Run:
    """One session of an experiment: what was said, what the tools did, the figures, the
    checks, and every event (both directions, the kernel's clock)."""

    variant: str
    scenario: str
    repeat: int
    config: dict[str, Any] = field(default_factory=dict)
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (role, text)
    replies: list[str] = field(default_factory=list)  # the model's reply to each turn
    interrupted: list[bool] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # name, arguments, output
    latencies_ms: list[float | None] = field(default_factory=list)  # per response
    duration_ms: float = 0.0  # connect to hang-up
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    error: str = ""  # why the run failed ("" when it ran to the end)
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # {"dir", "t", "event"}

    @property
    def passed(self) -> bool:
        """Ran to the end and passed every check."""
        return not self.error and all(ok for ok, _ in self.checks.values())

    def assert_passed(self) -> None:
        """Raise ``AssertionError`` saying what failed (a pytest case's last line)."""
        if self.error:
            raise AssertionError(f"{self.variant}/{self.scenario}: the run failed: {self.error}")
        failed = [f"{name}: {detail}" for name, (ok, detail) in self.checks.items() if not ok]
        if failed:
            said = " / ".join(self.replies)
            raise AssertionError(
                f"{self.variant}/{self.scenario}: " + "; ".join(failed) + f" (replies: {said!r})"
            )

    @property
    def latency_ms(self) -> float | None:
        """The median of the turns' latencies."""
        known = [t for t in self.latencies_ms if t is not None]
        return statistics.median(known) if known else None

    def audio(self) -> bytes:
        """The model's voice in this run, as a WAV file's bytes (24 kHz mono; empty of frames
        when it only wrote text). From the WebSocket's ``response.output_audio.delta`` events."""
        pcm = b"".join(
            base64.b64decode(e["event"].get("delta") or "")
            for e in self.events
            if e["dir"] == "in" and e["event"].get("type") == "response.output_audio.delta"
        )
        return _wav(pcm)

    def play(self) -> Any:
        """An audio player of the model's voice in this run, for a notebook cell."""
        from IPython.display import Audio

        return Audio(self.audio())  # type: ignore[no-untyped-call]

    @property
    def log(self) -> EventLog:
        """The run's events as an :class:`EventLog` (``.filter(...)``, ``.to_dataframe()``)."""
        log = EventLog(maxlen=max(len(self.events), 1))
        log.extend([EventRecord(e["dir"], e["event"], e["t"], e["t"]) for e in self.events])
        return log

    def row(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "scenario": self.scenario,
            "repeat": self.repeat,
            "passed": self.passed,
            "error": self.error,
            "transcript": "\n".join(f"{role}: {text}" for role, text in self.transcript),
            "tool_calls": ", ".join(
                f"{c['name']}({json.dumps(c.get('arguments'))})" for c in self.tool_calls
            ),
            "latency_ms": self.latency_ms,
            "duration_ms": self.duration_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            **{f"check: {name}": ok for name, (ok, _) in self.checks.items()},
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = {k: list(v) for k, v in self.checks.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        data = dict(data)
        data["transcript"] = [tuple(t) for t in data.get("transcript", [])]
        data["checks"] = {k: (bool(v[0]), str(v[1])) for k, v in data.get("checks", {}).items()}
        return cls(**data)


class Results:
    """The runs of an experiment, in the order variants × scenarios × repeats."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> Run:
        return self.runs[index]

    def __repr__(self) -> str:
        passed = sum(r.passed for r in self.runs)
        failed = sum(bool(r.error) for r in self.runs)
        return f"<Results: {len(self.runs)} runs, {passed} passed, {failed} failed to run>"

    def filter(self, *, variant: str | None = None, scenario: str | None = None) -> list[Run]:
        return [
            r
            for r in self.runs
            if (variant is None or r.variant == variant)
            and (scenario is None or r.scenario == scenario)
        ]

    @property
    def cost(self) -> float:
        return sum(r.cost for r in self.runs)

    def to_dataframe(self) -> Any:
        """A row per run: variant, scenario, repeat, transcript, tool calls, latency, tokens,
        cost, and each check (needs pandas)."""
        import pandas as pd

        return pd.DataFrame([r.row() for r in self.runs])

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per variant: runs, pass rate, median and p95 latency, cost (plain dicts)."""
        out: dict[str, dict[str, Any]] = {}
        for variant in dict.fromkeys(r.variant for r in self.runs):
            runs = self.filter(variant=variant)
            latencies = sorted(t for r in runs for t in r.latencies_ms if t is not None)
            out[variant] = {
                "runs": len(runs),
                "pass_rate": sum(r.passed for r in runs) / len(runs),
                "errors": sum(bool(r.error) for r in runs),
                "median_latency_ms": statistics.median(latencies) if latencies else None,
                "p95_latency_ms": _p95(latencies),
                "cost": sum(r.cost for r in runs),
                "cost_per_run": sum(r.cost for r in runs) / len(runs),
            }
        return out

    def compare(self) -> Any:
        """Per variant, side by side: pass rate, median/p95 latency, cost (a DataFrame)."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.summary(), orient="index")

    def show(self) -> Any:
        """The runs as a grid: a row per scenario, a column per variant; each cell holds its
        runs' check marks, replies, latency, cost, the model's voice and the run's event log."""
        from IPython.display import HTML

        return HTML(self._grid())  # type: ignore[no-untyped-call]

    def _repr_html_(self) -> str:
        return self._grid()

    def _grid(self) -> str:
        variants = list(dict.fromkeys(r.variant for r in self.runs))
        scenarios = list(dict.fromkeys(r.scenario for r in self.runs))
        head = "".join(f"<th>{html.escape(v)}</th>" for v in variants)
        rows = []
        for scenario in scenarios:
            cells = "".join(
                "<td>"
                + "".join(_cell(r) for r in self.filter(variant=v, scenario=scenario))
                + "</td>"
                for v in variants
            )
            rows.append(f"<tr><th>{html.escape(scenario)}</th>{cells}</tr>")
        summary = "".join(
            f"<td>{s['pass_rate']:.0%} passed · {_ms(s['median_latency_ms'])} · "
            f"${s['cost']:.4f}</td>"
            for s in self.summary().values()
        )
        return (
            '<table class="rtw-results" style="border-collapse:collapse;text-align:left">'
            f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}"
            f"<tr><th>all</th>{summary}</tr></tbody></table>"
        )

    def save(self, folder: str | Path) -> Path:
        """Write the runs (one JSON line each, events included) to ``folder``; load them again
        with :meth:`Results.load`, with no key and no call."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        with (path / RUNS_FILE).open("w", encoding="utf-8") as out:
            for run in self.runs:
                out.write(json.dumps(run.to_json()) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Results:
        path = Path(folder)
        file = path / RUNS_FILE if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(
                f"No saved experiment at {file}: Results.save(folder) writes {RUNS_FILE} there."
            )
        with file.open(encoding="utf-8") as lines:
            return cls([Run.from_json(json.loads(line)) for line in lines if line.strip()])


def _wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(AUDIO_RATE)
        wav.writeframes(pcm)
    return out.getvalue()


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _cell(run: Run) -> str:
    """One run in the grid: a mark, the replies, figures, the voice, the checks and the log."""
    if run.error:
        return (
            f'<div style="margin:4px 0"><b title="#{run.repeat}">✗</b> '
            f"<i>{html.escape(run.error)}</i></div>"
        )
    mark = "✓" if run.passed else "✗"
    replies = " / ".join(html.escape(r) for r in run.replies)
    figures = f"{_ms(run.latency_ms)} · ${run.cost:.4f}"
    checks = "".join(
        f"<li>{'✓' if ok else '✗'} {html.escape(name)}"
        + (f": {html.escape(detail)}" if detail and not ok else "")
        + "</li>"
        for name, (ok, detail) in run.checks.items()
    )
    voice = run.audio()
    player = ""
    if len(voice) > 44:  # more than a WAV header
        voice = voice[: 44 + SHOWN_AUDIO_S * AUDIO_RATE * 2]
        src = "data:audio/wav;base64," + base64.b64encode(voice).decode("ascii")
        player = f'<audio controls preload="none" src="{src}" style="height:28px"></audio>'
    log = "".join(
        f"<li>{e['dir']} {html.escape(str(e['event'].get('type')))}</li>" for e in run.events
    )
    return (
        f'<div style="margin:4px 0;padding:4px;border-top:1px solid #ddd">'
        f'<b title="repeat #{run.repeat}">{mark}</b> {replies}<br><small>{figures}</small>'
        f"{player}<ul style='margin:2px 0'>{checks}</ul>"
        f"<details><summary>{len(run.events)} events</summary><ol>{log}</ol></details></div>"
    )


def _p95(ordered: list[float]) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
