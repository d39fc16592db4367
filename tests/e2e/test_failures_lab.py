"""Failures only a real notebook front end produces: the page reloaded mid-call, and the kernel
restarted mid-call. After each the kernel (if it lives) says what happened, the conversation it
held is intact, the call is ended on the server, and the page holds no microphone and no call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.asynchronous import AsyncKernelClient

from .conftest import Lab, write_notebook
from .jupyter import JupyterServer
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


async def kernel_json(server: JupyterServer, notebook: str, expression: str) -> Any:
    """Evaluate in the notebook's kernel from outside any page (its connection file)."""
    sessions = server.api("GET", "/api/sessions").json()
    kernel_id = next(s["kernel"]["id"] for s in sessions if s["path"] == notebook)
    client = AsyncKernelClient(
        connection_file=str(server.state / "runtime" / f"kernel-{kernel_id}.json")
    )
    client.load_connection_file()
    client.start_channels()
    printed: list[str] = []

    def output(msg: dict[str, Any]) -> None:
        if msg["header"]["msg_type"] == "stream":
            printed.append(msg["content"]["text"])

    try:
        reply = await client.execute_interactive(
            f"import json as _j; print(_j.dumps({expression}))", output_hook=output, timeout=30
        )
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok", reply["content"]
    return json.loads("".join(printed))


async def test_closing_the_tab_mid_call_tells_the_kernel_and_ends_the_call(
    lab: Lab, workdir: Path
) -> None:
    name = write_notebook(workdir, "closed_tab.ipynb", [widget_cell(QUIET)])
    await lab.open(name)
    await lab.run_all()
    await click_connect(lab)
    await lab.wait_kernel("w.status == 'connected'")
    await lab.kernel('w.say("before the tab closed")')
    await lab.wait_kernel("len(w.events.filter('response.done')) == 1")
    call_id = (await lab.kernel("print(w.call_id)")).strip()
    # The tab goes (no page comes back to say hello): the page says so as it leaves.
    await lab.page.goto("about:blank")
    state: dict[str, Any] = {}
    for _ in range(100):  # up to ~10 s: each look is a kernel round trip of ~0.1 s
        state = await kernel_json(lab.server, name, "{'status': w.status, 'error': w.error}")
        if state["status"] != "connected":
            break
    assert state["status"] == "closed", state
    assert "reloaded or closed" in state["error"] and "w.reconnect()" in state["error"]
    transcript = await kernel_json(lab.server, name, "[t.text for t in w.transcript]")
    assert transcript == ["before the tab closed", "You said: before the tab closed"]
    # Over on the server too (the page's goodbye, or the kernel's hangup).
    live = (
        "__import__('realtime_widget.config', fromlist=['x'])"
        f".shared_local_server().realtime.calls.get({call_id!r}) is not None"
    )
    for _ in range(100):
        if not await kernel_json(lab.server, name, live):
            break
    assert not await kernel_json(lab.server, name, live)
