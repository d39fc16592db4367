"""The protocol comes from the installed ``openai`` package, whole, and is checked the same way
in Python and in the page.

- Every client event type of the SDK gets examples made from its schema (each required field,
  then every field), and each example is mutated (a field dropped, replaced by another kind of
  value, an unknown one added): Python (``protocol.py``) and the page's interpreter
  (``js/checks.ts``, run in Node) must agree on every case, field and message included.
- The drift test: every server and client event type in the SDK's unions is handled by the
  session or listed as knowingly ignored, with the reason. An SDK upgrade that adds events fails
  here, naming them.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from realtime_widget import protocol
from realtime_widget.session import core

REPO = Path(__file__).resolve().parents[1]
ESBUILD = REPO / "js" / "node_modules" / ".bin" / "esbuild"
REPLACEMENTS: list[Any] = [None, True, 1, -1, 1.5, "", "x", [], ["text", "audio"], {}]


# --- examples made from the schema --------------------------------------------------------------


def examples(node: dict[str, Any], full: bool, depth: int = 0) -> list[Any]:
    """Valid values of a schema node, covering every branch of every union in it (each varied
    one at a time): the fields an object needs (or all of them, ``full``), simple scalars."""
    node = protocol._resolve(node)
    if "anyOf" in node:
        return [e for branch in node["anyOf"] for e in examples(branch, full, depth)]
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"][:2])
    kind = node.get("type")
    if kind == "string":
        return ["x"]
    if kind == "integer":
        return [max(1, node.get("minimum", 1))]
    if kind == "number":
        return [(node.get("minimum", 0.25) + node.get("maximum", 1.0)) / 2]
    if kind == "boolean":
        return [True]
    if kind == "null":
        return [None]
    if kind == "array":
        items = examples(node["items"], full, depth + 1) if "items" in node and depth < 5 else []
        return [[item] for item in items] or [[]]
    required = node.get("required", [])
    chosen = [
        name for name in node.get("properties", {}) if name in required or (full and depth < 5)
    ]
    options = {name: examples(node["properties"][name], full, depth + 1) for name in chosen}
    base = {name: values[0] for name, values in options.items() if values}
    out = [base]
    for name, values in options.items():
        out.extend({**base, name: value} for value in values[1:])
    return out


def bases() -> list[dict[str, Any]]:
    """Valid examples of every client event type in the SDK: each event, each branch of each
    union in it, with the fields it needs and with all its fields."""
    root = protocol.schema()["x-roots"]["client_event"]
    out: list[dict[str, Any]] = []
    for full in (False, True):
        for example in examples(root, full):
            if isinstance(example, dict) and protocol._check(root, example, "") is None:
                out.append(example)
    return out


def mutations(value: Any) -> Iterator[Any]:
    """The value with one thing changed anywhere in it: a field dropped, replaced or added."""
    if isinstance(value, dict):
        yield {**value, "bogus": 1}
        yield {**value, "instructoins": "typo"}
        for key, inner in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for other in REPLACEMENTS:
                yield {**value, key: other}
            for changed in mutations(inner):
                yield {**value, key: changed}
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            for changed in mutations(inner):
                yield [*value[:i], changed, *value[i + 1 :]]


def python_verdict(event: Any) -> dict[str, str] | None:
    error = protocol._check(protocol.schema()["x-roots"]["client_event"], event, "")
    if error is None:
        return None
    return {"code": error.code, "param": error.param, "message": error.message}


@pytest.fixture(scope="module")
def node_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """js/checks.ts bundled for Node, with a runner: cases on stdin, verdicts on stdout."""
    if not ESBUILD.exists():
        pytest.fail("js/node_modules is missing: run ./scripts/setup dev (or cd js && npm ci)")
    if shutil.which("node") is None:
        pytest.fail("Node.js is needed for the page's checks (apt-get install nodejs)")
    folder = tmp_path_factory.mktemp("checks")
    runner = folder / "run.ts"
    runner.write_text(
        f"import {{ Checker }} from {json.dumps(str(REPO / 'js' / 'checks.ts'))};\n"
        "import { readFileSync } from 'fs';\n"
        "const input = JSON.parse(readFileSync(0, 'utf8'));\n"
        "const checker = new Checker(input.schema);\n"
        "process.stdout.write(JSON.stringify(input.cases.map((c: unknown) => {\n"
        "  const p = checker.validate('client_event', c);\n"
        "  return p ? { code: p.code, param: p.param, message: p.message } : null;\n"
        "})));\n"
    )
    bundle = folder / "run.cjs"
    subprocess.run(
        [str(ESBUILD), str(runner), "--bundle", "--platform=node", f"--outfile={bundle}"],
        check=True,
        capture_output=True,
    )
    return bundle


def page_verdicts(bundle: Path, cases: list[Any]) -> list[dict[str, str] | None]:
    payload = json.dumps({"schema": protocol.schema(), "cases": cases})
    done = subprocess.run(
        ["node", str(bundle)], input=payload, capture_output=True, text=True, check=True
    )
    verdicts: list[dict[str, str] | None] = json.loads(done.stdout)
    return verdicts


def test_every_sdk_client_event_type_has_examples() -> None:
    covered = {b["type"] for b in bases()}
    assert covered == set(protocol.client_event_types())


def test_the_page_and_the_kernel_check_every_event_the_same(node_checker: Path) -> None:
    cases: list[Any] = []
    for base in bases():
        cases.append(base)
        cases.extend(mutations(base))
    cases.extend([[], "x", {"type": 1}, {"type": "response.make"}, {}])
    page = page_verdicts(node_checker, cases)
    python = [python_verdict(c) for c in cases]
    refused = sum(v is not None for v in python)
    assert len(cases) > 20_000 and refused > 10_000  # the cases reach far into every event
    differ = [(c, p, k) for c, p, k in zip(cases, page, python, strict=True) if p != k]
    assert not differ, f"{len(differ)} cases differ, e.g. {differ[:3]}"


# --- what the SDK says, and the strictness on top ---------------------------------------------


@pytest.mark.parametrize(
    ("event", "param", "says"),
    [
        ({"type": "response.create", "response": {"instructionz": "x"}},
         "response.instructionz", "Did you mean 'instructions'?"),
        ({"type": "session.update", "session": {"type": "realtime", "temperature": 0.8}},
         "session.temperature", "Unknown parameter"),
        ({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0,
          "audio_end_ms": -5}, "audio_end_ms", ">= 0"),
        ({"type": "session.update", "session": {"type": "realtime",
          "output_modalities": ["text", "audio"]}}, "session.output_modalities",
         "maximum length 1"),
        ({"type": "conversation.item.create", "item": {"type": "message", "role": "wizard",
          "content": []}}, "item.role", "'wizard'"),
    ],
)  # fmt: skip
def test_mistakes_are_named_with_their_field(event: Any, param: str, says: str) -> None:
    with pytest.raises(protocol.SchemaError) as refused:
        protocol.validate_client_event(event)
    assert refused.value.param == param and says in refused.value.message


@pytest.mark.parametrize(
    "event",
    [
        {"type": "response.create",
         "response": {"reasoning": {"effort": "low"}, "parallel_tool_calls": True}},
        {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-4o-mini-transcribe-2025-12-15"}}}}},
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "transcription": {"model": "gpt-transcribe"}}}}},
        {"type": "session.update", "session": {"type": "realtime", "tools": [{
            "type": "mcp", "server_label": "docs", "defer_loading": True,
            "allowed_callers": ["direct"], "tunnel_id": "tun_1"}]}},
        {"type": "conversation.item.create", "item": {"type": "mcp_approval_response",
         "id": "item_1", "approval_request_id": "mcpr_1", "approve": True}},
        {"type": "conversation.item.create", "item": {"type": "message", "role": "assistant",
         "content": [{"type": "output_audio", "transcript": "Hi."}]}},
        {"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime-3",
         "audio": {"output": {"voice": "a-new-voice"}}}},
    ],
)  # fmt: skip
def test_what_the_sdk_accepts_is_accepted(event: dict[str, Any]) -> None:
    protocol.validate_client_event(event)


def test_known_values_are_suggestions_and_deprecated_models_are_warned_of() -> None:
    assert {"gpt-realtime-2", "gpt-realtime-2.1"} <= set(protocol.suggestions("model"))
    assert "marin" in protocol.suggestions("voice")
    assert "gpt-transcribe" in protocol.suggestions("transcription_model")
    before = datetime.date(2026, 12, 3)
    warning = protocol.model_warning("gpt-realtime-mini", before)
    assert warning is not None and "2027-01-20" in warning and "gpt-realtime-2.1-mini" in warning
    after = protocol.model_warning("gpt-realtime", datetime.date(2027, 2, 1))
    assert after is not None and "was shut down" in after
    assert protocol.model_warning("gpt-realtime-2") is None
    assert protocol.is_live_model("gpt-live-1.1") and not protocol.is_live_model("gpt-realtime-2")


# --- the drift test ------------------------------------------------------------------------------


def test_every_event_the_sdk_knows_is_handled_or_knowingly_ignored() -> None:
    handled = core.handled_server_events()
    ignored = core.IGNORED_SERVER_EVENTS
    assert not set(handled) & set(ignored), "an event is both handled and ignored"
    new = [t for t in protocol.server_event_types() if t not in handled and t not in ignored]
    assert not new, (
        f"The installed openai package has server events the widget neither handles nor lists "
        f"as ignored: {new}. Handle them (session/) or add them to IGNORED_SERVER_EVENTS with "
        "the reason."
    )
    gone = [t for t in [*handled, *ignored] if t not in protocol.server_event_types()]
    assert not gone, f"events the SDK no longer has (beta names?): {gone}"
    # The client events the widget checks (the SDK's request types) are those of its union.
    checked = {
        protocol._consts(protocol._resolve(branch))["type"]
        for branch in protocol.schema()["x-roots"]["client_event"]["anyOf"]
    }
    assert checked == set(protocol.client_event_types())
