"""Long synthetic sessions: the recorded local-server turns of tests/data, repeated with fresh
ids, as the browser's bridge sends them (batches of events in comm messages)."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
TURNS = ("voice_turn", "text_turn", "barge_in")
BATCH = 16  # events per comm message: what the browser's bridge sends under a steady stream
ID = re.compile(r'"((?:item|resp|event|call|conv)_[A-Za-z0-9]+)"')


def _recorded(name: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{name}.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    # Server events only: the client's own sends would be refused by the response queue replay.
    return [e["event"] for e in events if e["direction"] == "in" and "session" not in e["event"]]


def synthetic_events(count: int) -> Iterator[dict[str, Any]]:
    """``count`` server events: recorded turns over and over, each copy with its own ids."""
    yield json.loads((DATA / "voice_turn.jsonl").read_text().splitlines()[0])["event"]
    templates = [json.dumps(e) for name in TURNS for e in _recorded(name)]
    produced = 1
    for copy in itertools.count():
        fresh = rf'"\g<1>x{copy}"'
        for text in templates:
            if produced >= count:
                return
            yield json.loads(ID.sub(fresh, text))
            produced += 1


def batches(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = time.time() * 1000
    return [
        {
            "kind": "events",
            "events": [{"dir": "in", "t": now, "event": e} for e in events[i : i + BATCH]],
        }
        for i in range(0, len(events), BATCH)
    ]
