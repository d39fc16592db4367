"""Failures only a real notebook front end produces: the page reloaded mid-call, and the kernel
restarted mid-call. After each the kernel (if it lives) says what happened, the conversation it
held is intact, the call is ended on the server, and the page holds no microphone and no call."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Lab, write_notebook
from .test_widget_lab import QUIET, click_connect, widget_cell

pytestmark = pytest.mark.parametrize("lab", ["lab"], indirect=True)


async def test_a_page_reload_mid_call_ends_the_call_and_keeps_the_conversation(
    lab: Lab, workdir: Path
) -> None:
    name = write_notebook(workdir, "reload.ipynb", [widget_cell(QUIET)])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    await lab.kernel('w.say("before the reload")')
    await lab.wait_kernel("len(w.events.filter('response.done')) == 1")
    call_id = (await lab.kernel("print(w.call_id)")).strip()
    await lab.page.reload()
    await lab.open(name)  # JupyterLab reopens the notebook on the same kernel
    await lab.wait_kernel("w.status == 'closed'", timeout=30)
    error = await lab.kernel_json("w.error")
    assert "reloaded or closed" in error and "w.reconnect()" in error
    transcript = await lab.kernel_json("[t.text for t in w.transcript]")
    assert transcript == ["before the reload", "You said: before the reload"]
    # The kernel hung the call up: the server no longer knows it.
    await lab.wait_kernel(
        f"__import__('httpx').post(w.endpoint.hangup_url({call_id!r}), "
        "headers=w.endpoint.headers()).status_code == 404"
    )
    # The reopened page can call again, and reconnect() continues the conversation.
    await lab.kernel("w.reconnect()")
    await lab.wait_kernel("w.status == 'connected'")
    await lab.kernel('w.say("after the reload")')
    await lab.wait_kernel("'You said: after the reload' in [t.text for t in w.transcript]")


async def test_a_kernel_restart_mid_call_ends_the_call_in_the_page(lab: Lab, workdir: Path) -> None:
    name = write_notebook(workdir, "restart.ipynb", [widget_cell(QUIET)])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    page = lab.page
    await page.evaluate(
        """() => { const call = [...window.__rtw_calls][0];
                   window.__rtw_track = call.micTrack; window.__rtw_pc = call.pc; }"""
    )
    await page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()"
    )
    # The page's widget is still on screen (its model outlives the kernel), but its call is over.
    await page.wait_for_function(
        """() => [...window.__rtw_calls].every((c) => c.state.status === 'closed')
                 && window.__rtw_track.readyState === 'ended'
                 && window.__rtw_pc.connectionState === 'closed'""",
        timeout=30_000,
    )
    await page.locator(".rtw-error", has_text="kernel restarted").wait_for()
    # The restarted kernel starts afresh: no widget, nothing half-alive.
    assert await lab.kernel_json("'w' in globals()") is False
