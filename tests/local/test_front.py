"""``realtime-widget serve --workers 2``: a front and two server processes, as a workshop runs it.

One front is shared by the module's tests (starting three processes costs a few seconds).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from openai import AsyncOpenAI

from realtime_widget.local.client import RealtimeCall

KEY = "sk-front"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def front() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    command = [sys.executable, "-m", "realtime_widget.local", "--port", "0", "--workers", "2"]
    process = subprocess.Popen([*command, "--api-key", KEY], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once every worker is up and the front bound
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line
        yield match.group(1), process
    finally:
        process.terminate()
        process.wait(15)


def _workers(process: subprocess.Popen[str]) -> list[int]:
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited, whoever reaps it


async def test_calls_spread_over_the_workers_and_ids_find_their_worker(
    front: tuple[str, subprocess.Popen[str]],
) -> None:
    base, process = front
    assert len(_workers(process)) == 2
    calls = [
        RealtimeCall(base, api_key=KEY, mode="ephemeral"),  # mint, then the call: same worker
        RealtimeCall(base, api_key=KEY, mode="relay"),
        RealtimeCall(base, api_key=KEY, mode="ephemeral"),
    ]
    try:
        for call in calls:
            await call.connect(TIMEOUT)
            await call.wait_for("session.created", timeout=TIMEOUT)
        ids = [c.call_id or "" for c in calls]
        marks = {i[len("rtc_")] for i in ids}
        assert marks == {"0", "1"}, ids  # both workers hold calls
        secret = calls[0].secret or ""
        assert secret.startswith("ek_") and secret[3] == ids[0][4]  # the call went where minted

        # A sideband names its call: it must reach the worker holding it, whichever that is.
        api = AsyncOpenAI(base_url=base, api_key=KEY, max_retries=0)
        for call in calls[:2]:
            async with api.realtime.connect(call_id=call.call_id or "") as side:
                text = f"to {call.call_id}"
                await side.send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": text}],
                        },
                    }
                )
                created = await call.wait_for("conversation.item.added", timeout=TIMEOUT)
                assert text in json.dumps(created)  # on that call's own data channel

        # Events and audio go straight to the worker: the page talks, the worker answers.
        calls[1].send({"type": "conversation.item.retrieve", "item_id": "item_none"})
        error = await calls[1].wait_for("error", timeout=TIMEOUT)
        assert "item_none" in json.dumps(error)

        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            status = (await http.get(base.removesuffix("/v1") + "/")).text
            assert "Active WebRTC calls: 3<" in status  # the front's page counts every worker
            assert "worker 0" in status and "worker 1" in status
            counts = (await http.get(base.removesuffix("/v1") + "/?format=json")).json()
            assert counts["calls"] == 3 and counts["sessions_started"] >= 3
            auth = {"Authorization": f"Bearer {KEY}"}
            for call in calls:
                res = await http.post(f"{base}/realtime/calls/{call.call_id}/hangup", headers=auth)
                assert res.status_code == 200, res.text
                await asyncio.wait_for(call.closed.wait(), TIMEOUT)
            again = await http.post(f"{base}/realtime/calls/{ids[0]}/hangup", headers=auth)
            assert again.status_code == 404  # the worker's own answer, passed on
            assert again.json()["error"]["code"] == "call_id_not_found"
            # Every worker's calls end and finish closing (benchmarks wait on these sums).
            deadline = asyncio.get_running_loop().time() + TIMEOUT
            while True:
                counts = (await http.get(base.removesuffix("/v1") + "/?format=json")).json()
                if counts["calls"] == 0 and counts["closing"] == 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, counts
                await asyncio.sleep(0.05)
    finally:
        for call in calls:
            await call.close()


async def test_websocket_sessions_and_refusals_pass_through(
    front: tuple[str, subprocess.Popen[str]],
) -> None:
    base, _ = front
    url = base.replace("http", "ws") + "/realtime?model=gpt-realtime-2"
    async with websockets.connect(
        url,
        subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "realtime"
        first = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert first["type"] == "session.created"
        await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": "item_x"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert answer["type"] == "error"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        wrong = await http.post(
            f"{base}/realtime/client_secrets",
            headers={"Authorization": "Bearer sk-wrong"},
            json={"session": {"type": "realtime"}},
        )
    assert wrong.status_code == 401 and "error" in wrong.json()
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers={"Authorization": "Bearer sk-no"}):
            pass
    assert refused.value.response.status_code == 401


def test_the_workers_end_with_the_front() -> None:
    command = [sys.executable, "-m", "realtime_widget.local", "--port", "0", "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and "http://" in process.stdout.readline()
    workers = _workers(process)
    assert len(workers) == 2
    process.terminate()
    process.wait(15)
    deadline = time.monotonic() + 15
    while any(_running(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived the front"
        time.sleep(0.05)


async def test_live_sessions_find_their_worker(front: tuple[str, subprocess.Popen[str]]) -> None:
    base, _ = front
    calls = [
        RealtimeCall(base, api_key=KEY, mode="live", session={"model": "gpt-live-1.1"})
        for _ in range(2)
    ]
    try:
        for call in calls:
            await call.connect(TIMEOUT)
            await call.wait_for("session.started", timeout=TIMEOUT)
        assert {(c.call_id or "")[len("live_")] for c in calls} == {"0", "1"}
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            for call in calls:  # each hang-up names its session: it must reach that worker
                res = await http.post(
                    f"{base}/live/sessions/{call.call_id}/hangup",
                    headers={"Authorization": f"Bearer {KEY}"},
                )
                assert res.status_code == 200, res.text
                await call.wait_for("session.closed", timeout=TIMEOUT)
    finally:
        for call in calls:
            await call.close()
