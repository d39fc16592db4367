"""The workshop broker under load: 50 learners minting and calling at once, through a real
JupyterHub (its proxy, the broker as its managed service) to the local server, against the
same requests made directly to the local server in the same run.

- mint: 50 learners' ``POST …/v1/realtime/client_secrets`` at once, each with their own hub
  token, the first round (the broker asks the hub about each token) and a second (cached); the
  baseline is 50 mints at once straight to the local server with its key;
- relay: 50 SDP offers at once (``POST …/v1/realtime/calls``, multipart, one real aiortc offer
  reused), each learner's one call; the baseline, the same offers straight to the server;
- no errors but quota refusals: the second call of a learner (one open call allowed) must be
  refused, every other request must succeed;
- the broker's memory (RSS) after the run, with every call hung up.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from aiortc import RTCPeerConnection

from realtime_widget.broker.workshop import free_base_port, hub_config, start_hub, stop_hub
from realtime_widget.local import LocalServer
from stats import median, p95

SETTINGS = {"broker.learners"}
KEY = "sk-bench-broker-" + "7" * 24
POLICY = {
    "models": ["gpt-realtime-2"],
    "max_call_s": 600,
    "quota": {"minutes_per_day": 60, "dollars_per_day": 10, "concurrent_calls": 1},
}
SESSION = {"type": "realtime", "model": "gpt-realtime-2"}


async def an_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("oai-events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


async def timed(requests: list[Any]) -> tuple[list[float], list[httpx.Response]]:
    async def one(request: Any) -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        response = await request
        return (time.perf_counter() - started) * 1000, response

    done = await asyncio.gather(*(one(r) for r in requests))
    return [t for t, _ in done], [r for _, r in done]


def figures(name: str, ms: list[float]) -> dict[str, float]:
    return {f"{name}.p50_ms": median(ms), f"{name}.p95_ms": p95(ms)}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def broker_pid(state: Path) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"broker" in cmd and str(state).encode() + b"/broker.sqlite" in cmd:
                return int(proc.name)
    raise RuntimeError("no broker process")


async def run(quick: bool) -> dict[str, float]:
    learners = 20 if quick else 50
    state = Path(tempfile.mkdtemp(prefix="rtw-bench-hub-"))
    out: dict[str, float] = {"broker.learners": float(learners)}
    with LocalServer(api_key=KEY) as upstream:
        port = free_base_port()
        admin = secrets.token_hex(16)
        config = hub_config(
            state, port=port, admin_token=admin, upstream=upstream.base_url, key=KEY, policy=POLICY
        )
        process = start_hub(state, config, port)
        try:
            hub = f"http://127.0.0.1:{port}"
            broker = f"{hub}/services/broker/v1"
            direct = upstream.base_url
            names = [f"l{i:02d}" for i in range(learners)]
            admin_h = {"Authorization": f"token {admin}"}
            async with httpx.AsyncClient(timeout=120) as http:
                await http.post(f"{hub}/hub/api/users", json={"usernames": names}, headers=admin_h)
                await http.post(
                    f"{hub}/hub/api/groups/learners/users", json={"users": names}, headers=admin_h
                )
                made = await asyncio.gather(
                    *(
                        http.post(f"{hub}/hub/api/users/{n}/tokens", json={}, headers=admin_h)
                        for n in names
                    )
                )
                tokens = [r.json()["token"] for r in made]

                def mint(base: str, token: str) -> Any:
                    return http.post(
                        f"{base}/realtime/client_secrets",
                        json={"session": SESSION},
                        headers={"Authorization": f"Bearer {token}"},
                    )

                first, r1 = await timed([mint(broker, t) for t in tokens])
                cached, r2 = await timed([mint(broker, t) for t in tokens])
                baseline, r3 = await timed([mint(direct, KEY) for _ in tokens])
                errors = sum(r.status_code != 200 for r in r1 + r2 + r3)
                out |= figures("broker.mint.first", first)
                out |= figures("broker.mint.cached", cached)
                out |= figures("broker.mint.direct", baseline)
                out["broker.mint.cached_over_direct"] = median(cached) / median(baseline)

                offer = await an_offer()

                def relay(base: str, token: str) -> Any:
                    files = {"sdp": (None, offer), "session": (None, json.dumps(SESSION))}
                    return http.post(
                        f"{base}/realtime/calls",
                        files=files,
                        headers={"Authorization": f"Bearer {token}"},
                    )

                through, calls = await timed([relay(broker, t) for t in tokens])
                refused = await asyncio.gather(*(relay(broker, t) for t in tokens))
                straight, direct_calls = await timed([relay(direct, KEY) for _ in tokens])
                errors += sum(r.status_code != 201 for r in calls + direct_calls)
                quota_refusals = sum(r.status_code == 429 for r in refused)
                errors += sum(r.status_code not in (201, 429) for r in refused)
                out |= figures("broker.relay.through_broker", through)
                out |= figures("broker.relay.direct", straight)
                out["broker.relay.broker_over_direct"] = median(through) / median(straight)
                out["broker.errors"] = float(errors)
                out["broker.quota_refusals"] = float(quota_refusals)
                # Hang every call up (the learners' through the broker, the rest directly).
                await asyncio.gather(
                    *(
                        http.post(
                            f"{broker}/realtime/calls/{r.headers['Location'].rsplit('/', 1)[-1]}"
                            "/hangup",
                            headers={"Authorization": f"Bearer {t}"},
                        )
                        for r, t in zip(calls, tokens, strict=True)
                        if r.status_code == 201
                    ),
                    *(
                        http.post(
                            f"{direct}/realtime/calls/{r.headers['Location'].rsplit('/', 1)[-1]}"
                            "/hangup",
                            headers={"Authorization": f"Bearer {KEY}"},
                        )
                        for r in direct_calls
                        if r.status_code == 201
                    ),
                )
            out["broker.rss_mib_after"] = rss_mib(broker_pid(state))
        finally:
            stop_hub(process, state)
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(True)), indent=2))
