"""The widget's Python side, driven through the same custom messages the browser sends."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from realtime_widget import RealtimeWidget
from realtime_widget.config import ConfigError
from realtime_widget.events import InvalidEventError

from .browser import FakeBrowser

SENTINEL = "test-sentinel-never-leaves-the-kernel"  # not a key format on purpose


@pytest.fixture()
def local_widget() -> RealtimeWidget:
    return RealtimeWidget(endpoint="local", instructions="Be brief.")


def test_unknown_keyword_arguments_name_the_closest_valid_one() -> None:
    with pytest.raises(TypeError, match="'instructions'"):
        RealtimeWidget(endpoint="local", instructoins="x")  # type: ignore[call-arg]


def test_the_session_comes_from_keyword_arguments_in_the_ga_shape() -> None:
    w = RealtimeWidget(
        endpoint="local",
        voice="cedar",
        output_modalities=["text"],
        turn_detection=None,
        transcription="gpt-4o-mini-transcribe",
    )
    assert w.session["type"] == "realtime"
    assert w.session["audio"]["output"]["voice"] == "cedar"
    assert w.session["audio"]["input"]["turn_detection"] is None
    assert w.session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    # Voices are open (a custom voice's name is any string): a wrong shape is refused.
    assert RealtimeWidget(endpoint="local", voice="my-voice").session["audio"]["output"] == {
        "voice": "my-voice"
    }
    with pytest.raises(ConfigError, match=r"turn_detection\.type"):
        RealtimeWidget(endpoint="local", turn_detection={"type": "loud"})


def test_no_key_and_no_endpoint_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    w = RealtimeWidget()
    browser = FakeBrowser(w)
    with pytest.raises(ConfigError) as refused:
        w.connect()
    assert "OPENAI_API_KEY" in str(refused.value) and 'endpoint="local"' in str(refused.value)
    assert w.status == "error" and "OPENAI_API_KEY" in w.error
    assert not browser.custom("connect")


def test_connect_asks_the_browser_and_status_follows_its_reports(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    seen: list[str] = []
    local_widget.observe(lambda change: seen.append(change["new"]), names=["status"])
    local_widget.connect()
    assert browser.custom("connect") == [{"kind": "connect"}]
    browser.status("connected", call_id="rtc_abc", muted=False)
    assert local_widget.call_id == "rtc_abc"
    browser.status("error", step="sdp", error="Posting the SDP offer was refused (401)")
    assert local_widget.status == "error"
    assert local_widget.error == "[sdp] Posting the SDP offer was refused (401)"
    assert seen == ["connecting", "connected", "error"]
    with pytest.raises(Exception):  # noqa: B017 - traitlets' TraitError
        local_widget.status = "connected"  # read-only from Python


async def test_an_ephemeral_key_request_is_answered_with_a_client_secret_only(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    browser.post({"kind": "request", "id": 1, "op": "key"})
    reply = await browser.wait_custom("reply")
    assert reply["id"] == 1 and reply["ok"] is True
    assert reply["value"]["secret"].startswith("ek_")
    assert reply["value"]["calls_url"] == local_widget.endpoint.calls_url
    assert local_widget.endpoint.api_key not in browser.wire_text()


async def test_a_relay_request_posts_the_offer_and_sets_the_call_id(
    local_widget: RealtimeWidget,
) -> None:
    from aiortc import RTCPeerConnection

    from realtime_widget.local.rtc import use_loopback_candidates

    use_loopback_candidates()
    pc = RTCPeerConnection()
    pc.createDataChannel("oai-events")
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    browser.post({"kind": "request", "id": 2, "op": "relay", "sdp": pc.localDescription.sdp})
    reply = await browser.wait_custom("reply")
    await pc.close()
    assert reply["ok"] is True and reply["value"]["sdp"].startswith("v=0")
    assert reply["value"]["call_id"].startswith("rtc_")
    assert local_widget.call_id == reply["value"]["call_id"]


async def test_a_refused_mint_replies_with_the_providers_message() -> None:
    from realtime_widget.local import LocalServer

    with LocalServer(port=0, api_key="sk-the-right-one") as guarded:
        w = RealtimeWidget(endpoint=guarded.base_url, api_key=SENTINEL)
        browser = FakeBrowser(w)
        w.connect()
        browser.post({"kind": "request", "id": 3, "op": "key"})
        reply = await browser.wait_custom("reply")
    assert reply["ok"] is False
    assert "401" in reply["error"] and "Incorrect API key" in reply["error"]
    assert "OPENAI_API_KEY" in reply["error"]  # says what to do
    assert SENTINEL not in browser.wire_text()


async def test_an_unreachable_provider_is_explained() -> None:
    w = RealtimeWidget(endpoint="http://127.0.0.1:9/v1", api_key=SENTINEL)
    browser = FakeBrowser(w)
    w.connect()
    browser.post({"kind": "request", "id": 4, "op": "key"})
    reply = await browser.wait_custom("reply")
    assert reply["ok"] is False and "could not reach http://127.0.0.1:9/v1" in reply["error"]
    assert SENTINEL not in browser.wire_text()


def test_events_reach_python_in_order_with_both_clocks(local_widget: RealtimeWidget) -> None:
    browser = FakeBrowser(local_widget)
    got: list[str] = []
    everything: list[str] = []
    local_widget.on("response.done", lambda e: got.append(e["response"]["id"]))
    local_widget.on("*", lambda e: everything.append(e["type"]))
    before = time.time() * 1000
    browser.events(
        {"type": "session.created", "event_id": "e1", "session": {"type": "realtime"}},
        {"type": "response.done", "event_id": "e2", "response": {"id": "resp_1"}},
    )
    browser.events({"type": "response.create", "event_id": "c1"}, direction="out")
    assert got == ["resp_1"]
    assert everything == ["session.created", "response.done", "response.create"]
    records = local_widget.events.snapshot()
    assert [r.direction for r in records] == ["in", "in", "out"]
    assert all(r.t_kernel >= before and r.t_browser > 0 for r in records)
    assert local_widget.events.filter(direction="out")[0].type == "response.create"


def test_a_failing_handler_is_shown_and_the_others_still_run(local_widget: RealtimeWidget) -> None:
    browser = FakeBrowser(local_widget)
    ran: list[str] = []

    @local_widget.on("response.done")
    def broken(event: dict[str, Any]) -> None:
        raise KeyError("oops")

    local_widget.on("response.done", lambda e: ran.append("second"))
    browser.events({"type": "response.done", "event_id": "e", "response": {}})
    assert ran == ["second"]
    assert "broken" in local_widget.notices[-1] and "oops" in local_widget.notices[-1]


def test_send_validates_before_anything_is_sent(local_widget: RealtimeWidget) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    browser.status("connected")
    with pytest.raises(InvalidEventError, match="item"):
        local_widget.send({"type": "conversation.item.create"})
    with pytest.raises(InvalidEventError, match="Supported values"):
        local_widget.send({"type": "response.make"})
    with pytest.raises(InvalidEventError, match=r"session\.instructions"):
        local_widget.send(
            {"type": "session.update", "session": {"type": "realtime", "instructions": 3}}
        )
    # Tags of the wrong type (unhashable ones too) are refused the same way, naming the field.
    with pytest.raises(InvalidEventError, match=r"field 'type'"):
        local_widget.send({"type": []})
    with pytest.raises(InvalidEventError, match=r"item\.type"):
        local_widget.send({"type": "conversation.item.create", "item": {"type": {}}})
    assert not browser.custom("send")
    sent = local_widget.send({"type": "response.cancel"})
    assert sent[0]["event_id"].startswith("evt_")
    assert browser.custom("send")[-1]["events"] == sent


def test_events_sent_while_connecting_wait_for_the_call(local_widget: RealtimeWidget) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    local_widget.say("hello")
    assert not browser.custom("send")
    browser.status("connected")
    batch = browser.custom("send")[0]["events"]
    assert [e["type"] for e in batch] == ["conversation.item.create", "response.create"]
    assert batch[0]["item"]["content"][0]["text"] == "hello"


def test_send_when_not_connected_says_so(local_widget: RealtimeWidget) -> None:
    with pytest.raises(RuntimeError, match="connect"):
        local_widget.say("hello")


def test_interrupt_cancels_then_clears(local_widget: RealtimeWidget) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    browser.status("connected")
    local_widget.interrupt()
    types = [e["type"] for e in browser.custom("send")[-1]["events"]]
    assert types == ["response.cancel", "output_audio_buffer.clear"]


def test_update_session_sends_session_update_and_follows_session_updated(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    browser.status("connected")
    local_widget.update_session(instructions="Speak French.")
    event = browser.custom("send")[-1]["events"][0]
    assert event["session"] == {"type": "realtime", "instructions": "Speak French."}
    with pytest.raises(InvalidEventError, match="temperature"):
        local_widget.update_session(temperature=0.7)
    assert local_widget.session["instructions"] == "Speak French."
    effective = {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_1",
        "instructions": "Speak French.",
    }
    browser.events({"type": "session.updated", "event_id": "e", "session": effective})
    assert local_widget.server_session == effective
    assert "id" not in local_widget.session  # the next call is minted with the config only


def test_mute_and_disconnect_are_messages_and_muted_follows_the_browser(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.mute()
    assert browser.custom("mute") == [{"kind": "mute", "muted": True}]
    browser.status("connected", muted=True)
    assert local_widget.muted is True
    local_widget.disconnect()
    assert browser.custom("disconnect") == [{"kind": "disconnect"}]


def test_the_conversation_and_transcript_build_from_server_events(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    user = {
        "id": "item_u",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    bot = {"id": "item_a", "type": "message", "role": "assistant", "content": []}
    ids = {"response_id": "resp_1", "item_id": "item_a", "output_index": 0, "content_index": 0}
    browser.events(
        {"type": "conversation.item.added", "event_id": "1", "item": user},
        {
            "type": "conversation.item.added",
            "event_id": "2",
            "item": bot,
            "previous_item_id": "item_u",
        },
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": "3",
            **ids,
            "delta": "You said:",
        },
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": "4",
            **ids,
            "delta": " hello",
        },
    )
    assert [(t.role, t.text) for t in local_widget.transcript] == [
        ("user", "hello"),
        ("assistant", "You said: hello"),
    ]
    assert local_widget.transcript.to_markdown() == (
        "**user:** hello\n\n**assistant:** You said: hello"
    )


def test_malformed_browser_messages_are_refused_and_shown(local_widget: RealtimeWidget) -> None:
    browser = FakeBrowser(local_widget)
    browser.post({"kind": "events", "events": [{"dir": "sideways", "t": 1, "event": {}}]})
    browser.post({"kind": "teleport"})
    assert len(local_widget.events) == 0
    assert "sideways" in local_widget.notices[-2] and "teleport" in local_widget.notices[-1]


def test_repr_never_shows_the_key() -> None:
    w = RealtimeWidget(endpoint="https://example.invalid/v1", api_key=SENTINEL)
    assert SENTINEL not in repr(w) and SENTINEL not in repr(w.endpoint)
    assert SENTINEL not in str(w.get_state())


async def test_hangup_ends_the_call_on_the_provider(local_widget: RealtimeWidget) -> None:
    from realtime_widget.config import shared_local_server
    from realtime_widget.local.client import RealtimeCall

    server = shared_local_server()
    call = RealtimeCall(server.base_url, api_key="sk-x")
    await call.connect()
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    browser.status("connected", call_id=call.call_id)
    local_widget.hangup()
    assert browser.custom("disconnect")
    try:
        await __import__("asyncio").wait_for(call.closed.wait(), 10)
    finally:
        await call.close()
    async with httpx.AsyncClient() as http:
        res = await http.post(
            server.base_url + f"/realtime/calls/{call.call_id}/hangup",
            headers={"Authorization": "Bearer sk-x"},
        )
    assert res.status_code == 404


async def test_wait_for_is_a_future_of_the_next_event_of_a_type(
    local_widget: RealtimeWidget,
) -> None:
    import asyncio

    browser = FakeBrowser(local_widget)
    done = local_widget.wait_for("response.done", timeout=5)
    browser.events({"type": "response.created", "event_id": "a", "response": {"id": "r1"}})
    assert not done.done()
    browser.events({"type": "response.done", "event_id": "b", "response": {"id": "r1"}})
    event = await asyncio.wait_for(done, 5)
    assert event["response"]["id"] == "r1"
    assert local_widget._core._dispatch.waiting() == 0  # the one-shot waiter is gone
    late = local_widget.wait_for("session.updated", timeout=0.05)
    with pytest.raises(TimeoutError, match=r"session\.updated"):
        await late


def test_a_call_without_a_microphone_is_connected_and_says_why(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    reason = "Microphone access was denied: allow it in the browser's site settings."
    browser.status("connected", call_id="rtc_text", microphone=reason)
    assert local_widget.status == "connected" and local_widget.error == ""
    assert local_widget.microphone_error == reason
    local_widget.say("typing works")  # text goes on as usual
    assert [e["type"] for e in browser.custom("send")[-1]["events"]][-1] == "response.create"
    browser.status("closed")
    browser.status("connected", call_id="rtc_voice", microphone=None)
    assert local_widget.microphone_error == ""


def test_the_composer_checks_and_sends_through_the_kernel_by_send_rules(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    bad = {"type": "response.create", "response": {"output_modalities": ["video"]}}
    browser.post({"kind": "request", "id": 1, "op": "check", "event": bad})
    refused = browser.custom("reply")[-1]
    assert refused["id"] == 1 and refused["ok"] is False and "output_modalities" in refused["error"]
    good = {"type": "response.cancel"}
    browser.post({"kind": "request", "id": 2, "op": "check", "event": good})
    assert browser.custom("reply")[-1] == {"kind": "reply", "id": 2, "ok": True, "value": {}}
    assert browser.custom("send") == []  # checking sends nothing
    browser.post({"kind": "request", "id": 3, "op": "send", "event": good})
    assert "Not connected" in browser.custom("reply")[-1]["error"]
    local_widget.connect()
    browser.status("connected", call_id="rtc_compose")
    browser.post({"kind": "request", "id": 4, "op": "send", "event": good})
    reply = browser.custom("reply")[-1]
    sent = browser.custom("send")[-1]["events"]
    assert reply["ok"] and sent == [
        {"type": "response.cancel", "event_id": reply["value"]["event_id"]}
    ]
    browser.post({"kind": "request", "id": 5, "op": "send"})  # no event: refused, shown
    assert "needs the client 'event'" in local_widget.notices[-1]


def test_session_updates_from_any_sender_become_the_config_of_the_next_call(
    local_widget: RealtimeWidget,
) -> None:
    browser = FakeBrowser(local_widget)
    local_widget.connect()
    browser.status("connected", call_id="rtc_cfg")
    # The Audio panel's push-to-talk and the Session panel's voice, echoed as sent.
    ptt = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    voice = {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}
    for session in (ptt, voice):
        browser.events({"type": "session.update", "session": session}, direction="out")
    audio = local_widget.session["audio"]
    assert audio["input"]["turn_detection"] is None and audio["output"]["voice"] == "cedar"
    assert local_widget.session["instructions"] == "Be brief."  # the rest is kept
    bad = {"type": "realtime", "audio": {"output": {"voice": 7}}}
    browser.events({"type": "session.update", "session": bad}, direction="out")
    assert local_widget.session["audio"]["output"]["voice"] == "cedar"  # refused: ignored
