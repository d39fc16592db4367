"""GPT-Live end to end: JupyterLab, Chromium with its fake microphone, the local server's
/v1/live. The kernel relays the page's gathered offer; the call is up at session.started; the
fake microphone's tone is heard and answered while it loops (full duplex); a Python tool runs
through Responses delegation; hang-up is graceful (session.close, then session.closed with the
usage); reconnect carries the conversation on as the new session's input."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Lab, write_notebook

pytestmark = pytest.mark.parametrize("lab", ["lab"], indirect=True)

CELL = (
    "from realtime_widget import RealtimeWidget\n"
    "def get_weather(city: str) -> str:\n"
    '    """The weather in a city."""\n'
    '    return f"sunny in {city}"\n'
    'w = RealtimeWidget(endpoint="local", model="gpt-live-1.1", tools=[get_weather])\n'
    "w"
)


async def test_a_live_call_talks_runs_a_tool_closes_with_usage_and_reconnects(
    lab: Lab, workdir: Path
) -> None:
    name = write_notebook(workdir, "live.ipynb", [CELL])
    await lab.open(name)
    await lab.run_all()
    await lab.page.locator(".rtw-connect").click()
    await lab.wait_kernel("w.status == 'connected'")
    assert (await lab.kernel("print(w.call_id)")).strip().startswith("live_")
    # The page waited for session.started before calling the call up.
    types = await lab.kernel_json("w.events.types()")
    assert types[0] == "session.started"
    # Both ways: the looping tone is captioned and answered in voice, in Python and the page.
    await lab.wait_kernel(
        "any(t.role == 'assistant' and t.text.startswith('I heard') for t in w.transcript)",
        timeout=30,
    )
    await lab.page.locator(".rtw-assistant", has_text="I heard").first.wait_for()
    await lab.page.locator(".rtw-user", has_text="seconds of speech").first.wait_for()
    await lab.page.wait_for_function(
        "async () => { for (const c of window.__rtw_calls) {"
        " const a = await c.inboundAudio(); if (a.energy > 0) return true; } return false; }"
    )
    # A Python tool through delegation, shown in the page's transcript too.
    await lab.kernel('w.append_instructions("call get_weather with city=Paris")')
    await lab.wait_kernel(
        "any('The get_weather tool returned: sunny in Paris' in t.text for t in w.transcript)"
    )
    await lab.page.locator(".rtw-turn", has_text="sunny in Paris").first.wait_for()
    assert await lab.kernel_json("[r.name for r in w.tool_results]") == ["get_weather"]
    # The Session panel shows what GPT-Live fixed at creation, read-only, and says why.
    await lab.page.locator(".rtw-tab", has_text="Session").first.click()
    await lab.page.locator(".rtw-session-source", has_text="can't change during a call").wait_for()
    assert await lab.page.locator(".rtw-session-instructions").is_disabled()
    # Graceful hang-up: session.close, then session.closed (with the usage), then closed.
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
    closed = await lab.kernel_json("w.events.filter('session.closed')[-1].event")
    assert closed["reason"] == "close_requested"
    sent = await lab.kernel_json("[r.type for r in w.events if r.direction == 'out']")
    assert "session.close" in sent
    totals = await lab.kernel_json("w.totals")
    assert totals["seconds"] >= 0 and totals["cost"] is not None
    assert await lab.kernel_json("w.error") == ""
    # Reconnect: a new session, the conversation so far as its input.
    first = await lab.kernel_json("w.call_id")
    await lab.kernel("w.reconnect()")
    await lab.wait_kernel(f"w.status == 'connected' and w.call_id != {first!r}")
    history = await lab.kernel_json("w.server_session['input']")
    assert any("sunny in Paris" in item["content"][0]["text"] for item in history)
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
