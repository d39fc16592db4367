"""Record real event sequences from the local server as test data for the metrics.

Each scenario runs one WebRTC call (``realtime_widget.local.client.RealtimeCall``) against a fresh
``LocalServer`` and writes ``tests/data/<name>.jsonl``: one EventRecord-like object a line,
``{"direction", "t_browser", "t_kernel", "event"}``. Both timestamps are this process's clock
(``time.time() * 1000``) taken when an event arrives (``in``) or is sent (``out``), as the kernel
would see them.

Run it again after the local server's behaviour changes (then update the exact values the tests
expect)::

    python tests/data/record.py            # all scenarios
    python tests/data/record.py barge_in   # one
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from realtime_widget.events import user_text
from realtime_widget.local import LocalServer
from realtime_widget.local.client import RealtimeCall

HERE = Path(__file__).parent
KEY = "sk-local-record"
RATE = 24000

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TOOL_INSTRUCTIONS = (
    "You are a weather assistant for a notebook demo. When the user asks about the weather in a "
    "city, call the get_weather tool with that city, wait for its result, and then say the "
    "temperature in one short sentence. Never invent a temperature, and never call another tool."
)


def tone(seconds: float, freq: float = 440.0, dbfs: float = -20.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    amplitude = 32767 * 10 ** (dbfs / 20) * np.sqrt(2)
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


class Recorder:
    """A call whose events, both ways, are logged with the local clock."""

    def __init__(self, server: LocalServer, session: dict[str, Any] | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self.call = RealtimeCall(
            server.base_url, api_key=KEY, session=session, on_event=self._incoming
        )

    def _log(self, direction: str, event: dict[str, Any]) -> None:
        now = time.time() * 1000
        self.records.append(
            {"direction": direction, "t_browser": now, "t_kernel": now, "event": event}
        )

    def _incoming(self, event: dict[str, Any]) -> None:
        self._log("in", event)

    def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            self._log("out", event)
            self.call.send(event)

    async def settle(self, seconds: float = 0.3) -> None:
        """Let trailing events (rate limits, late transcriptions) arrive."""
        await asyncio.sleep(seconds)


async def text_turn(rec: Recorder) -> None:
    """(1) A typed "hello" answered in speech, with playback started/stopped."""
    call = rec.call
    await call.wait_for("session.created")
    rec.send(user_text("hello"), {"type": "response.create"})
    await call.wait_for("response.done")
    await call.wait_for("output_audio_buffer.stopped", timeout=15)
    await rec.settle()


async def voice_turn(rec: Recorder) -> None:
    """(2) 0.8 s of a 440 Hz tone from the microphone; its transcription completes late."""
    call = rec.call
    await call.wait_for("session.created")
    call.microphone.speak(np.concatenate([tone(0.8), silence(1.0)]))
    await call.wait_for("response.done", timeout=15)
    await call.wait_for("output_audio_buffer.stopped", timeout=15)
    await call.wait_for("conversation.item.input_audio_transcription.completed")
    await rec.settle()


async def barge_in(rec: Recorder) -> None:
    """(3) A long spoken reply cut by microphone speech, then the reply to that speech."""
    call = rec.call
    await call.wait_for("session.created")
    rec.send(
        user_text("please tell me a long story about the sea, the wind and the sky"),
        {"type": "response.create"},
    )
    await call.wait_for("output_audio_buffer.started")
    await call.wait_for("response.output_audio_transcript.delta", count=3)
    call.microphone.speak(np.concatenate([tone(0.6), silence(1.0)]))
    await call.wait_for("output_audio_buffer.cleared")
    await call.wait_for("response.done", count=2, timeout=15)
    await call.wait_for("output_audio_buffer.stopped", timeout=15)
    await rec.settle()


async def tool_call(rec: Recorder) -> None:
    """(4) get_weather(city=Paris) called, answered with a function_call_output, spoken about."""
    call = rec.call
    await call.wait_for("session.created")
    rec.send({"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER_TOOL]}})
    await call.wait_for("session.updated")
    rec.send(user_text("call get_weather with city=Paris"), {"type": "response.create"})
    done = await call.wait_for("response.done")
    call_item = done["response"]["output"][0]
    await asyncio.sleep(0.12)  # "running" the tool
    rec.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": call_item["call_id"],
                "output": json.dumps({"city": "Paris", "temperature_c": 18}),
            },
        },
        {"type": "response.create"},
    )
    await call.wait_for("response.done", count=2)
    await call.wait_for("output_audio_buffer.stopped", timeout=15)
    await rec.settle()


async def queued_response(rec: Recorder) -> None:
    """(5) A second response.create while the first is active: an error, no second response."""
    call = rec.call
    await call.wait_for("session.created")
    rec.send(user_text("hello"), {"type": "response.create"})
    await call.wait_for("response.created")
    rec.send({"type": "response.create", "event_id": "evt_second_create"})
    await call.wait_for("error")
    await call.wait_for("response.done")
    await call.wait_for("output_audio_buffer.stopped", timeout=15)
    await rec.settle()


SCENARIOS: dict[str, tuple[Callable[[Recorder], Awaitable[None]], dict[str, Any] | None]] = {
    "text_turn": (text_turn, None),
    "voice_turn": (
        voice_turn,
        {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}},
    ),
    "barge_in": (barge_in, None),
    # Long instructions, so that the second response's input is partly cached (blocks of 64).
    "tool_call": (tool_call, {"type": "realtime", "instructions": TOOL_INSTRUCTIONS}),
    "queued_response": (queued_response, None),
}


async def record(name: str) -> Path:
    scenario, session = SCENARIOS[name]
    with LocalServer(port=0) as server:
        rec = Recorder(server, session)
        await rec.call.connect()
        try:
            await scenario(rec)
        finally:
            await rec.call.close()
    path = HERE / f"{name}.jsonl"
    with path.open("w") as out:
        for record_ in rec.records:
            out.write(json.dumps(record_, separators=(",", ":")) + "\n")
    return path


async def main(names: list[str]) -> None:
    for name in names or list(SCENARIOS):
        path = await record(name)
        print(f"{path.name}: {sum(1 for _ in path.open())} events")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
