"""A workshop on this machine in one command: a local JupyterHub with the broker and learners.

``realtime-widget workshop`` writes a hub config (loopback only, the simple local spawner, the
a shared password), starts JupyterHub with the broker as its managed
service and a few learner accounts, and prints where to log in. With ``OPENAI_API_KEY`` set the
broker calls OpenAI with it; without, it starts the local server and calls that (offline). The
tests run the very same config (``hub_config``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

CONFIG = """
import os, sys
STATE = {state!r}; PORT = {port}
c.JupyterHub.ip = "127.0.0.1"; c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"; c.JupyterHub.hub_port = PORT + 81
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{{PORT + 1}}"
c.ConfigurableHTTPProxy.pid_file = f"{{STATE}}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{{STATE}}/hub.sqlite"
c.JupyterHub.cookie_secret_file = f"{{STATE}}/cookie_secret"
c.JupyterHub.pid_file = f"{{STATE}}/hub.pid"
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allow_all = True  # loopback only: anyone who knows the password
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = f"{{STATE}}/home/{{{{username}}}}"
c.Spawner.default_url = "/lab"
c.Spawner.args = ["--allow-root", "--LabApp.news_url=None",
                  "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                  *{extra_args!r}]
# The server's own token may use the broker: the widget in a learner's kernel needs no setup.
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 "access:services!service=broker"]
c.Spawner.environment = {{
    "REALTIME_WIDGET_BROKER_URL": f"http://127.0.0.1:{{PORT}}/services/broker/",
    "OPENAI_API_KEY": "",  # never the instructor's: learners reach OpenAI through the broker
}}
c.JupyterHub.services = [
    {{"name": "workshop-admin", "api_token": {admin_token!r}}},
    {{"name": "broker",
      "command": [{python!r}, "-m", "realtime_widget.cli", "broker", "--policy", {policy!r},
                  "--upstream", {upstream!r}, "--db", f"{{STATE}}/broker.sqlite"],
      "url": f"http://127.0.0.1:{{PORT + 100}}", "oauth_no_confirm": True,
      "environment": {{"REALTIME_WIDGET_BROKER_KEY": {key!r}}}}}]
c.JupyterHub.load_roles = [
    {{"name": "workshop-admin", "services": ["workshop-admin"],
      "scopes": ["admin:users", "admin:servers", "admin:groups", "tokens", "read:services"]}},
    {{"name": "broker-reads", "services": ["broker"], "scopes": ["read:users"]}},
    {{"name": "learner", "groups": ["learners"], "scopes": ["access:services!service=broker"]}}]
c.JupyterHub.load_groups = {{"learners": {{"users": {learners!r}}},
                            "instructors": {{"users": {instructors!r}}},
                            "tiny": {{"users": []}}}}
"""


def free_base_port() -> int:
    """A port P with P, P+1, P+81 and P+100 free (the hub, its proxy API, hub API, broker)."""
    for _ in range(200):
        base = 20_000 + secrets.randbelow(30_000)
        free = True
        for offset in (0, 1, 81, 100):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + offset))
                except OSError:
                    free = False
                    break
        if free:
            return base
    raise RuntimeError("No free range of ports for the hub.")


def hub_config(
    state: Path,
    *,
    port: int,
    admin_token: str,
    upstream: str,
    key: str,
    policy: dict[str, Any],
    learners: Sequence[str] = (),
    instructors: Sequence[str] = (),
    password: str = "workshop-password",
    server_args: Sequence[str] = (),
) -> Path:
    """Write the hub's config (and the broker's policy) into ``state``; its path.
    ``server_args``: more options for the learners' servers (the tests expose JupyterLab's app
    object to the browser, to drive it)."""
    policy_path = state / "policy.json"
    policy_path.write_text(json.dumps(policy), encoding="utf-8")
    config = state / "jupyterhub_config.py"
    config.write_text(
        CONFIG.format(
            state=str(state),
            port=port,
            admin_token=admin_token,
            python=sys.executable,
            policy=str(policy_path),
            upstream=upstream,
            key=key,
            learners=list(learners),
            instructors=list(instructors),
            password=password,
            extra_args=list(server_args),
        ),
        encoding="utf-8",
    )
    return config


def start_hub(state: Path, config: Path, port: int, timeout: float = 60) -> subprocess.Popen[bytes]:
    """Start JupyterHub (its own process group, logging to ``state/hub.log``); return once its
    API and the broker answer."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("OPENAI_API_KEY", None)
    with (state / "hub.log").open("wb") as log:
        process = subprocess.Popen(
            ["jupyterhub", "-f", str(config)],
            cwd=state,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    ready = False
    while time.monotonic() < deadline and process.poll() is None:
        try:
            hub = httpx.get(f"{url}/hub/api/", timeout=5).status_code == 200
            broker = httpx.post(f"{url}/services/broker/v1/realtime/calls", timeout=5)
            ready = hub and broker.status_code == 401  # the broker itself answers
        except httpx.HTTPError:
            ready = False
        if ready:
            return process
        time.sleep(0.2)
    stop_hub(process, state)
    log_text = (state / "hub.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"JupyterHub did not start:\n{log_text}")


def stop_hub(process: subprocess.Popen[bytes], state: Path) -> None:
    """SIGTERM to the hub's group, then anything still running with its cwd under ``state``
    (servers, kernels and the broker have sessions of their own)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "cwd").startswith(str(state)):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


WORKSHOP_POLICY: dict[str, Any] = {
    "models": ["gpt-realtime-2.1", "gpt-realtime-2", "gpt-live-1.1"],
    "max_call_s": 600,
    "quota": {"minutes_per_day": 20, "dollars_per_day": 2, "concurrent_calls": 1},
    "groups": {"instructors": {"minutes_per_day": None, "dollars_per_day": None}},
}


def run_workshop(directory: str | None = None, learners: int = 3) -> int:
    """``realtime-widget workshop``: run until Ctrl-C."""
    state = Path(directory or Path.home() / "realtime-widget-workshop").expanduser()
    state.mkdir(parents=True, exist_ok=True)
    key = os.environ.get("OPENAI_API_KEY")
    local = None
    if key:
        upstream = "openai"
    else:
        from ..local import LocalServer

        key = "sk-workshop-" + secrets.token_hex(16)
        local = LocalServer(api_key=key).start()
        upstream = local.base_url
    port = free_base_port()
    names = [f"learner{i}" for i in range(1, learners + 1)]
    config = hub_config(
        state,
        port=port,
        admin_token=secrets.token_hex(16),
        upstream=upstream,
        key=str(key),
        policy=WORKSHOP_POLICY,
        learners=[*names, "instructor"],
        instructors=["instructor"],
    )
    from ..demo import notebooks_source

    for name in [*names, "instructor"]:  # the exercises, ready in each home
        home = state / "home" / name
        home.mkdir(parents=True, exist_ok=True)
        target = home / "workshop.ipynb"
        if not target.exists():
            shutil.copy(notebooks_source() / "workshop.ipynb", target)
    process = start_hub(state, config, port)
    url = f"http://127.0.0.1:{port}"
    print(f"JupyterHub with the workshop broker: {url}/hub/login", flush=True)
    print(f"  learners: {', '.join(names)}; instructor: instructor; password: workshop-password")
    print(f"  the instructor's page: {url}/services/broker/")
    print(f"  provider: {'OpenAI' if local is None else 'the local server (offline)'}")
    print("Ctrl-C stops it.", flush=True)
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_hub(process, state)
        if local is not None:
            local.stop()
    return 0
