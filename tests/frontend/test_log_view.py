"""The event log view in Chromium against the local server: both directions, folded deltas,
filters, search, JSON and copy, keyboard, history for a later view, and virtualization."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page

from .helpers import CALL, WAIT, connect, kernel_saw, open_tab, say, shot
from .kernel import FakeKernel

pytestmark = pytest.mark.e2e

ROWS = "#view-1 .rtw-log-row:not([hidden])"


async def visible_rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = await page.eval_on_selector_all(
        ROWS,
        """(nodes) => nodes.map((n) => ({dir: n.dataset.dir, type: n.dataset.type,
             times: n.querySelector('.rtw-log-times').textContent,
             text: n.querySelector('.rtw-log-text').textContent}))""",
    )
    return rows


async def test_the_log_shows_both_directions_folds_deltas_filters_and_copies(
    page: Page, kernel: FakeKernel
) -> None:
    # Muted: the fake microphone's looping tone would add speech turns of its own, and how many
    # rows the virtualised list shows would then depend on when the tone landed.
    await kernel.deliver({"kind": "mute", "muted": True})
    await connect(page, kernel)
    await say(kernel, "hello")
    await kernel_saw(page, "in", "response.done")
    await open_tab(page, "#view-1", "log")
    await page.locator(ROWS, has_text="response.done").wait_for(timeout=WAIT)
    rows = await visible_rows(page)
    types = [(r["dir"], r["type"]) for r in rows]
    assert not any(t.startswith("input_audio_buffer.") for _, t in types), types
    # The first row may be scrolled out of the window the list renders: find it by its type.
    await page.locator("#view-1 .rtw-log-type").select_option("session.created")
    await page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 1")
    assert [(r["dir"], r["type"]) for r in await visible_rows(page)] == [("in", "session.created")]
    await page.locator("#view-1 .rtw-log-type").select_option("")
    await page.locator(ROWS, has_text="response.done").wait_for(timeout=WAIT)
    assert ("out", "conversation.item.create") in types and ("out", "response.create") in types
    # Newest at the bottom: the response ends after it was asked for.
    assert types.index(("out", "response.create")) < types.index(("in", "response.done"))
    # The reply's transcript deltas are one row with a count and the joined text.
    deltas = [r for r in rows if r["type"] == "response.output_audio_transcript.delta"]
    assert len(deltas) == 1, deltas
    assert deltas[0]["times"].startswith("×") and int(deltas[0]["times"][1:]) >= 2
    assert deltas[0]["text"] == "You said: hello"
    await shot(page, "log-light")

    # Direction filter.
    await page.locator("#view-1 .rtw-log-dir").select_option("out")
    await page.wait_for_function(
        f"() => [...document.querySelectorAll('{ROWS}')].every((n) => n.dataset.dir === 'out')"
    )
    out = await visible_rows(page)
    assert {r["type"] for r in out} >= {"conversation.item.create", "response.create"}
    await page.locator("#view-1 .rtw-log-dir").select_option("")

    # Type filter.
    await page.locator("#view-1 .rtw-log-type").select_option("response.done")
    await page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 1")
    assert [r["type"] for r in await visible_rows(page)] == ["response.done"]
    await page.locator("#view-1 .rtw-log-type").select_option("")

    # Search (in the JSON of every event, case-insensitive).
    await page.locator("#view-1 .rtw-log-search").fill("YOU SAID: HELLO")
    await page.wait_for_function(
        f"() => document.querySelectorAll('{ROWS}').length > 0 && "
        f"[...document.querySelectorAll('{ROWS}')].every((n) => n.dataset.type !== "
        "'session.created')"
    )
    found = {r["type"] for r in await visible_rows(page)}
    assert "response.output_audio_transcript.delta" in found and "response.done" in found
    await page.locator("#view-1 .rtw-log-count", has_text=" of ").wait_for()
    await page.locator("#view-1 .rtw-log-search").fill("")
    await page.locator("#view-1 .rtw-log-count", has_text=" events in ").wait_for()

    # A row opens its JSON; Copy puts that JSON on the clipboard.
    await page.evaluate(
        """() => { window.copied = null;
             navigator.clipboard.writeText = async (t) => { window.copied = t; }; }"""
    )
    await page.locator("#view-1 .rtw-log-row[data-type='response.create']").click()
    detail = page.locator("#view-1 .rtw-log-detail")
    await detail.wait_for()
    shown = json.loads(await detail.locator(".rtw-log-json").text_content() or "")
    assert shown == {"type": "response.create"}
    await detail.locator(".rtw-log-copy").click()
    await page.wait_for_function("() => window.copied !== null")
    assert json.loads(await page.evaluate("() => window.copied")) == shown
    await detail.locator(".rtw-log-copy", has_text="Copied").wait_for()
    # A folded row opens as the array of its deltas.
    await page.locator(
        "#view-1 .rtw-log-row[data-type='response.output_audio_transcript.delta']"
    ).click()
    folded = json.loads(await detail.locator(".rtw-log-json").text_content() or "")
    assert isinstance(folded, list) and "".join(e["delta"] for e in folded) == "You said: hello"
    await shot(page, "log-detail-light")
    await detail.locator(".rtw-log-close").click()
    assert await detail.is_hidden()


async def test_the_log_is_reachable_by_keyboard(page: Page, kernel: FakeKernel) -> None:
    await connect(page, kernel)
    await kernel_saw(page, "in", "session.created")
    # Tabs: focus the selected one, arrows move between them (roving tabindex, aria-selected).
    await page.locator("#view-1 .rtw-tab[data-tab='transcript']").focus()
    await page.keyboard.press("ArrowRight")
    log_tab = page.locator("#view-1 .rtw-tab[data-tab='log']")
    assert await log_tab.get_attribute("aria-selected") == "true"
    assert await page.evaluate("() => document.activeElement.dataset.tab") == "log"
    assert await page.locator("#view-1 .rtw-panel-transcript").is_hidden()
    await page.locator(ROWS).first.wait_for()
    # The list takes focus; ArrowUp selects the newest event and opens it; Escape closes.
    await page.locator("#view-1 .rtw-log-list").focus()
    await page.keyboard.press("End")
    detail = page.locator("#view-1 .rtw-log-detail")
    await detail.wait_for()
    assert await page.locator("#view-1 .rtw-log-row.rtw-selected").count() == 1
    await page.keyboard.press("Home")
    first = json.loads(await detail.locator(".rtw-log-json").text_content() or "")
    assert first["type"] == "session.created"
    await page.keyboard.press("Escape")
    await detail.wait_for(state="hidden")


async def test_a_view_rendered_later_shows_the_log_so_far(page: Page, kernel: FakeKernel) -> None:
    await connect(page, kernel)
    await say(kernel, "history")
    await kernel_saw(page, "in", "response.done")
    await page.evaluate("() => rtw.render('view-late')")
    await open_tab(page, "#view-late", "log")
    late = page.locator("#view-late .rtw-log-row:not([hidden])")
    await late.filter(has_text="response.done").wait_for()
    await late.filter(has_text="session.created").wait_for()


async def test_the_log_keeps_the_last_20000_events_and_renders_only_what_is_visible(
    page: Page, kernel: FakeKernel
) -> None:
    await open_tab(page, "#view-1", "log")
    took = await page.evaluate(
        f"""() => {{
             const call = {CALL};
             const t0 = performance.now();
             for (let n = 0; n < 20500; n++) {{
               call.log.append({{dir: n % 3 ? "in" : "out", t: Date.now(),
                                 event: {{type: "test.event." + (n % 7), n}}}});
             }}
             return performance.now() - t0;
           }}"""
    )
    print(f"appending 20,500 events: {took:.0f} ms")
    count = page.locator("#view-1 .rtw-log-count")
    await count.filter(has_text="20,000 events").wait_for()
    # Only the visible rows (and a few more) exist in the DOM.
    assert await page.locator("#view-1 .rtw-log-row").count() < 60
    # Scrolled to the newest; the oldest 500 were dropped.
    scrolled = await page.locator("#view-1 .rtw-log-list").evaluate(
        "(n) => n.scrollHeight - n.scrollTop - n.clientHeight"
    )
    assert scrolled < 22
    await page.locator("#view-1 .rtw-log-list").focus()
    await page.keyboard.press("End")
    last = json.loads(await page.locator("#view-1 .rtw-log-json").text_content() or "")
    assert last["n"] == 20499
    await page.keyboard.press("Home")
    await page.wait_for_function(
        "() => JSON.parse(document.querySelector('#view-1 .rtw-log-json').textContent).n === 500"
    )
    assert await page.locator("#view-1 .rtw-log-list").evaluate("(n) => n.scrollTop") == 0
    # Scroll to the middle: the rows there are drawn, still few of them.
    await page.locator("#view-1 .rtw-log-list").evaluate(
        "(n) => { n.scrollTop = n.scrollHeight / 2; }"
    )
    await page.wait_for_function(
        f"""() => [...document.querySelectorAll('{ROWS}')].some((n) =>
             n.style.transform === 'translateY(' + (10000 * 22) + 'px)')"""
    )
    assert await page.locator("#view-1 .rtw-log-row").count() < 60
    # Search finds one event among 20,000.
    await page.locator("#view-1 .rtw-log-search").fill('"n":12345}')
    await count.filter(has_text="1 of 20,000 rows").wait_for()
    displayed = "(nodes) => nodes.filter((n) => n.offsetHeight > 0).length"
    assert await page.eval_on_selector_all("#view-1 .rtw-log-row", displayed) == 1
    await shot(page, "log-20000-search")
