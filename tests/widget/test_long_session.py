"""A long session through the kernel's side keeps what the session says, not every event: the
log is a ring, deltas fold into their items. (benchmarks/bench_session.py measures the same at
100,000 events.)"""

from __future__ import annotations

import gc
import tracemalloc

from realtime_widget import RealtimeWidget

from .browser import FakeBrowser
from .synthetic import batches, synthetic_events


def test_memory_after_the_ring_fills_grows_only_with_the_conversation() -> None:
    messages = batches(list(synthetic_events(12_000)))
    widget = RealtimeWidget(endpoint="local", log_size=2_000)
    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", call_id="rtc_long")
    # What the kernel sends goes to a real front end and is gone; the fake must not hoard it.
    widget.comm.send = lambda *args, **kwargs: None  # type: ignore[method-assign]
    tracemalloc.start()
    try:
        marks: list[tuple[int, int]] = []  # (retained bytes, conversation items)
        for index, content in enumerate(messages, 1):
            browser.post(content)
            if index * len(content["events"]) in (4_000, 12_000):
                gc.collect()
                marks.append((tracemalloc.get_traced_memory()[0], len(widget.conversation.items)))
    finally:
        tracemalloc.stop()
    assert len(widget.events) == 2_000
    (before, items_before), (after, items_after) = marks
    per_item = (after - before) / (items_after - items_before)
    # 8,000 more events added ~700 items; what stays is bounded by them (measured ~850 B each),
    # nowhere near keeping the events (a recorded event is ~600 B as a Python dict).
    assert per_item < 2_500, per_item
    assert (after - before) / 8_000 < 300
    # The session itself is all there: every turn's items, in order, transcripts folded.
    assert widget.conversation.items[0].id.startswith("item_")
    assistant = [i for i in widget.conversation.items if i.role == "assistant"]
    assert len(assistant) == len(widget.metrics.turns) > 500
    assert all(i.text for i in assistant)
    widget.close()
