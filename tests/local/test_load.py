"""Load: ten WebRTC calls at once against one local server, each a whole call (connect, a spoken
text turn, the reply's audio, hang up), with nothing crossing between calls and nothing left on
the server once they have all gone."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
import numpy as np
import pytest

from realtime_widget.local import LocalServer
from realtime_widget.local.client import RealtimeCall

from ..protocol import check_client_event, check_server_event

KEY = "sk-local-load-0000"
CALLS = 10
TIMEOUT = 45.0  # ten calls share two cores with Opus both ways: generous, but a bound
QUIET = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
T = TypeVar("T")


@pytest.fixture()
def own_server() -> Iterator[LocalServer]:
    """A server of this test's own: its state after the calls is this test's alone."""
    with LocalServer(port=0) as running:
        yield running


async def on_server(server: LocalServer, fn: Callable[[], T]) -> T:
    """Run ``fn`` on the server's loop (its state belongs to that thread) and return its value."""

    async def inside() -> T:
        return fn()

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(inside(), server.loop))


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float = TIMEOUT
) -> None:
    """Wait for ``condition()`` to hold, checking it every 20 ms; fail with ``what`` after
    ``timeout`` (the server's state lives on another thread: there is no event to await)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


def words(i: int) -> str:
    return f"caller number {i} says {'abcdefghij'[i]}{i}{'jihgfedcba'[i]}"


def rms_dbfs(pcm: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0
    return float(20 * np.log10(max(rms, 1e-9) / 32768))


async def one_call(call: RealtimeCall, i: int) -> None:
    """Connect, say this call's words, wait for the whole spoken reply; the call stays up."""
    await call.connect(timeout=TIMEOUT)
    await call.wait_for("session.created", timeout=TIMEOUT)
    for event in (
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": words(i)}],
            },
        },
        {"type": "response.create"},
    ):
        check_client_event(event)
        call.send(event)
    await call.wait_for("response.done", timeout=TIMEOUT)
    await call.wait_for("output_audio_buffer.stopped", timeout=TIMEOUT)


async def test_ten_concurrent_calls_each_get_their_own_reply_and_leave_nothing_behind(
    own_server: LocalServer,
) -> None:
    server = own_server
    tasks_before = await on_server(server, lambda: len(asyncio.all_tasks()))
    calls = [
        RealtimeCall(server.base_url, api_key=KEY, session=QUIET, on_event=check_server_event)
        for _ in range(CALLS)
    ]
    try:
        results = await asyncio.gather(
            *(one_call(call, i) for i, call in enumerate(calls)), return_exceptions=True
        )
        failures = [r for r in results if r is not None]
        assert not failures, f"{len(failures)} of {CALLS} calls failed: {failures!r}"

        # Ten calls, ten sessions, all live on the server at once.
        ids = [c.call_id for c in calls]
        assert len(set(ids)) == CALLS and all(i and i.startswith("rtc_") for i in ids)
        live = await on_server(server, lambda: sorted(server.realtime.calls))
        assert live == sorted(str(i) for i in ids)
        sessions = [c.of("session.created")[0]["session"]["id"] for c in calls]
        assert len(set(sessions)) == CALLS

        # Each call heard its own words back, and nothing of anyone else's.
        for i, call in enumerate(calls):
            done = call.of("response.done")
            assert len(done) == 1
            reply = done[0]["response"]["output"][0]["content"][0]["transcript"]
            assert reply == f"You said: {words(i)}"
            deltas = call.of("response.output_audio_transcript.delta")
            assert "".join(e["delta"] for e in deltas) == reply
            text = str(call.events)
            others = [j for j in range(CALLS) if j != i and words(j) in text]
            assert not others, f"call {i} saw the words of calls {others}"

        # Item and response ids are per call: no event of one call names another's.
        def named(call: RealtimeCall) -> set[str]:
            out: set[str] = set()
            for e in call.events:
                out |= {e[k] for k in ("item_id", "response_id") if isinstance(e.get(k), str)}
                for key in ("item", "response"):
                    if isinstance(e.get(key), dict) and isinstance(e[key].get("id"), str):
                        out.add(e[key]["id"])
            return out

        seen = [named(c) for c in calls]
        for i in range(CALLS):
            for j in range(i + 1, CALLS):
                assert not seen[i] & seen[j], f"calls {i} and {j} share {seen[i] & seen[j]}"

        # Each received the model's voice on its own track: frames, and speech among them.
        for i, call in enumerate(calls):
            assert len(call.received_audio) > 50, f"call {i}: {len(call.received_audio)} frames"
            assert rms_dbfs(call.audio()) > -50, f"call {i}'s audio is silent"

        # Server-side objects, kept weakly: after the hang-ups they must be gone, not just closed.
        held = await on_server(
            server, lambda: [(c.rtc, c.rtc._pc, c.session) for c in server.realtime.calls.values()]
        )
        gone = [weakref.ref(o) for objects in held for o in objects]
        assert len(gone) == 3 * CALLS
    finally:
        # Hang up: half by the API (as the kernel's disconnect does), half by the peer leaving.
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            hangups = [
                http.post(
                    f"{server.base_url}/realtime/calls/{c.call_id}/hangup",
                    headers={"Authorization": f"Bearer {KEY}"},
                )
                for c in calls[::2]
                if c.call_id is not None
            ]
            answers = await asyncio.gather(*hangups)
        await asyncio.gather(*(c.close() for c in calls))
    assert [a.status_code for a in answers] == [200] * len(answers)
    del held

    async def empty() -> bool:
        state = await on_server(
            server,
            lambda: (
                len(server.realtime.calls),
                len(server.realtime._ending),
                len(asyncio.all_tasks()),
            ),
        )
        return state == (0, 0, tasks_before)

    await until(empty, "the server still holds calls or tasks after every call hung up")
    for call in calls:
        assert call.pc.connectionState == "closed"

    async def collected() -> bool:
        await on_server(server, gc.collect)
        return all(ref() is None for ref in gone)

    await until(collected, "the server's calls, sessions or peer connections were not freed")
