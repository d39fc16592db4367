"""The widget's panels end to end in JupyterLab: log, composer, session panel, push-to-talk.

Each test runs a notebook against the local server in a real JupyterLab with Chromium, acts on
the panels as a person would, and checks what the kernel holds. Screenshots of the main states,
in the light and the dark theme, go to test-results/screenshots/ (git-ignored) to be looked at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .conftest import Lab, write_notebook

pytestmark = pytest.mark.parametrize("lab", ["lab"], indirect=True)  # JupyterLab's themes

QUIET = "turn_detection=None"  # VAD off: the looping fake microphone must not barge in
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"


def widget_cell(*options: str) -> str:
    args = ", ".join(['endpoint="local"', *options])
    return f"from realtime_widget import RealtimeWidget\nw = RealtimeWidget({args})\nw"


async def start(lab: Lab, workdir: Path, name: str, *options: str) -> None:
    """Open a notebook with one widget, run it and connect with the widget's button."""
    await lab.open(write_notebook(workdir, name, [widget_cell(*options)]))
    await lab.run_all()
    await lab.page.locator(".rtw-connect").click()
    await lab.wait_kernel("w.status == 'connected'")


async def set_theme(lab: Lab, theme: str) -> None:
    await lab.page.evaluate(
        "(theme) => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    light = "true" if theme == LIGHT else "false"
    await lab.page.wait_for_function(
        f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=15_000
    )
    # The theme's stylesheet is in: the widget's background is the theme's layout colour.
    await lab.page.wait_for_function(
        """() => {
             const root = document.querySelector('.rtw-root');
             if (!root) return true;
             const probe = document.createElement('div');
             probe.style.color = 'var(--jp-layout-color1)';
             document.body.append(probe);
             const want = getComputedStyle(probe).color;
             probe.remove();
             return getComputedStyle(root).backgroundColor === want;
           }""",
        timeout=15_000,
    )


async def shot(lab: Lab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await lab.page.locator(".rtw-root").first.screenshot(path=str(SHOTS / f"lab-{name}.png"))


@pytest.fixture()
async def light_after(lab: Lab) -> AsyncIterator[None]:
    """Put the light theme back (JupyterLab keeps the theme in its settings, across tests)."""
    yield
    if await lab.page.evaluate("() => document.body.dataset.jpThemeLight === 'false'"):
        await set_theme(lab, LIGHT)


async def test_the_log_filters_what_the_kernel_saw(
    lab: Lab, workdir: Path, light_after: None
) -> None:
    await start(lab, workdir, "panel_log.ipynb", QUIET)
    await lab.kernel('w.say("hello")')
    await lab.wait_kernel("len(w.events.filter('response.done')) == 1")
    page = lab.page
    await page.locator(".rtw-tab[data-tab='log']").click()
    rows = page.locator(".rtw-log-row:not([hidden])")
    await rows.filter(has_text="response.done").wait_for()
    await shot(lab, "log-light")
    # Only what was sent: the kernel's two events, as the kernel recorded them.
    await page.locator(".rtw-log-dir").select_option("out")
    sent = await lab.kernel_json("[r.type for r in w.events if r.direction == 'out']")
    await page.wait_for_function(
        """(n) => { const rows = [...document.querySelectorAll('.rtw-log-row:not([hidden])')];
             return rows.length === n && rows.every((r) => r.dataset.dir === 'out'); }""",
        arg=len(sent),
    )
    shown = await rows.evaluate_all("(nodes) => nodes.map((n) => n.dataset.type)")
    assert shown == sent == ["conversation.item.create", "response.create"]
    # Typing in the search box must not reach the notebook's shortcuts (a, b, d d...).
    await page.locator(".rtw-log-dir").select_option("")
    await page.locator(".rtw-log-search").click()
    await page.keyboard.type("abdd")
    await page.locator(".rtw-log-empty", has_text="No event matches").wait_for()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("you said")
    delta = "response.output_audio_transcript.delta"
    await page.locator(f".rtw-log-row:not([hidden])[data-type='{delta}']").wait_for()
    found = await rows.evaluate_all("(nodes) => nodes.map((n) => n.dataset.type)")
    assert delta in found and "session.created" not in found
    notebook_cells = await page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets.length"
    )
    assert notebook_cells == 1
    await page.locator(".rtw-log-search").fill("")
    await page.locator(".rtw-log-row[data-type='response.done']").click()
    await page.locator(".rtw-log-detail").wait_for()
    await set_theme(lab, DARK)
    await shot(lab, "log-dark")


async def test_composer_session_and_audio_panels_through_the_real_kernel(
    lab: Lab, workdir: Path, light_after: None
) -> None:
    await start(lab, workdir, "panel_compose.ipynb", QUIET)
    page = lab.page
    # The composer: checked as typed (the field named), and by the kernel's full schema; the
    # event sent with Ctrl+Enter, with an event_id the kernel sees.
    await page.locator(".rtw-tab[data-tab='compose']").click()
    text = page.locator(".rtw-compose-text")
    await text.fill('{"type": "response.create", "response": {"output_modalities": ["video"]}}')
    await page.locator(".rtw-compose-problem", has_text="output_modalities").wait_for()
    await text.fill('{"type": "response.create", "response": {"tool_choice": "sometimes"}}')
    await page.locator(".rtw-compose-problem", has_text="response.tool_choice").wait_for()
    assert await page.locator(".rtw-compose-send").is_disabled()
    await page.locator(".rtw-compose-template").select_option("conversation.item.create")
    await page.locator(".rtw-compose-problem", has_text="✓").wait_for()
    await text.press("Control+Enter")
    await lab.wait_kernel("len(w.events.filter('conversation.item.create', 'out')) == 1")
    assert await lab.kernel_json("[t.text for t in w.transcript]") == ["Hello!"]
    event_id = await lab.kernel_json(
        "w.events.filter('conversation.item.create', 'out')[0].event['event_id']"
    )
    await page.locator(".rtw-compose-outcome", has_text=f"sent · {event_id}").wait_for()
    # The Session panel: new instructions applied live, and kept for the next call.
    await page.locator(".rtw-tab[data-tab='session']").click()
    instructions = page.locator(".rtw-session-instructions")
    await instructions.fill("Answer like a pirate.")
    await page.locator(".rtw-session-apply").click()
    await page.locator(".rtw-session-status", has_text="Applied").wait_for()
    await lab.wait_kernel("w.server_session.get('instructions') == 'Answer like a pirate.'")
    sent = await lab.kernel_json(
        "[r.event['session'] for r in w.events.filter('session.update', 'out')]"
    )
    assert {"type": "realtime", "instructions": "Answer like a pirate."} in sent
    assert await lab.kernel_json("w.session['instructions']") == "Answer like a pirate."
    # The panel is one more client of the session: Python's update_session() shows in it.
    await lab.kernel("w.update_session(instructions='Answer in one sentence.')")
    await page.wait_for_function(
        """() => document.querySelector('.rtw-session-instructions').value
                   === 'Answer in one sentence.'""",
        timeout=15_000,
    )
    await lab.kernel('w.say("hello")')
    await lab.wait_kernel("len(w.events.filter('response.done')) == 1")
    await page.locator(".rtw-tab[data-tab='transcript']").click()
    await page.locator(".rtw-assistant .rtw-turn-meta:not([hidden])").first.wait_for()
    await page.locator(".rtw-totals", has_text="1 turn").wait_for()
    # The Audio panel shows the session's turn detection (this widget was made with none).
    await page.locator(".rtw-tab[data-tab='audio']").click()
    assert await page.locator(".rtw-detection").input_value() == "off"
    for theme, suffix in ((LIGHT, "light"), (DARK, "dark")):
        await set_theme(lab, theme)
        for tab in ("transcript", "session", "audio", "compose"):
            await page.locator(f".rtw-tab[data-tab='{tab}']").click()
            await page.locator(f".rtw-panel-{tab}").wait_for()
            await shot(lab, f"{tab}-{suffix}")
