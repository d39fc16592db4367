"""The standard API key never leaves the kernel; client secrets never reach saved state.

A sentinel key is the only key the local server accepts. After a real call in each mode, the
sentinel must be absent from every comm message in either direction (the kernel websocket's
frames), the page's DOM and console, the notebook as JupyterLab saves it with widget state, the
widget state nbclient stores, and an HTML export. Client secrets (``ek_…``) may cross in a
custom-message reply, but never sit in saved state or the DOM.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from realtime_widget.local import LocalServer

from .conftest import Lab, write_notebook
from .jupyter import SENTINEL_KEY as SENTINEL


@pytest.fixture(scope="module")
def guarded() -> LocalServer:
    with LocalServer(api_key=SENTINEL) as server:
        yield server  # type: ignore[misc]


def cell(server: LocalServer, mode: str) -> str:
    # "live": a GPT-Live session, which the kernel always relays (no client secrets at all).
    options = 'model="gpt-live-1.1"' if mode == "live" else f"mode={mode!r}, turn_detection=None"
    return (
        "import os\n"
        "from realtime_widget import RealtimeWidget\n"
        f"w = RealtimeWidget(endpoint={server.base_url!r}, "
        f"api_key=os.environ['REALTIME_WIDGET_SENTINEL_KEY'], {options})\n"
        "w"
    )


@pytest.mark.parametrize("mode", ["ephemeral", "relay", "live"])
async def test_the_key_is_nowhere_in_the_page_or_the_saved_notebook(
    lab: Lab, workdir: Path, guarded: LocalServer, mode: str
) -> None:
    frames: list[str] = []
    console: list[str] = []

    def watch(ws: object) -> None:
        ws.on("framesent", lambda payload: frames.append(str(payload)))  # type: ignore[attr-defined]
        ws.on("framereceived", lambda payload: frames.append(str(payload)))  # type: ignore[attr-defined]

    lab.page.on("websocket", watch)
    lab.page.on("console", lambda message: console.append(message.text))
    name = write_notebook(workdir, f"secret_{mode}.ipynb", [cell(guarded, mode)])
    await lab.open(name)
    await lab.run_all()
    await lab.page.locator(".rtw-connect").click()
    await lab.wait_kernel("w.status == 'connected'")
    if mode == "live":
        await lab.kernel('w.comment("hello")')
        await lab.wait_kernel("any('hello' in t.text for t in w.transcript)")
    else:
        await lab.kernel('w.say("hello")')
        await lab.wait_kernel("any(t.text == 'You said: hello' for t in w.transcript)")
    await lab.kernel("w.disconnect()")
    await lab.wait_kernel("w.status == 'closed'")
    # Save with widget state, as a user pressing Ctrl-S with "Save widget state" on.
    await lab.page.evaluate(
        """async () => {
            const app = window.jupyterapp;
            await app.commands.execute('docmanager:save');
        }"""
    )
    await lab.page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty"
    )
    dom = await lab.page.evaluate("() => document.documentElement.outerHTML")
    saved = (workdir / name).read_text()

    assert frames, "the kernel websocket carried no frames: the capture is broken"
    assert any("realtime" in f for f in frames)
    for where, text in [
        ("comm frames", "\n".join(frames)),
        ("DOM", dom),
        ("console", "\n".join(console)),
        ("saved notebook", saved),
    ]:
        assert SENTINEL not in text, f"the standard key leaked into the {where}"
    assert not re.search(r"ek_[A-Za-z0-9]{8,}", dom), "a client secret sits in the DOM"
    assert not re.search(r"ek_[A-Za-z0-9]{8,}", saved), "a client secret sits in saved state"
    if mode != "ephemeral":
        assert not re.search(r"ek_[A-Za-z0-9]{8,}", "\n".join(frames)), "relay sent a secret"


def test_nbclient_widget_state_and_html_export_hold_no_key(
    tmp_path: Path, guarded: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(cell(guarded, "ephemeral")),
            nbformat.v4.new_code_cell("w.update_session(instructions='stored')\nrepr(w)"),
        ]
    )
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": tmp_path}},
    )
    monkeypatch.setenv("REALTIME_WIDGET_SENTINEL_KEY", SENTINEL)
    client.execute()
    stored = json.dumps(notebook.metadata.get("widgets", {}))
    assert "realtime" in stored or "anywidget" in stored  # widget state was stored
    html, _ = HTMLExporter().from_notebook_node(notebook)
    for where, text in [
        ("stored widget state", stored),
        ("notebook", nbformat.writes(notebook)),
        ("HTML export", html),
    ]:
        assert SENTINEL not in text, f"the standard key leaked into the {where}"
