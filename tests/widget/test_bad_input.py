"""Bad input from Python is refused before anything is sent, with a message that names the
field (as the API would name it) and says what is wrong; nothing reaches the browser."""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime_widget import RealtimeWidget
from realtime_widget.config import ConfigError
from realtime_widget.events import InvalidEventError

from .browser import FakeBrowser


@pytest.fixture()
def live() -> tuple[RealtimeWidget, FakeBrowser]:
    widget = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", call_id="rtc_bad_input")
    return widget, browser


def user_text(text: Any) -> dict[str, Any]:
    content = [{"type": "input_text", "text": text}]
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": content},
    }


@pytest.mark.parametrize(
    ("call", "field", "says"),
    [
        (lambda w: w.say(123), "item.content[0].text", "expected a string"),
        (lambda w: w.say("hi", instructions=3), "response.instructions", "expected a string"),
        (
            lambda w: w.say("hi", output_modalities=["video"]),
            "response.output_modalities[0]",
            "'video'",
        ),
        (
            lambda w: w.say("hi", instructionz="x"),
            "response.instructionz",
            "Did you mean 'instructions'",
        ),
        (lambda w: w.send("response.create"), None, "a dict with a 'type'"),
        (lambda w: w.send({"type": "response.make"}), "type", "Supported values"),
        (
            lambda w: w.send({"type": "response.cancel", "event_id": 5}),
            "event_id",
            "expected a string",
        ),
        (lambda w: w.send({"type": "response.cancel", "bogus": 1}), "bogus", "Unknown parameter"),
        (
            lambda w: w.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": "i",
                    "content_index": 0,
                    "audio_end_ms": -5,
                }
            ),
            "audio_end_ms",
            ">= 0",
        ),
        (
            lambda w: w.send(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": "c", "output": {}},
                }
            ),
            "item.output",
            "expected a string",
        ),
        (
            lambda w: w.update_session(instrutions="x"),
            "session.instrutions",
            "Did you mean 'instructions'",
        ),
        # All are checked before any is sent: a bad second event stops the first one too.
        (
            lambda w: w.send(
                [
                    {"type": "response.cancel"},
                    {
                        **user_text("x"),
                        "item": {"type": "message", "role": "wizard", "content": []},
                    },
                ]
            ),
            "item.role",
            "'wizard'",
        ),
    ],
)
def test_bad_events_are_refused_before_sending_naming_the_field(
    live: tuple[RealtimeWidget, FakeBrowser], call: Any, field: str | None, says: str
) -> None:
    widget, browser = live
    with pytest.raises(InvalidEventError) as refused:
        call(widget)
    message = str(refused.value)
    assert message.startswith(("Not sent", "A client event")) and says in message, message
    if field is not None:
        assert f"'{field}'" in message, message
        assert refused.value.param in (field, None)
    assert browser.custom("send") == []
    assert widget.status == "connected"


def test_an_event_too_big_for_the_data_channel_is_refused_naming_its_largest_field(
    live: tuple[RealtimeWidget, FakeBrowser],
) -> None:
    widget, browser = live
    # Until the page reports its call's limit, Chromium's 256 KiB holds.
    with pytest.raises(InvalidEventError) as refused:
        widget.send(user_text("x" * 300_000))
    assert (
        refused.value.param == "item.content[0].text" and refused.value.code == "message_too_large"
    )
    assert "262,144 bytes" in str(refused.value) and "Shorten it or split it" in str(refused.value)
    # A call whose channel carries less (the page says so when connected) refuses less.
    browser.status("connected", call_id="rtc_bad_input", max_message_size=65_536)
    widget.send(user_text("x" * 60_000))
    with pytest.raises(
        InvalidEventError,
        match=r"over the 65,536 bytes .* 'item\.content\[0\]\.text' \(70,002 bytes\)",
    ):
        widget.say("x" * 70_000)
    sent = browser.custom("send")
    assert len(sent) == 1 and len(sent[0]["events"][0]["item"]["content"][0]["text"]) == 60_000


@pytest.mark.parametrize("size", [0, -1, 1.5, "big"])
def test_a_bad_message_size_from_the_browser_is_refused_and_shown(size: Any) -> None:
    widget = RealtimeWidget(endpoint="local")
    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", max_message_size=size)
    assert widget.status == "connecting"  # the malformed status was not applied
    assert "max_message_size" in widget.notices[-1]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"voice": 3}, "session.audio.output.voice"),
        ({"instructions": 5}, "session.instructions"),
        ({"instructionz": "x"}, "instructions"),
    ],
)
def test_bad_constructor_arguments_name_the_field(options: dict[str, Any], says: str) -> None:
    with pytest.raises((ConfigError, TypeError)) as refused:
        RealtimeWidget(endpoint="local", **options)
    assert says in str(refused.value)


async def test_a_tool_output_too_big_to_send_still_answers_the_model_with_why() -> None:
    widget = RealtimeWidget(endpoint="local")

    @widget.tool
    def dump() -> str:
        """Everything."""
        return "x" * 300_000

    browser = FakeBrowser(widget)
    widget.connect()
    browser.status("connected", call_id="rtc_big_tool")
    browser.events(
        {"type": "response.created", "event_id": "e1", "response": {"id": "resp_1"}},
        {
            "type": "response.function_call_arguments.done",
            "event_id": "e2",
            "response_id": "resp_1",
            "item_id": "item_c",
            "output_index": 0,
            "call_id": "call_1",
            "name": "dump",
            "arguments": "{}",
        },
    )
    sent = (await browser.wait_custom("send"))["events"][0]
    output = json.loads(sent["item"]["output"])
    assert sent["item"]["call_id"] == "call_1"
    assert "'item.output'" in output["error"] and "262,144 bytes" in output["error"]
    assert len(widget.tool_results[-1].output) == 300_000  # the full result stays in Python
