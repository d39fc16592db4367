"""A real JupyterHub on loopback with the workshop broker as its managed service.

One hub for the whole session (it takes seconds to start): the local server, guarded by a
sentinel instructor key, is the provider; the broker is started by the hub
(``realtime-widget broker``); learners are hub users with tokens made through the REST API.
See ../../../shared/reference/jupyterhub-testing.md for what was measured to work here.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from realtime_widget.broker.workshop import free_base_port, hub_config, start_hub, stop_hub
from realtime_widget.local import LocalServer

SENTINEL = "instructor-sentinel-not-a-real-key-" + "9" * 16  # any key works locally
POLICY = {
    "models": ["gpt-realtime-2", "gpt-live-1.1"],
    "max_call_s": 120,
    "quota": {"minutes_per_day": 30, "dollars_per_day": 5, "concurrent_calls": 1},
    # A group whose learners have three seconds a day: their calls are hung up.
    "groups": {"tiny": {"minutes_per_day": 0.05}, "instructors": {"concurrent_calls": None}},
}


@dataclass
class Hub:
    url: str  # http://127.0.0.1:PORT
    state: Path
    admin_token: str
    upstream: LocalServer
    process: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def broker(self) -> str:
        return f"{self.url}/services/broker/"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.admin_token}"}
        return httpx.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kwargs
        )

    def learner(self, name: str, *groups: str) -> str:
        """A hub user in these groups (``learners`` unless told otherwise), and a token."""
        if name in self.tokens:
            return self.tokens[name]
        self.api("POST", "/users", json={"usernames": [name]})
        for group in groups:
            res = self.api("POST", f"/groups/{group}/users", json={"users": [name]})
            assert res.status_code == 200, res.text
        res = self.api("POST", f"/users/{name}/tokens", json={"expires_in": 3600})
        assert res.status_code == 201, res.text
        self.tokens[name] = res.json()["token"]
        return self.tokens[name]

    def broker_pid(self) -> int | None:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                if b"broker" in cmd and str(self.state).encode() + b"/broker.sqlite" in cmd:
                    return int(proc.name)
        return None

    def wait_broker(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                res = httpx.post(f"{self.broker}v1/realtime/client_secrets", timeout=5)
                if res.status_code == 401:  # the broker itself answers: no token
                    return
            time.sleep(0.2)
        raise TimeoutError("the broker did not come up")

    def kernel_run(self, user: str, code: str, timeout: float = 60) -> str:
        """Start the learner's server if needed, run code in a new kernel, return its output."""
        return run_in_kernel(self, user, code, timeout)


def run_in_kernel(hub: Hub, user: str, code: str, timeout: float) -> str:
    import asyncio

    import websockets

    token = hub.tokens[user]
    headers = {"Authorization": f"token {token}"}
    res = hub.api("POST", f"/users/{user}/server")
    assert res.status_code in (201, 202, 400), res.text
    deadline = time.monotonic() + 90
    while not hub.api("GET", f"/users/{user}").json()["servers"].get("", {}).get("ready"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{user}'s server did not start")
        time.sleep(0.5)
    base = f"{hub.url}/user/{user}/api"
    kernel = httpx.post(f"{base}/kernels", headers=headers, json={}, timeout=60).json()

    async def execute() -> str:
        url = base.replace("http", "ws") + f"/kernels/{kernel['id']}/channels"
        out: list[str] = []
        async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
            msg_id = uuid.uuid4().hex
            await ws.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "msg_type": "execute_request",
                            "username": user,
                            "session": uuid.uuid4().hex,
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "content": {
                            "code": code,
                            "silent": False,
                            "store_history": False,
                            "user_expressions": {},
                            "allow_stdin": False,
                        },
                    }
                )
            )
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["header"]["msg_type"]
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "error":
                    out.append("\n".join(msg["content"]["traceback"]))
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(out)

    try:
        return asyncio.run(asyncio.wait_for(execute(), timeout))
    finally:
        httpx.delete(f"{base}/kernels/{kernel['id']}", headers=headers, timeout=30)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The hub `realtime-widget workshop` runs, with the test policy and a guarded provider."""
    state = tmp_path_factory.mktemp("hub")
    port = free_base_port()
    admin = secrets.token_hex(16)
    upstream = LocalServer(api_key=SENTINEL).start()
    config = hub_config(
        state,
        port=port,
        admin_token=admin,
        upstream=upstream.base_url,
        key=SENTINEL,
        policy=POLICY,
        server_args=["--LabApp.expose_app_in_browser=True"],
    )
    try:
        process = start_hub(state, config, port)
    except BaseException:
        upstream.stop()
        raise
    try:
        yield Hub(f"http://127.0.0.1:{port}", state, admin, upstream, process)
    finally:
        stop_hub(process, state)
        upstream.stop()
