"""``realtime-widget demo``: JupyterLab on the quickstart notebook, ready to talk.

Without ``OPENAI_API_KEY`` the notebook uses the bundled local server, so the whole product
works offline with no key.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

NOTEBOOKS = ("quickstart.ipynb", "prompt-lab.ipynb", "workshop.ipynb")


def notebooks_source() -> Path:
    """The notebooks shipped with the package (or the repository's, in a development install)."""
    packaged = Path(__file__).parent / "notebooks"
    repository = Path(__file__).resolve().parents[2] / "notebooks"
    return packaged if packaged.is_dir() else repository


def run_demo(*, port: int = 8888, open_browser: bool = True, directory: str | None = None) -> int:
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        print("The demo needs JupyterLab: pip install 'realtime-widget[demo]'", file=sys.stderr)
        return 1
    # In the home folder, not the current one: run from a clone, the demo must not leave an
    # untracked folder inside the repository.
    target = Path(directory or Path.home() / "realtime-widget-demo").expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    source = notebooks_source()
    for name in NOTEBOOKS:
        if not (target / name).exists():  # never overwrite a learner's edits
            shutil.copy(source / name, target / name)
    where = (
        "OpenAI (OPENAI_API_KEY is set)"
        if os.environ.get("OPENAI_API_KEY")
        else ("the bundled local server (no OPENAI_API_KEY: offline, no key needed)")
    )
    if not _port_free(port):
        busy, port = port, _any_free_port()
        print(f"Port {busy} is in use; using {port}.", flush=True)
    # Our own token, so the URL printed here opens the quickstart itself, logged in (JupyterLab's
    # own banner links to the Launcher).
    token = secrets.token_hex(24)
    url = f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOKS[0]}?token={token}"
    print(f"realtime-widget demo in {target}, talking to {where}.", flush=True)
    print(f"Open the quickstart: {url}", flush=True)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={target}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # the printed URL must be where it serves
        f"--IdentityProvider.token={token}",
        str(target / NOTEBOOKS[0]),
    ]
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    sys.stdout.flush()
    if os.name == "posix":
        # Become JupyterLab: a signal to the demo (Ctrl-C, a test's terminate()) reaches the
        # server itself instead of leaving it running as an orphan.
        os.execv(sys.executable, command)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
