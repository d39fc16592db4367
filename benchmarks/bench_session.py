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


def per_event_us(messages: list[dict[str, Any]], receive: Any) -> list[float]:
    """Microseconds per event, one figure per comm message."""
    figures = []
    for content in messages:
        started = time.perf_counter()
        receive(content)
        figures.append((time.perf_counter() - started) / len(content["events"]) * 1e6)
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
    messages = batches(list(synthetic_events(count)))

    widget, browser = _widget()
    floor = _Floor()
    gc.collect()
    times = per_event_us(messages, browser.post)
    base = per_event_us(messages, lambda content: _post(floor, content))
    turns = len(widget.metrics.turns)
    widget.close()
    floor.close()

    figures = {
        "session.events": float(count),
        "session.turns": float(turns),
        "session.us_per_event_median": median(times),
        "session.us_per_event_p95": p95(times),
        "session.baseline_us_per_event_median": median(base),
        "session.us_per_event_over_baseline": median(times) / median(base),
        "session.events_per_s": 1e6 / median(times),
    }
    half, whole = count // 2, count
    memory = memory_profile(count, [half // 2, half, whole])
    figures.update(memory)
    # What stays per turn once the ring is full: the conversation's items and per-turn metrics.
    grown = memory[f"session.retained_mib_at_{whole // 1000}k"]
    grown -= memory[f"session.retained_mib_at_{half // 1000}k"]
    added_items = memory[f"session.items_at_{whole // 1000}k"]
    added_items -= memory[f"session.items_at_{half // 1000}k"]
    figures["session.retained_bytes_per_item_after_ring_full"] = grown * 2**20 / max(added_items, 1)
    figures["session.retained_bytes_per_event_after_ring_full"] = grown * 2**20 / (whole - half)
    return figures
