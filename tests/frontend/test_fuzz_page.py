"""Malformed or unexpected input never breaks the front end (property-based): arbitrary server
events arrive through the call's real receive path (the data channel's JSON, as parsed) and
arbitrary kernel messages through the bridge, while every panel is drawn. The page must raise
nothing, and the widget must still work afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.async_api import Page

from tests.widget.test_fuzz import JSON, event_strategy

from .helpers import CALL, connect, open_tab, quiet, say
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e

KERNEL_KINDS = st.sampled_from(["connect", "send", "mute", "turn", "ping", "reply", "bogus"])


def kernel_message() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.dictionaries(
        st.sampled_from(["events", "muted", "figures", "id", "ok", "value", "error"]),
        JSON,
        max_size=4,
    )
    return st.builds(lambda k, f: {**f, "kind": k}, KERNEL_KINDS, fields) | JSON


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples, the same every run (hypothesis drives the generation, not a test:
    the page is async and hypothesis' @given is not)."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found


# Drawn at import, while the suite collects: during a test, the local server's thread (aiortc)
# uses the `random` module, and hypothesis would take that for the strategies' own use.
EVENTS = examples(event_strategy(), 400)
MESSAGES = examples(kernel_message(), 300)

FEED = f"""(batch) => {{
  const call = {CALL};
  for (const event of batch.events) call.record("in", event);
  for (const msg of batch.messages) {{
    if (msg && msg.kind === "connect") continue;  // not a fuzz target: it starts real calls
    rtw.deliver(msg);
  }}
}}"""


async def test_arbitrary_events_and_kernel_messages_never_break_the_page(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    await quiet(page, kernel)
    for tab in ("log", "session", "audio", "compose", "transcript"):
        await open_tab(page, "#view-1", tab)  # every panel drawn and listening
    events, messages = EVENTS, MESSAGES
    for start in range(0, 400, 50):
        batch = {"events": events[start : start + 50], "messages": messages[start : start + 40]}
        await page.evaluate(FEED, json.loads(json.dumps(batch)))
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(null)))")
    # Still a working widget: the log counted every event, and a real turn still shows.
    held = await page.evaluate(f"() => {CALL}.log.records")
    assert held >= 400
    await say(kernel, "still working")
    await page.locator("#view-1 .rtw-assistant", has_text="You said: still working").wait_for()
    # (the page fixture fails the test on any uncaught error in the page)
