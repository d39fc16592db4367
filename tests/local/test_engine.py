"""The local model, driven directly: every event it emits parses with the openai models."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from realtime_widget.local.engine import parse_tool_arguments

from .harness import Harness, silence, tone

TEXT = {"type": "realtime", "output_modalities": ["text"]}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def test_session_created_comes_first_with_the_effective_config() -> None:
    h = Harness()
    h.session.start()
    assert h.types() == ["session.created"]
    session = h.events[0]["session"]
    assert session["model"] == "gpt-realtime-2"
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    h.session.close()


async def test_session_update_merges_and_answers_with_the_full_config() -> None:
    h = Harness()
    h.session.start()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}},
            },
        }
    )
    updated = await h.wait_for("session.updated")
    session = updated["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"]["voice"] == "marin"  # untouched fields stay
    detection = session["audio"]["input"]["turn_detection"]
    assert detection["threshold"] == 0.7 and detection["silence_duration_ms"] == 500
    h.send({"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER_TOOL]}})
    updated = await h.wait_for("session.updated", count=2)
    assert updated["session"]["tools"][0]["name"] == "get_weather"
    assert updated["session"]["instructions"] == "Be brief."
    h.session.close()


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "session.update", "session": {}}, "missing_required_parameter", "session.type"),
        (
            {"type": "session.update", "session": {"type": "realtime", "temperature": 0.8}},
            "unknown_parameter",
            "session.temperature",
        ),
        (
            {"type": "session.update", "session": {"type": "realtime", "instructions": 5}},
            "invalid_type",
            "session.instructions",
        ),
        (
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"output": {"voice": 7}}},
            },
            "invalid_type",
            "session.audio.output.voice",
        ),
        ({"type": "conversation.item.create"}, "missing_required_parameter", "item"),
        ({"type": "response.make"}, "invalid_value", "type"),
        ({"type": "conversation.item.delete", "item_id": 3}, "invalid_type", "item_id"),
    ],
)
async def test_bad_events_get_the_apis_error_echoing_the_event_id(
    event: dict[str, object], code: str, param: str
) -> None:
    h = Harness()
    h.session.start()
    h.send({**event, "event_id": "evt_mine"}, valid=False)
    error = (await h.wait_for("error"))["error"]
    assert (error["code"], error["param"], error["event_id"]) == (code, param, "evt_mine")
    assert error["type"] == "invalid_request_error" and error["message"]
    h.session.close()


async def test_invalid_json_is_an_error_event_and_the_session_goes_on() -> None:
    h = Harness(TEXT)
    h.session.start()
    h.session.receive("{not json")
    assert (await h.wait_for("error"))["error"]["code"] == "invalid_json"
    h.say("still here")
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "completed"
    h.session.close()


async def test_text_reply_streams_word_by_word_then_done_usage_and_rate_limits() -> None:
    h = Harness(TEXT)
    h.session.start()
    h.say("hello there")
    done = await h.wait_for("response.done")
    await h.wait_for("rate_limits.updated")
    deltas = [e["delta"] for e in h.of("response.output_text.delta")]
    assert "".join(deltas) == "You said: hello there"
    assert len(deltas) == 4
    assert h.of("response.output_text.done")[0]["text"] == "You said: hello there"
    response = done["response"]
    assert response["status"] == "completed"
    assert response["output"][0]["content"] == [
        {"type": "output_text", "text": "You said: hello there"}
    ]
    usage = response["usage"]
    assert usage["output_tokens"] == 6  # ceil(len("You said: hello there") / 4)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    order = [t for t in h.types() if t.startswith(("response.", "rate_limits"))]
    # As the API does: the rate limits when the response starts, the usage when it is done.
    assert order[:2] == ["response.created", "rate_limits.updated"]
    assert order[-1] == "response.done"
    assert order.index("response.content_part.done") < order.index("response.output_item.done")
    h.session.close()


async def test_audio_over_websocket_arrives_as_pcm_deltas_with_a_transcript() -> None:
    h = Harness()
    h.session.start()
    h.say("good morning")
    await h.wait_for("response.done")
    pcm = np.concatenate(
        [
            np.frombuffer(base64.b64decode(e["delta"]), dtype="<i2")
            for e in h.of("response.output_audio.delta")
        ]
    )
    assert pcm.size > 24000 * 0.3 and np.abs(pcm).max() > 1000
    transcript = "".join(e["delta"] for e in h.of("response.output_audio_transcript.delta"))
    assert transcript == "You said: good morning"
    item = h.of("response.output_item.done")[0]["item"]
    assert item["content"] == [{"type": "output_audio", "transcript": transcript}]
    assert h.of("response.done")[0]["response"]["usage"]["output_token_details"]["audio_tokens"] > 0
    h.session.close()


async def test_a_named_tool_request_becomes_a_function_call_and_its_output_a_reply() -> None:
    h = Harness({**TEXT, "tools": [WEATHER_TOOL]})
    h.session.start()
    h.say("please call get_weather with city=Paris, days=3")
    done = await h.wait_for("response.done")
    call = done["response"]["output"][0]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris", "days": 3}
    args_done = h.of("response.function_call_arguments.done")[0]
    assert args_done["call_id"] == call["call_id"]
    assert (
        "".join(e["delta"] for e in h.of("response.function_call_arguments.delta"))
        == (call["arguments"])
    )
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
        }
    )
    h.send({"type": "response.create"})
    done = await h.wait_for("response.done", count=2)
    assert done["response"]["output"][0]["content"][0]["text"] == (
        "The get_weather tool returned: sunny"
    )
    h.session.close()


def test_tool_arguments_parse_json_or_key_value_pairs() -> None:
    assert parse_tool_arguments('{"city": "Oslo"}.') == {"city": "Oslo"}
    assert parse_tool_arguments("city='New York' and metric=true, days=2") == {
        "city": "New York",
        "metric": True,
        "days": 2,
    }
    assert parse_tool_arguments("nothing here") == {}


async def test_a_second_response_while_one_is_active_is_refused() -> None:
    h = Harness(TEXT, text_delay_s=0.05)
    h.session.start()
    h.say("one two three four five six")
    h.send({"type": "response.create", "event_id": "evt_again"})
    error = (await h.wait_for("error"))["error"]
    assert error["code"] == "conversation_already_has_active_response"
    assert error["event_id"] == "evt_again"
    assert h.of("response.created")[0]["response"]["id"] in error["message"]
    # Out of band (conversation "none") may run beside it, and stays out of the conversation.
    h.send(
        {
            "type": "response.create",
            "response": {"conversation": "none", "metadata": {"topic": "side"}, "input": []},
        }
    )
    side = await h.wait_for("response.done")
    assert side["response"]["metadata"] == {"topic": "side"}
    assert side["response"]["conversation_id"] is None
    await h.wait_for("response.done", count=2)
    added_ids = {e["item"]["id"] for e in h.of("conversation.item.added")}
    assert side["response"]["output"][0]["id"] not in added_ids
    h.session.close()


async def test_cancel_ends_the_active_response_and_a_second_cancel_is_harmless() -> None:
    h = Harness(TEXT, text_delay_s=0.05)
    h.session.start()
    h.say("a long enough sentence to still be streaming")
    await h.wait_for("response.output_text.delta")
    h.send({"type": "response.cancel"})
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["response"]["output"][0]["status"] == "incomplete"
    h.send({"type": "response.cancel", "event_id": "evt_c"})
    error = (await h.wait_for("error"))["error"]
    assert (error["code"], error["event_id"]) == ("response_cancel_not_active", "evt_c")
    assert len(h.of("response.done")) == 1
    h.session.close()


async def test_max_output_tokens_ends_the_response_incomplete() -> None:
    h = Harness(TEXT)
    h.session.start()
    h.say("one two three four five six seven eight nine ten", max_output_tokens=4)
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "incomplete"
    assert done["response"]["status_details"]["reason"] == "max_output_tokens"
    assert done["response"]["usage"]["output_tokens"] <= 4
    h.session.close()


async def test_items_are_created_retrieved_truncated_and_deleted_as_the_api_does() -> None:
    h = Harness()
    h.session.start()
    h.say("truncate me later please")
    done = await h.wait_for("response.done")
    assistant = done["response"]["output"][0]
    h.send(
        {
            "type": "conversation.item.truncate",
            "item_id": assistant["id"],
            "content_index": 0,
            "audio_end_ms": 300,
        }
    )
    truncated = await h.wait_for("conversation.item.truncated")
    assert truncated["audio_end_ms"] == 300
    h.send({"type": "conversation.item.retrieve", "item_id": assistant["id"]})
    retrieved = (await h.wait_for("conversation.item.retrieved"))["item"]
    kept = retrieved["content"][0]["transcript"]
    assert len(kept) < len("You said: truncate me later please")
    user_id = h.of("conversation.item.added")[0]["item"]["id"]
    h.send(
        {
            "type": "conversation.item.truncate",
            "item_id": user_id,
            "content_index": 0,
            "audio_end_ms": 0,
            "event_id": "evt_t",
        }
    )
    error = (await h.wait_for("error"))["error"]
    assert (error["code"], error["event_id"]) == ("unsupported_content_type", "evt_t")
    h.send({"type": "conversation.item.delete", "item_id": user_id})
    assert (await h.wait_for("conversation.item.deleted"))["item_id"] == user_id
    h.send({"type": "conversation.item.delete", "item_id": user_id})
    assert (await h.wait_for("error", count=2))["error"]["code"] == "item_delete_invalid_item_id"
    h.session.close()


async def test_an_empty_commit_is_refused() -> None:
    h = Harness({"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    h.session.start()
    h.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
    error = (await h.wait_for("error"))["error"]
    assert (error["code"], error["event_id"]) == ("input_audio_buffer_commit_empty", "evt_commit")
    h.session.close()


async def test_server_vad_turns_speech_into_a_user_item_transcript_and_a_reply() -> None:
    h = Harness(
        {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
        }
    )
    h.session.start()
    h.append_audio(np.concatenate([silence(0.5), tone(1.2), silence(1.0)]))
    started = await h.wait_for("input_audio_buffer.speech_started")
    stopped = await h.wait_for("input_audio_buffer.speech_stopped")
    committed = await h.wait_for("input_audio_buffer.committed")
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert 150 <= started["audio_start_ms"] <= 250  # onset at 500 ms minus 300 ms padding
    assert 1650 <= stopped["audio_end_ms"] <= 1750
    done = await h.wait_for("response.done")
    assert done["response"]["output"][0]["content"][0]["text"].startswith("I heard 1.")
    completed = await h.wait_for("conversation.item.input_audio_transcription.completed")
    assert completed["item_id"] == committed["item_id"]
    assert completed["transcript"] == "(1.5 seconds of speech)"
    h.session.close()


async def test_speech_during_a_response_is_a_barge_in() -> None:
    h = Harness({**TEXT}, text_delay_s=0.05)
    h.session.start()
    h.say("a reply that is long enough to be interrupted by the user speaking")
    await h.wait_for("response.output_text.delta")
    h.append_audio(tone(0.5))
    await h.wait_for("input_audio_buffer.speech_started")
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "turn_detected"
    h.session.close()


async def test_turn_detection_null_turns_vad_off_but_commit_still_works() -> None:
    h = Harness(
        {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": None}},
        }
    )
    h.session.start()
    h.append_audio(np.concatenate([tone(1.0), silence(1.0)]))
    h.send({"type": "input_audio_buffer.commit"})
    committed = await h.wait_for("input_audio_buffer.committed")
    assert not h.of("input_audio_buffer.speech_started")
    assert not h.of("response.created")
    h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    assert done["response"]["output"][0]["content"][0]["text"] == "I heard 2.0 seconds of audio."
    assert committed["item_id"] == h.of("conversation.item.added")[0]["item"]["id"]
    h.session.close()


async def test_the_session_expires_with_session_expired_and_closes() -> None:
    h = Harness(max_duration_s=0.2)
    h.session.start()
    error = (await h.wait_for("error"))["error"]
    assert error["code"] == "session_expired"
    assert "maximum duration" in error["message"]
    assert h.closed_with == (1001, "session_expired")
    assert h.session.closed


async def test_voice_cannot_change_after_audio() -> None:
    h = Harness()
    h.session.start()
    h.say("hi")
    await h.wait_for("response.done")
    h.send(
        {
            "type": "session.update",
            "event_id": "evt_v",
            "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}},
        }
    )
    error = (await h.wait_for("error"))["error"]
    assert (error["code"], error["event_id"]) == ("cannot_update_voice", "evt_v")
    h.session.close()
