"""The front end under a streaming session, in Chromium: the event log holds 20,000 events and
100 more arrive every second through the call's real path (recorded, batched to the kernel,
folded into the log and the transcript) while its tab is open.

Frame times come from a requestAnimationFrame loop in the page; the baseline is the same page,
the same 20,000-event log on screen, with nothing arriving, measured in this run. Long tasks
(over 50 ms, PerformanceObserver) are counted too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Page, async_playwright
from tests.conftest import CHROMIUM_FLAGS
from tests.frontend.kernel import FakeKernel
from tests.frontend.page_server import serve_page

from stats import median, p95

# Figures that are inputs or follow from them (a rate a timer sets, a ring size): settings.
SETTINGS = {"frontend.events_appended", "frontend.events_per_s", "frontend.log_records_held"}

CALL = "[...window.__rtw_calls][0]"

# A page-side measurement: frame intervals (ms) for `seconds`, appending `rate` events a second
# meanwhile (0 = the baseline). Events mimic a voice session: mostly transcript deltas of a few
# items, with the other server events in between, and some client events.
MEASURE = """async ([seconds, rate]) => {
  const call = __CALL__;
  const frames = [];
  const work = [];
  let longTasks = 0;
  const observer = new PerformanceObserver((list) => { longTasks += list.getEntries().length; });
  observer.observe({ entryTypes: ["longtask"] });
  let n = 0;
  const next = () => {
    n += 1;
    const item = "item_" + Math.floor(n / 40);
    const kind = n % 10;
    if (kind < 7) return ["in", { type: "response.output_audio_transcript.delta", item_id: item,
                                   response_id: "resp_" + item, delta: " word" + n }];
    if (kind < 9) return ["in", { type: "rate_limits.updated", event_id: "event_" + n,
                                   rate_limits: [{ name: "tokens", limit: 1, remaining: 1 }] }];
    return ["out", { type: "response.create", event_id: "evt_" + n }];
  };
  const timer = rate > 0 ? setInterval(() => {
    const [dir, event] = next();
    const t0 = performance.now();
    call.record(dir, event);
    work.push(performance.now() - t0);
  }, 1000 / rate) : null;
  const end = performance.now() + seconds * 1000;
  await new Promise((resolve) => {
    let last = performance.now();
    const tick = (t) => {
      frames.push(t - last);
      last = t;
      if (t < end) requestAnimationFrame(tick); else resolve();
    };
    requestAnimationFrame(tick);
  });
  if (timer) clearInterval(timer);
  observer.disconnect();
  return { frames: frames.slice(1), appended: rate > 0 ? n : 0, longTasks, work };
}""".replace("__CALL__", CALL)


async def _prefill(page: Page, count: int) -> None:
    await page.evaluate(
        """(count) => {
             const call = __CALL__;
             for (let n = 0; n < count; n++) {
               call.log.append({dir: n % 4 ? "in" : "out", t: Date.now(),
                                event: {type: "conversation.item.added", event_id: "e" + n,
                                        item: {id: "item_pre" + n, type: "message"}}});
             }
           }""".replace("__CALL__", CALL),
        count,
    )


async def _measure(page: Page, seconds: float, rate: int) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(MEASURE, [seconds, rate])
    return result


async def run(quick: bool) -> dict[str, float]:
    seconds = 5.0 if quick else 20.0
    runner, url = await serve_page()
    figures: dict[str, float] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS
            )
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            kernel = FakeKernel(page, "http://127.0.0.1:9/v1", "sk-bench")  # never asked
            await kernel.attach()
            await page.goto(url)
            await page.wait_for_function("() => window.rtw?.ready === true", timeout=10_000)
            await _prefill(page, 20_000)
            await page.locator("#view-1 .rtw-tab[data-tab='log']").click()
            await page.locator("#view-1 .rtw-log-count", has_text="20,000").wait_for()
            idle = await _measure(page, seconds, 0)
            streaming = await _measure(page, seconds, 100)
            held = await page.evaluate(f"() => {CALL}.log.records")
            await kernel.close()
            await browser.close()
            if errors:
                raise RuntimeError(f"errors in the page: {errors}")
    finally:
        await runner.cleanup()
    for name, result in (("idle", idle), ("streaming", streaming)):
        figures[f"frontend.frame_ms_{name}_median"] = median(result["frames"])
        figures[f"frontend.frame_ms_{name}_p95"] = p95(result["frames"])
        figures[f"frontend.frame_ms_{name}_max"] = max(result["frames"])
        figures[f"frontend.long_tasks_{name}"] = float(result["longTasks"])
    # performance.now() is coarse (0.1 ms) outside isolated pages: the mean over all is exact.
    work = streaming["work"]
    figures["frontend.record_us_per_event_mean"] = sum(work) / max(len(work), 1) * 1000
    figures["frontend.events_appended"] = float(streaming["appended"])
    figures["frontend.events_per_s"] = streaming["appended"] / seconds
    figures["frontend.log_records_held"] = float(held)
    figures["frontend.frame_p95_streaming_over_idle"] = p95(streaming["frames"]) / p95(
        idle["frames"]
    )
    return figures


if __name__ == "__main__":
    print(asyncio.run(run(quick=True)))
