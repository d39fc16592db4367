"""How the page batches received events for the kernel (js/bridge.ts): a lone event leaves at
once; a stream that arrives spread out, one event per task as a data channel delivers it, goes
many events to a message, every event kept and in order."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from .helpers import CALL

pytestmark = pytest.mark.e2e

STREAM = f"""async (count) => {{
  const call = {CALL};
  const messages = [];
  rtw.model.send = (m) => {{ if (m.kind === "events") messages.push(m.events); }};
  await new Promise((resolve) => setTimeout(resolve, 50));  // a quiet moment
  const before = messages.length;
  call.record("in", {{ type: "response.created", response: {{ id: "resp_s" }} }});
  const lone = messages.length - before === 1
    && messages.at(-1).some((r) => r.event.type === "response.created");
  // One event per task, about half a millisecond apart, for the rest of the stream.
  const channel = new MessageChannel();
  let sent = 0;
  await new Promise((resolve) => {{
    channel.port1.onmessage = () => {{
      const until = performance.now() + 0.5;
      while (performance.now() < until) {{}}
      call.record("in", {{ type: "response.output_text.delta", response_id: "resp_s",
                           delta: `w${{sent}} ` }});
      sent += 1;
      if (sent < count) channel.port2.postMessage(null);
      else resolve();
    }};
    channel.port2.postMessage(null);
  }});
  const deltas = () => messages.flat()
    .filter((r) => r.event.type === "response.output_text.delta").map((r) => r.event.delta);
  const deadline = performance.now() + 10_000;  // the last batch leaves: wait for it
  while (deltas().length < count && performance.now() < deadline) {{
    await new Promise((resolve) => setTimeout(resolve, 5));
  }}
  return {{ lone, sizes: messages.slice(before).map((m) => m.length),
           deltas: deltas() }};
}}"""


async def test_a_lone_event_leaves_at_once_and_a_spread_out_stream_in_few_messages(
    page: Page, page_url: str
) -> None:
    await page.goto(page_url)
    await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
    got = await page.evaluate(STREAM, 300)
    assert got["lone"] is True  # sent, alone, before record() returned
    assert got["deltas"] == [f"w{i} " for i in range(300)]
    # One event per task would be 300 messages (each a busy/idle pair in the kernel): a message
    # at most every 8 ms over the stream's ~150+ ms is a few dozen.
    assert len(got["sizes"]) < 60, got["sizes"]
