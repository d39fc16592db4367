"""Front ends other than JupyterLab for end-to-end tests: Voila and marimo, each a subprocess on
127.0.0.1 with its own state, stopped with the test module."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from .jupyter import JupyterServer, free_port


class AppServer:
    """A server that serves one notebook as an app; ready once ``url`` answers 200."""

    def __init__(self, command: list[str], *, port: int, state: Path, cwd: Path) -> None:
        self.command = command
        self.port = port
        self.state = state
        self.cwd = cwd
        self.log_path = state / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 90) -> None:
        # The same isolated Jupyter dirs and environment as the JupyterLab server's.
        env = JupyterServer(self.cwd, self.state).env()
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command[2]} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # polling the port: there is no event to wait on
        raise RuntimeError(f"{self.command[2]} did not serve in {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


def voila(notebook: Path, state: Path) -> AppServer:
    port = free_port()
    command = [
        sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True",
    ]  # fmt: skip
    return AppServer(command, port=port, state=state, cwd=notebook.parent)


def marimo(app: Path, state: Path, mode: str = "run") -> AppServer:
    port = free_port()
    command = [
        sys.executable, "-m", "marimo", mode, str(app), "--headless", "--host", "127.0.0.1",
        "--port", str(port), "--no-token", "--no-sandbox",
    ]  # fmt: skip
    return AppServer(command, port=port, state=state, cwd=app.parent)
