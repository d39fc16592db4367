"""A GPT-Live session through the widget's kernel side: the kernel relays a real aiortc offer
to the local server's /v1/live/sessions, and a stand-in page carries the data channel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from realtime_widget import RealtimeWidget
from realtime_widget.config import ConfigError
from realtime_widget.events import InvalidEventError
from realtime_widget.local.client import MicrophoneTrack
from realtime_widget.local.rtc import use_loopback_candidates

from ..local.harness import silence, tone
from ..protocol import check_live_client_event
from .browser import FakeBrowser


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class LivePage(FakeBrowser):
    """The page's part of a Live call, in Python: an aiortc peer whose offer goes to the kernel
    (``relay``), whose data channel's events go to the kernel, and which sends what the kernel
    asks it to."""

    def __init__(self, widget: RealtimeWidget) -> None:
        super().__init__(widget)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.microphone = MicrophoneTrack()
        self.channel = self.pc.createDataChannel("oai-events")
        self.channel.on("message", self._in)
        self.forwarded = 0

    def _in(self, message: str | bytes) -> None:
        event = json.loads(message)
        self.events(event)
        if event["type"] == "session.started":
            self.status("connected", call_id=event["session"]["id"])

    def _capture(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        super()._capture(data, metadata, buffers)
        content = data.get("content") if isinstance(data, dict) else None
        if isinstance(content, dict) and content.get("kind") == "send":
            for event in content["events"]:
                check_live_client_event(event)
                self.channel.send(json.dumps(event))
                self.events(event, direction="out")

    async def start(self) -> None:
        use_loopback_candidates()
        self.pc.addTrack(self.microphone)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.post({"kind": "request", "id": 1, "op": "relay", "sdp": self.pc.localDescription.sdp})
        reply = await self.wait_custom("reply")
        assert reply["ok"], reply
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=reply["value"]["sdp"], type="answer")
        )

    async def close(self) -> None:
        await self.pc.close()


async def until(condition: Callable[[], Any], timeout: float = 15.0) -> None:
    async def wait() -> None:
        while not condition():  # noqa: ASYNC110 - state set by the comm, server and tool threads
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


@pytest.fixture()
async def live() -> AsyncIterator[tuple[RealtimeWidget, LivePage]]:
    w = RealtimeWidget(endpoint="local", model="gpt-live-1.1", tools=[get_weather])
    page = LivePage(w)
    w.connect()
    await page.start()
    await until(lambda: w.status == "connected")
    yield w, page
    await page.close()
    w.close()


def test_a_live_model_makes_a_live_session_and_says_what_differs() -> None:
    w = RealtimeWidget(endpoint="local", model="gpt-live-1.1", tools=[get_weather])
    assert w.is_live and w.mode == "relay"
    delegation = w._core.config["delegation"]
    assert delegation["type"] == "responses"
    assert delegation["responses"]["tools"][0]["name"] == "get_weather"
    with pytest.raises(ConfigError, match="no ephemeral keys"):
        RealtimeWidget(endpoint="local", model="gpt-live-1", mode="ephemeral")
    with pytest.raises(ConfigError, match="no turn_detection"):
        RealtimeWidget(endpoint="local", model="gpt-live-1", turn_detection=None)
    with pytest.raises(RuntimeError, match="microphone"):
        w.say("hello")


async def test_the_kernel_creates_the_session_with_the_pages_allow_list(
    live: tuple[RealtimeWidget, LivePage],
) -> None:
    w, _ = live
    assert w.call_id.startswith("live_")
    allowed = w.server_session["client"]["data_channel"]["allowed_client_events"]
    assert "session.close" in allowed and "session.update" not in allowed
    assert w.server_session["model"] == "gpt-live-1.1"


async def test_captions_become_turns_and_metrics(live: tuple[RealtimeWidget, LivePage]) -> None:
    w, page = live
    page.microphone.speak(tone(1.0))
    page.microphone.speak(silence(1.0))
    await until(lambda: len(w.transcript) >= 2 and w.transcript[-1].text.endswith("audio."))
    user, assistant = w.transcript[0], w.transcript[1]
    assert user.role == "user" and user.text.endswith("seconds of speech)")
    assert assistant.role == "assistant" and assistant.text.startswith("I heard 1.")
    turn = w.metrics.turns[0]
    assert turn.response_id == "live_assistant_1"
    assert turn.latency_ms is not None and turn.latency_ms >= 0


async def test_a_python_tool_runs_through_delegation(
    live: tuple[RealtimeWidget, LivePage],
) -> None:
    w, _ = live
    w.append_instructions("call get_weather with city=Paris")
    await until(lambda: any("sunny in Paris" in t.text for t in w.transcript))
    assert w.tool_results[0].name == "get_weather"
    assert w.tool_results[0].arguments == {"city": "Paris"}
    assert [t.text for t in w.transcript if t.role == "tool"][:2] == [
        'get_weather({"city": "Paris"})',
        "→ sunny in Paris",
    ]
    sent = [r.type for r in w.events if r.direction == "out"]
    assert sent[-2:] == ["response.item.create", "response.create"]


async def test_immutable_fields_are_refused_before_sending(
    live: tuple[RealtimeWidget, LivePage],
) -> None:
    w, _ = live
    with pytest.raises(InvalidEventError, match="cannot change during a call"):
        w.update_session(instructions="Be brief.")
    assert w._core.config.get("instructions") is None


async def test_update_session_goes_over_the_kernels_line(
    live: tuple[RealtimeWidget, LivePage],
) -> None:
    w, page = live
    sent_before = len(page.custom("send"))
    w.update_session(delegation={"type": "responses", "responses": {"max_output_tokens": 500}})
    await until(lambda: any(r.type == "session.updated" for r in w.events))
    assert len(page.custom("send")) == sent_before  # not through the page


async def test_usage_prices_the_session_per_second(live: tuple[RealtimeWidget, LivePage]) -> None:
    w, page = live
    page.events({"type": "session.usage.updated", "event_id": "e", "usage": {"seconds": 120}})
    assert w.totals["seconds"] == 120
    assert w.totals["cost"] == pytest.approx(0.1)


async def test_client_delegation_is_answered_by_a_python_handler() -> None:
    w = RealtimeWidget(endpoint="local", model="gpt-live-1")
    asked: list[str] = []

    @w.on_delegation
    def answer(delegation: Any) -> str:
        asked.append(delegation.id)
        return "The shop opens at nine."

    page = LivePage(w)
    w.connect()
    await page.start()
    try:
        await until(lambda: w.status == "connected")
        w.append_instructions("call opening_hours")
        await until(lambda: any(t.text == "The shop opens at nine." for t in w.transcript))
        assert asked and asked[0].startswith("del_")
    finally:
        await page.close()
        w.close()


async def test_a_stored_session_forks_with_its_history() -> None:
    w = RealtimeWidget(endpoint="local", model="gpt-live-1.1", session={"store": True})
    with pytest.raises(RuntimeError, match="store=True"):
        RealtimeWidget(endpoint="local", model="gpt-live-1.1").fork()
    page = LivePage(w)
    w.connect()
    await page.start()
    try:
        await until(lambda: w.status == "connected")
        w.comment("Remember the number seven.")
        await until(lambda: any("seven" in t.text for t in w.transcript))
        first = w.call_id
        w.disconnect()
        page.status("closed")
        await page.close()
        page = LivePage(w)
        w.fork()
        await page.start()
        await until(lambda: w.status == "connected")
        assert w.call_id != first and w.call_id.startswith("live_")
        history = w.server_session["input"]
        assert any("seven" in m["content"][0]["text"] for m in history)
    finally:
        await page.close()
        w.close()
