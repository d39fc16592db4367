"""A long session in the page: 44,000 server events (the recorded voice, text and barge-in turns
of tests/data with fresh ids, at their real proportions) through the call's real receive path,
with one view on the event log and one on the transcript. Once the log's ring (20,000 events) is
full, the JS heap grows only with the transcript's turns, not with the events.
(benchmarks/bench_load.py measures an hour of it.)"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from tests.widget.synthetic import synthetic_events

from .helpers import CALL, open_tab

pytestmark = pytest.mark.e2e

RECORD = f"""async (events) => {{
  const call = {CALL};
  for (const event of events) call.record("in", event);
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}}"""
HELD = f"""() => ({{ log: {CALL}.log.records, turns: {CALL}.transcript.list.length }})"""


async def open_streaming_page(page: Page, page_url: str) -> None:
    """The test page, ready, sending to a kernel that forgets what it is sent: the page keeps
    every message for other tests, and a long session's would fill its heap."""
    await page.goto(page_url)
    await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
    await page.evaluate("() => { rtw.model.send = (m) => { JSON.stringify(m); }; }")


async def test_past_the_log_ring_the_heap_grows_only_with_the_transcript(
    page: Page, page_url: str
) -> None:
    await open_streaming_page(page, page_url)
    await open_tab(page, "#view-1", "log")
    cdp = await page.context.new_cdp_session(page)

    async def mark() -> dict[str, Any]:
        for _ in range(2):  # a second pass frees what the first one's finalizers left
            await cdp.send("HeapProfiler.collectGarbage")
        usage = await cdp.send("Runtime.getHeapUsage")
        return {"heap": usage["usedSize"], **await page.evaluate(HELD)}

    events = list(synthetic_events(44_000))
    marks = {0: await mark()}
    for start in range(0, len(events), 2_000):
        await page.evaluate(RECORD, events[start : start + 2_000])
        if start + 2_000 in (20_000, *range(24_000, 44_001, 4_000)):
            marks[start + 2_000] = await mark()
    assert marks[44_000]["log"] == 20_000
    # Filling the ring costs what the events cost (measured ~390 B each); past it, what stays is
    # the transcript (~25 B an event, ~410 B a turn), at every mark: evicted events are let go
    # (they were held until they outnumbered the ring: +7 MiB by 40,000 events, then a drop).
    filling = (marks[20_000]["heap"] - marks[0]["heap"]) / 20_000
    assert filling > 150, filling
    for at in (28_000, 32_000, 36_000, 40_000, 44_000):
        grown = marks[at]["heap"] - marks[24_000]["heap"]
        assert grown / (at - 24_000) < 0.25 * filling, (at, grown)
        assert grown / (marks[at]["turns"] - marks[24_000]["turns"]) < 1_500, (at, grown)


async def test_the_transcript_keeps_a_flat_dom_however_long_the_call(
    page: Page, page_url: str
) -> None:
    await open_streaming_page(page, page_url)
    view = page.locator("#view-1 .rtw-transcript")
    events = list(synthetic_events(20_000))
    rows_seen = []
    for start in range(0, len(events), 5_000):
        await page.evaluate(RECORD, events[start : start + 5_000])
        rows_seen.append(await view.locator(".rtw-turn").count())
    turns = await page.evaluate(HELD)
    assert turns["turns"] > 1_000
    # Only what is in view (and a margin) is in the DOM, however many turns there are.
    assert max(rows_seen) < 60, rows_seen
    # It follows the newest turn...
    newest = await page.evaluate(f"() => {CALL}.transcript.list.at(-1).id")
    await page.locator(f"#view-1 .rtw-turn[data-item='{newest}']").wait_for()
    # ...and scrolling to the top brings the first back, still with few rows.
    first = await page.evaluate(f"() => {CALL}.transcript.list[0].id")
    await view.evaluate("(el) => { el.scrollTop = 0; }")
    await page.locator(f"#view-1 .rtw-turn[data-item='{first}']").wait_for()
    assert await view.locator(".rtw-turn").count() < 60
    # New turns don't pull a reader back down.
    await page.evaluate(RECORD, list(synthetic_events(400)))
    assert await view.evaluate("(el) => el.scrollTop") < 50


async def test_a_hidden_transcript_draws_nothing_and_catches_up_when_shown(
    page: Page, page_url: str
) -> None:
    await open_streaming_page(page, page_url)
    await open_tab(page, "#view-1", "log")
    hidden = page.locator("#view-1 .rtw-transcript .rtw-turn")
    before = await hidden.count()
    await page.evaluate(RECORD, list(synthetic_events(2_000)))
    newest = await page.evaluate(f"() => {CALL}.transcript.list.at(-1).id")
    # The other view, on screen, follows the newest turn; the hidden one has drawn nothing.
    await page.locator(f"#view-2 .rtw-turn[data-item='{newest}']").wait_for()
    assert await hidden.count() == before
    await open_tab(page, "#view-1", "transcript")
    await page.locator(f"#view-1 .rtw-turn[data-item='{newest}']").wait_for()


async def test_a_delta_keeps_the_shown_list_and_a_new_turn_renews_it(
    page: Page, page_url: str
) -> None:
    # Views key their layout on the list: rebuilt for a new turn, not for every delta.
    await open_streaming_page(page, page_url)
    kept = await page.evaluate(
        f"""() => {{
          const call = {CALL};
          const item = (id, status) => ({{ type: "conversation.item.added", item: {{ id,
            type: "message", role: "assistant", status, content: [] }} }});
          const delta = (id, text) => ({{ type: "response.output_audio_transcript.delta",
            item_id: id, delta: text }});
          call.record("in", item("item_a", "in_progress"));
          const first = call.transcript.list;
          call.record("in", delta("item_a", "hello"));
          const afterDelta = call.transcript.list;
          call.record("in", item("item_b", "in_progress"));
          const afterTurn = call.transcript.list;
          call.record("in", {{ type: "conversation.item.deleted", item_id: "item_b" }});
          const afterDelete = call.transcript.list;
          return {{ delta: first === afterDelta, turn: afterDelta === afterTurn,
                    texts: afterDelta.map((t) => t.text), ids: afterDelete.map((t) => t.id) }};
        }}"""
    )
    assert kept == {"delta": True, "turn": False, "texts": ["hello"], "ids": ["item_a"]}
