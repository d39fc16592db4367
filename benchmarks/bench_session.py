"""A long synthetic session through the kernel's side: 100,000 server events (the recorded voice,
text and barge-in turns of tests/data, repeated with fresh ids) arrive as the browser sends them,
in batches over the comm, and go through the whole Python side: the event log's ring, the
conversation, the response queue, metrics and handlers.

- time per event, against a baseline measured in the same run: the floor of receiving an event
  at all (the comm message handled by ipywidgets, a record made and kept in a ring);
- peak and retained memory (tracemalloc, after a collection) at checkpoints: what stays must be
  the ring plus what the session says (items, transcripts, per-turn metrics), not the events.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections import deque
from typing import Any

import anywidget
from tests.widget.browser import FakeBrowser
from tests.widget.synthetic import batches, synthetic_events

from realtime_widget import RealtimeWidget
from realtime_widget.messages import parse_browser_message
from realtime_widget.session.log import EventRecord
from stats import median, p95

# Figures that are inputs or follow from them, not measurements: the results keep them apart.
SETTINGS = {"session.events", "session.turns", "session.ring_events"} | {
    f"session.items_at_{k}k" for k in (5, 10, 20, 25, 50, 100)
}


def _widget() -> tuple[RealtimeWidget, FakeBrowser]:
    widget = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", call_id="rtc_bench")
    # What the kernel sends goes to a real front end and is gone; the fake must not hoard it.
    widget.comm.send = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return widget, browser


class _Floor(anywidget.AnyWidget):
    """The baseline: an anywidget that parses the same messages and keeps records in a ring."""

    def __init__(self) -> None:
        super().__init__()
        self.ring: deque[EventRecord] = deque(maxlen=10_000)
        self.on_msg(self._receive)

    def _receive(self, _widget: Any, content: Any, _buffers: list[bytes]) -> None:
        message = parse_browser_message(content)
        now = time.time() * 1000
        for entry in message["events"]:
            self.ring.append(EventRecord(entry["dir"], entry["event"], float(entry["t"]), now))


def _post(target: Any, content: dict[str, Any]) -> None:
    target._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def per_event_us(messages: list[dict[str, Any]], *targets: Any) -> list[list[float]]:
    """Microseconds per event for each target, one figure per comm message. Targets take each
    message in turn, so a machine's slow moment falls on all of them alike."""
    figures: list[list[float]] = [[] for _ in targets]
    for content in messages:
        for target, out in zip(targets, figures, strict=True):
            started = time.perf_counter()
            _post(target, content)
            out.append((time.perf_counter() - started) / len(content["events"]) * 1e6)
    return figures


def memory_profile(count: int, checkpoints: list[int]) -> dict[str, float]:
    """Retained memory (MiB, after gc) at each checkpoint and the peak, for ``count`` events."""
    events = list(synthetic_events(count))
    messages = batches(events)
    del events
    gc.collect()
    tracemalloc.start()
    widget, browser = _widget()
    base = tracemalloc.get_traced_memory()[0]
    figures: dict[str, float] = {}
    received = 0
    wanted = iter(checkpoints)
    mark = next(wanted)
    for content in messages:
        browser.post(content)
        received += len(content["events"])
        if received >= mark:
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - base
            figures[f"session.retained_mib_at_{mark // 1000}k"] = retained / 2**20
            figures[f"session.items_at_{mark // 1000}k"] = len(widget.conversation.items)
            mark = next(wanted, count + 1)
    figures["session.peak_mib"] = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    figures["session.ring_events"] = len(widget.events)
    tracemalloc.stop()
    widget.close()
    return figures


def run(quick: bool) -> dict[str, float]:
    count = 20_000 if quick else 100_000
    half, whole = count // 2, count
    # Memory first, in a clean process: what the timing run leaves behind must not count.
    memory = memory_profile(count, [half // 2, half, whole])
    messages = batches(list(synthetic_events(count)))

    widget, _browser = _widget()
    floor = _Floor()
    # The input is built once and kept: frozen, so the collector's passes over it (which grow
    # with its size, not with the work measured) fall on neither side.
    gc.collect()
    gc.freeze()
    # Both through the same door: the comm message as ipywidgets hands it to the widget.
    times, base = per_event_us(messages, widget, floor)
    gc.unfreeze()
    turns = len(widget.metrics.turns)
    widget.close()
    floor.close()
    tenth = max(len(times) // 10, 1)
    first, last = median(times[:tenth]), median(times[-tenth:])

    figures = {
        "session.events": float(count),
        "session.turns": float(turns),
        "session.us_per_event_median": median(times),
        "session.us_per_event_p95": p95(times),
        "session.baseline_us_per_event_median": median(base),
        "session.us_per_event_over_baseline": median(times) / median(base),
        # Flat in session length: the last tenth of the session against the first.
        "session.us_per_event_first_tenth_median": first,
        "session.us_per_event_last_tenth_median": last,
        "session.last_tenth_over_first": last / first,
        "session.events_per_s": 1e6 / median(times),
    }
    figures.update(memory)
    # What stays per turn once the ring is full: the conversation's items and per-turn metrics.
    grown = memory[f"session.retained_mib_at_{whole // 1000}k"]
    grown -= memory[f"session.retained_mib_at_{half // 1000}k"]
    added_items = memory[f"session.items_at_{whole // 1000}k"]
    added_items -= memory[f"session.items_at_{half // 1000}k"]
    figures["session.retained_bytes_per_item_after_ring_full"] = grown * 2**20 / max(added_items, 1)
    figures["session.retained_bytes_per_event_after_ring_full"] = grown * 2**20 / (whole - half)
    return figures
