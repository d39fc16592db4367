"""The workshop broker in a real JupyterHub: learners' tokens, both modes and GPT-Live through it,
who may use it, quotas that refuse and hang up, the instructor's view, a restart, and a learner's
kernel that needs no configuration. The local server (guarded by a sentinel instructor key) is
the provider; nothing here mocks the hub."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import pytest

from realtime_widget.broker import BrokerClient
from realtime_widget.local.client import RealtimeCall

from .conftest import SENTINEL, Hub


async def connected(hub: Hub, user: str, mode: str, **session: object) -> RealtimeCall:
    config = {"type": "realtime", "model": "gpt-realtime-2", **session}
    if mode == "live":
        config = {"model": "gpt-live-1.1", **session}
    call = RealtimeCall(
        hub.broker + "v1",
        api_key=hub.tokens[user],
        mode=mode,
        session=config,  # type: ignore[arg-type]
    )
    await call.connect(timeout=20)
    return call


async def post(hub: Hub, path: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(hub.broker + path, headers={"Authorization": f"token {token}"})


def refused(res: httpx.Response) -> tuple[int, str]:
    return res.status_code, res.json()["error"]["message"]


def mint(hub: Hub, token: str | None, model: str = "gpt-realtime-2") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{hub.broker}v1/realtime/client_secrets",
        headers=headers,
        json={"session": {"type": "realtime", "model": model}},
        timeout=30,
    )


@pytest.mark.parametrize("mode", ["ephemeral", "relay", "live"])
async def test_a_learner_calls_through_the_broker(hub: Hub, mode: str) -> None:
    user = f"ann-{mode}"
    hub.learner(user, "learners")
    call = await connected(hub, user, mode)
    try:
        usage = BrokerClient(hub.broker, hub.learner("teach", "learners", "instructors")).usage()
        active = [c for c in usage["active"] if c["user"] == user]
        assert [c["id"] for c in active] == [call.call_id]
        assert (active[0]["kind"] == "live") == (mode == "live")
        # The learner hangs it up through the broker: it ends upstream, and the peer closes.
        kind = "live/sessions" if mode == "live" else "realtime/calls"
        res = await post(hub, f"v1/{kind}/{call.call_id}/hangup", hub.tokens[user])
        assert res.status_code == 200
        await asyncio.wait_for(call.closed.wait(), 15)
    finally:
        await call.close()


def test_who_may_use_it(hub: Hub) -> None:
    assert mint(hub, None).status_code == 401
    assert mint(hub, "not-a-token").status_code == 401
    status, message = refused(mint(hub, hub.admin_token))  # another service's token
    assert status == 403 and "may not use the workshop broker" in message
    outsider = hub.learner("olive")  # a hub user outside the workshop's group
    assert refused(mint(hub, outsider))[0] == 403
    learner = hub.learner("lee", "learners")
    status, message = refused(mint(hub, learner, model="gpt-realtime-1.5"))
    assert status == 400 and "allows the models" in message
    minted = mint(hub, learner)
    assert minted.status_code == 200 and minted.json()["value"].startswith("ek_")
    assert SENTINEL not in minted.text


async def test_quotas_refuse_with_what_and_when(hub: Hub) -> None:
    hub.learner("kim", "learners")
    other = hub.learner("max", "learners")
    call = await connected(hub, "kim", "relay")
    try:
        status, message = refused(mint(hub, hub.tokens["kim"]))
        assert status == 429 and "1 call(s) open" in message
        # Another learner can't end it; its owner can.
        path = f"v1/realtime/calls/{call.call_id}/hangup"
        assert (await post(hub, path, other)).status_code == 403
        assert (await post(hub, path, hub.tokens["kim"])).status_code == 200
        await asyncio.wait_for(call.closed.wait(), 15)
    finally:
        await call.close()
    assert mint(hub, hub.tokens["kim"]).status_code == 200


async def test_a_call_over_its_time_quota_is_hung_up(hub: Hub) -> None:
    hub.learner("tia", "learners", "tiny")  # three seconds a day
    call = await connected(hub, "tia", "relay")
    try:
        await asyncio.wait_for(call.closed.wait(), 20)  # ended by the broker, upstream
    finally:
        await call.close()
    status, message = refused(mint(hub, hub.tokens["tia"]))
    assert status == 429 and "0.05 minutes" in message and "resets at midnight UTC" in message
    rows = [r for r in csv_rows(hub) if r["user"] == "tia"]
    assert rows and "0.05 minutes" in rows[-1]["end_reason"]


def csv_rows(hub: Hub) -> list[dict[str, str]]:
    import csv
    import io

    text = BrokerClient(hub.broker, hub.learner("teach", "learners", "instructors")).csv()
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_instructor_sees_and_ends_calls_and_learners_cannot(hub: Hub) -> None:
    teacher = BrokerClient(hub.broker, hub.learner("teach", "learners", "instructors"))
    hub.learner("val", "learners")
    with pytest.raises(RuntimeError, match="not an instructor"):
        BrokerClient(hub.broker, hub.tokens["val"]).usage()
    call = await connected(hub, "val", "relay")
    try:
        assert teacher.end(user="val") == [call.call_id]
        await asyncio.wait_for(call.closed.wait(), 15)
    finally:
        await call.close()
    learners = {row["user"]: row for row in teacher.usage()["learners"]}
    assert learners["val"]["calls"] >= 1 and learners["val"]["active"] == 0
    assert any(r["end_reason"] == "ended by the instructor" for r in csv_rows(hub))


async def test_a_broker_restart_keeps_the_counts(hub: Hub) -> None:
    teacher = BrokerClient(hub.broker, hub.learner("teach", "learners", "instructors"))
    hub.learner("rex", "learners")
    call = await connected(hub, "rex", "relay")
    await call.close()
    before = {row["user"]: row["calls"] for row in teacher.usage()["learners"]}
    assert before.get("rex") == 1
    pid = hub.broker_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while hub.broker_pid() in (None, pid):  # the hub starts its managed service again
        assert time.monotonic() < deadline, "the hub did not restart the broker"
        await asyncio.sleep(0.2)
    await asyncio.to_thread(hub.wait_broker)
    after = {row["user"]: row["calls"] for row in teacher.usage()["learners"]}
    assert after == before


def test_a_learners_kernel_needs_no_configuration(hub: Hub) -> None:
    hub.learner("sam", "learners")
    out = hub.kernel_run(
        "sam",
        "import asyncio, json, os\n"
        "from realtime_widget import RealtimeWidget\n"
        "from realtime_widget.providers import openai as provider\n"
        "w = RealtimeWidget()\n"
        "secret = await provider.mint_client_secret(w.endpoint, dict(w._core.config))\n"
        "print(json.dumps({'endpoint': w.endpoint.name, 'secret': secret.value[:3],"
        f" 'sentinel': any({SENTINEL!r} in v for v in os.environ.values())}}))\n",
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"endpoint": "hub", "secret": "ek_", "sentinel": False}


async def test_a_live_widget_through_the_broker_runs_tools_and_its_sideband(hub: Hub) -> None:
    from realtime_widget import RealtimeWidget
    from realtime_widget.config import Endpoint
    from realtime_widget.transports.websocket import KernelSocket, SocketError

    from ..widget.test_live import LivePage, get_weather, until

    hub.learner("liv", "learners")
    endpoint = Endpoint(hub.broker + "v1", hub.tokens["liv"], "bearer", "hub")
    w = RealtimeWidget(endpoint=endpoint, model="gpt-live-1.1", tools=[get_weather])
    page = LivePage(w)
    w.connect()
    await page.start()
    try:
        await until(lambda: w.status == "connected")
        w.append_instructions("call get_weather with city=Paris")
        await until(lambda: any("sunny in Paris" in t.text for t in w.transcript))
        # GPT-Live's session.update goes over the kernel's sideband: relayed by the broker.
        w.update_session(delegation={"type": "responses", "responses": {"max_output_tokens": 500}})
        await until(lambda: any(r.type == "session.updated" for r in w.events))
        # Another learner can't attach to it.
        other = Endpoint(hub.broker + "v1", hub.learner("oth", "learners"), "bearer", "hub")
        with pytest.raises(SocketError):
            await KernelSocket(other, call_id=w.call_id, live=True).open()
    finally:
        await page.close()
        w.close()
