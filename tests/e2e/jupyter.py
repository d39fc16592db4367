"""A real Jupyter server (JupyterLab or Notebook 7) for end-to-end tests, on 127.0.0.1.

Flags and pitfalls are those measured in shared/reference/browser-testing.md.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

# A standard key that must never leave the kernel; kernels find it in their environment, as
# they would find OPENAI_API_KEY, so it is not in any cell's source.
SENTINEL_KEY = "test-sentinel-not-a-real-key-e2e"  # any non-empty key works locally


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServer:
    """``jupyter lab`` in a subprocess with its own config, runtime and workspace dirs."""

    def __init__(
        self,
        root: Path,
        state: Path,
        *,
        comms: str = "perCommTarget",
        python: str = sys.executable,
        path: str | None = None,
    ) -> None:
        self.python = python  # another environment's, to test an install of the wheel
        self.path = path  # its PATH, when it must not find tools the suite has (Node)
        self.root = root
        self.state = state
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.comms = comms
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = state / "jupyter.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.state / "config"),
            JUPYTER_RUNTIME_DIR=str(self.state / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(self.state / "ipython"),
        )
        env.pop("OPENAI_API_KEY", None)  # the tests talk to the local server only
        if self.path is not None:
            env["PATH"] = self.path
            for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
                env.pop(name, None)
        env["REALTIME_WIDGET_SENTINEL_KEY"] = SENTINEL_KEY
        return env

    def start(self, timeout: float = 60) -> None:
        labconfig = self.state / "config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            json.dumps(
                {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
            )
        )
        settings = self.state / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        # "Kernel comms over subshells": the suite runs under the default and with it off.
        (settings / "kernels-settings.jupyterlab-settings").write_text(
            json.dumps({"commsOverSubshells": self.comms})
        )
        # Save widget state into notebooks, so tests can check what it would leak.
        widgets = self.state / "settings" / "@jupyter-widgets" / "jupyterlab-manager"
        widgets.mkdir(parents=True, exist_ok=True)
        (widgets / "plugin.jupyterlab-settings").write_text(json.dumps({"saveState": True}))
        command = [
            self.python, "-m", "jupyterlab",
            "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
            f"--LabApp.workspaces_dir={self.state / 'ws'}",
            f"--LabApp.user_settings_dir={self.state / 'settings'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]  # fmt: skip
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log_path.read_text()[-3000:]}")
            try:
                res = httpx.get(f"{self.url}/api/status", headers=self.headers, timeout=2)
                if res.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # polling the port: there is no event to wait on
        raise RuntimeError(f"jupyter lab did not start in {timeout} s")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", headers=self.headers, timeout=10, **kwargs
        )

    def shutdown_kernels(self) -> None:
        for session in self.api("GET", "/api/sessions").json():
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.api("POST", "/api/shutdown")
            self.process.wait(15)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        return f"{self.url}/notebooks/{notebook}?token={self.token}"
