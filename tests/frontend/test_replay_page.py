"""A saved session replayed into the page: the transcript and the log draw it as if it happened
here, the kernel is not sent it back, and no call is made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.widget.test_replay import saved_session

from .helpers import WAIT, open_tab
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e


async def test_a_replay_draws_the_transcript_and_log_without_a_call(
    page: Page, kernel: FakeKernel, tmp_path: Path
) -> None:
    lines = saved_session(tmp_path / "s.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    events = [{"dir": r["direction"], "t": r["t_kernel"], "event": r["event"]} for r in records]
    before = len(kernel.received)
    await kernel.deliver({"kind": "replay", "events": events})
    transcript = page.locator("#view-1 .rtw-transcript")
    await transcript.get_by_text("You said: hello").wait_for(timeout=WAIT)
    await transcript.get_by_text("hello", exact=True).wait_for(timeout=WAIT)
    await open_tab(page, "#view-1", "log")
    await page.locator("#view-1 .rtw-log-row[data-type='response.done']").wait_for(timeout=WAIT)
    await page.locator(
        "#view-1 .rtw-log-row[data-dir='out'][data-type='response.create']"
    ).wait_for()
    # Nothing went back to the kernel as events, and no call was started.
    assert [m for m in kernel.received[before:] if m.get("kind") == "events"] == []
    assert await page.evaluate("() => rtw.model.get('status') ?? 'idle'") in ("idle", None)
    # A malformed replay is ignored, and the page still works.
    await kernel.deliver({"kind": "replay", "events": [{"dir": "sideways", "t": 0, "event": {}}]})
    await page.locator("#view-1 .rtw-log-row[data-type='response.done']").wait_for()
