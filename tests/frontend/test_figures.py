"""Each reply's latency and cost, and the session totals, as the kernel measured them: the views
show its "turn" messages and the synced totals next to a real local-server conversation."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from .helpers import CALL, connect, kernel_saw, quiet, say, shot
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e


async def test_replies_show_their_latency_and_cost_and_the_controls_the_totals(
    page: Page, kernel: FakeKernel
) -> None:
    totals = page.locator("#view-1 .rtw-totals")
    assert await totals.is_hidden()  # nothing to say before the first turn
    await connect(page, kernel)
    await say(kernel, "hello")
    done = await kernel_saw(page, "in", "response.done")
    response_id = done["response"]["id"]
    reply = page.locator("#view-1 .rtw-assistant", has_text="You said: hello")
    await reply.wait_for()
    assert await reply.locator(".rtw-turn-meta").is_hidden()  # until the kernel says
    # What RealtimeWidget sends and syncs after that response.done (see _send_turn_figures).
    for figures in (
        {"response_id": "resp_other", "latency_ms": 9, "cost": 1},
        {"latency_ms": 5},  # malformed (no response id): ignored
        {"response_id": response_id, "latency_ms": 321.4, "cost": 0.00213},
    ):
        await kernel.deliver({"kind": "turn", "figures": figures})
    await page.evaluate(
        """() => rtw.model.set("totals", {turns: 1, total_tokens: 1234, cost: 0.00213,
                                          cost_complete: true, median_latency_ms: 321.4})"""
    )
    await reply.locator(".rtw-turn-meta", has_text="321 ms · $0.0021").wait_for()
    await totals.filter(has_text="1 turn · 1,234 tokens · $0.0021 · median 321 ms").wait_for()
    # Both views, the user's turn carries no figures.
    await page.locator("#view-2 .rtw-assistant .rtw-turn-meta", has_text="321 ms").wait_for()
    assert await page.locator("#view-1 .rtw-user .rtw-turn-meta:not([hidden])").count() == 0
    await page.evaluate(
        """() => rtw.model.set("totals", {turns: 2, total_tokens: 10, cost: 1.5,
                                          cost_complete: false, median_latency_ms: 1500})"""
    )
    await totals.filter(has_text="2 turns · 10 tokens · ≥ $1.50 · median 1.50 s").wait_for()
    # Nothing charged (the local server), figures assumed: both said where the cost is shown.
    await page.evaluate(
        """() => rtw.model.set("totals", {turns: 2, total_tokens: 10, cost: 0.5,
            cost_complete: true, prices_assumed: true, cost_basis: "openai-equivalent",
            median_latency_ms: 1500})"""
    )
    await totals.filter(has_text="$0.50 if on OpenAI (assumed prices)").wait_for()
    await shot(page, "figures-light")


async def test_the_transcript_keeps_its_rows_as_the_conversation_grows(
    page: Page, kernel: FakeKernel
) -> None:
    await connect(page, kernel)
    await quiet(page, kernel)
    await say(kernel, "first")
    await page.locator("#view-1 .rtw-assistant", has_text="You said: first").wait_for()
    await kernel_saw(page, "in", "response.done")
    first = await page.evaluate_handle("() => document.querySelector('#view-1 .rtw-user')")
    await say(kernel, "second")
    await page.locator("#view-1 .rtw-assistant", has_text="You said: second").wait_for()
    # The first turn's row was not rebuilt: a delta redraws only what changed.
    assert await page.evaluate(
        "(row) => row.isConnected && row === document.querySelector('#view-1 .rtw-user')", first
    )
    texts = await page.eval_on_selector_all(
        "#view-1 .rtw-turn .rtw-text", "(nodes) => nodes.map((n) => n.textContent)"
    )
    assert texts == ["first", "You said: first", "second", "You said: second"]


async def test_the_controls_say_while_the_server_hears_the_user_speak(
    page: Page, kernel: FakeKernel
) -> None:
    # Record every change of the indicator, with the last speech event the call had by then
    # (observer callbacks run after the event's listeners, the controls' included).
    await page.evaluate(
        """(call) => {
            window.speakingSeen = [];
            let last = null;
            eval(call).on('event', (r) => {
                if (r.dir === 'in' && r.event.type.startsWith('input_audio_buffer.speech'))
                    last = r.event.type;
            });
            const el = document.querySelector('#view-1 .rtw-speaking');
            new MutationObserver(() => window.speakingSeen.push({hidden: el.hidden, last}))
                .observe(el, {attributes: true, attributeFilter: ['hidden']});
        }""",
        CALL,
    )
    await connect(page, kernel)
    await kernel_saw(page, "in", "input_audio_buffer.speech_stopped")  # the fake mic's tone
    seen = await page.evaluate("() => window.speakingSeen")
    shown = [s for s in seen if not s["hidden"]]
    hidden_after = [s for s in seen[seen.index(shown[0]) :] if s["hidden"]]
    assert shown[0]["last"] == "input_audio_buffer.speech_started"
    assert hidden_after and hidden_after[0]["last"] == "input_audio_buffer.speech_stopped"
