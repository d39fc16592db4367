"""The local server as strict as OpenAI, and today's API whole: models checked as the API checks
them, rate limits when a response starts, the idle timeout, simulated MCP servers (listing,
calls, failures, approvals), images counted, assistant audio in history, and
transcription-only sessions. Every event goes through the SDK's typed models (the harness)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import httpx

from realtime_widget.local import LocalServer
from realtime_widget.local.engine import model_problem

from .harness import Harness, silence, tone

TEXT: dict[str, Any] = {"type": "realtime", "output_modalities": ["text"]}
DEMO = {"type": "mcp", "server_label": "demo", "server_url": "local://demo"}


async def test_models_are_checked_as_the_api_checks_them(server: LocalServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:

        async def mint(model: str) -> httpx.Response:
            return await http.post(
                "/realtime/client_secrets",
                headers={"Authorization": "Bearer sk-local"},
                json={"session": {"type": "realtime", "model": model}},
            )

        live = await mint("gpt-live-1.1")
        assert live.status_code == 400 and live.json()["error"]["code"] == "invalid_model"
        assert "GPT-Live" in live.json()["error"]["message"]
        unknown = await mint("gpt-realtime-9000")
        assert unknown.json()["error"]["code"] == "model_not_found"
        assert unknown.json()["error"]["param"] == "session.model"
        assert (await mint("gpt-realtime-2.1")).status_code == 200
        assert (await mint("gpt-realtime")).status_code == 200  # deprecated, not yet shut down
    after = model_problem("gpt-realtime", datetime.date(2027, 1, 21))
    assert after is not None and after[0] == "model_not_found" and "2027-01-20" in after[1]
    h = Harness(TEXT)
    h.session.start()
    h.send({"type": "session.update", "event_id": "evt_m",
            "session": {"type": "realtime", "model": "gpt-live-1"}})  # fmt: skip
    error = await h.wait_for("error")
    assert error["error"]["code"] == "invalid_model" and error["error"]["event_id"] == "evt_m"
    h.session.close()


async def test_the_idle_timeout_prompts_the_user_after_silence() -> None:
    h = Harness(
        {**TEXT, "audio": {"input": {"turn_detection": {"type": "server_vad",
                                                           "idle_timeout_ms": 300}}}}
    )  # fmt: skip
    h.session.start()
    h.say("hello")
    await h.wait_for("response.done")
    h.append_audio(silence(0.6))  # nothing said: the clock runs on the audio
    triggered = await h.wait_for("input_audio_buffer.timeout_triggered")
    assert triggered["audio_end_ms"] >= triggered["audio_start_ms"]
    committed = await h.wait_for("input_audio_buffer.committed")
    assert committed["item_id"] == triggered["item_id"]
    done = await h.wait_for("response.done", count=2)
    assert done["response"]["output"][0]["content"][0]["text"] == "Are you still there?"
    # Speech before the timeout keeps it from firing.
    h.append_audio(tone(0.4))
    await h.wait_for("input_audio_buffer.speech_started", count=1)
    h.session.close()


async def test_an_mcp_server_is_listed_and_its_tools_called_without_approval() -> None:
    h = Harness({**TEXT, "tools": [{**DEMO, "require_approval": "never"}]})
    h.session.start()
    await h.wait_for("mcp_list_tools.completed")
    listed = [e for e in h.of("conversation.item.done") if e["item"]["type"] == "mcp_list_tools"]
    assert [t["name"] for t in listed[0]["item"]["tools"]] == ["add", "echo"]
    h.say("please call add with a=2, b=40")
    done = await h.wait_for("response.done")
    call, message = done["response"]["output"]
    assert call["type"] == "mcp_call" and call["output"] == "42" and call["error"] is None
    assert json.loads(call["arguments"]) == {"a": 2, "b": 40}
    assert message["content"][0]["text"] == "The add tool returned: 42"
    types = h.types()
    assert (
        types.index("response.mcp_call_arguments.done")
        < types.index("response.mcp_call.in_progress")
        < types.index("response.mcp_call.completed")
    )
    # A call that fails says so on the item, and the reply says why.
    h.say("call echo with nothing=1")
    done = await h.wait_for("response.done", count=2)
    failed = done["response"]["output"][0]
    assert failed["error"]["type"] == "tool_execution_error"
    assert h.of("response.mcp_call.failed")
    h.session.close()


async def test_an_mcp_call_waits_for_approval_and_goes_on_as_answered() -> None:
    h = Harness({**TEXT, "tools": [DEMO]})  # the API's default: ask first
    h.session.start()
    await h.wait_for("mcp_list_tools.completed")
    h.say("call add with a=1, b=2")
    done = await h.wait_for("response.done")
    request = done["response"]["output"][0]
    assert request["type"] == "mcp_approval_request" and request["name"] == "add"
    assert not h.of("response.mcp_call.completed")
    for approve, count, said in [(False, 2, "not approved"), (True, 3, "returned: 3")]:
        h.send({"type": "conversation.item.create", "item": {
            "type": "mcp_approval_response", "id": f"item_appr_{approve}",
            "approval_request_id": request["id"], "approve": approve}})  # fmt: skip
        h.send({"type": "response.create"})
        done = await h.wait_for("response.done", count=count)
        assert said in done["response"]["output"][-1]["content"][0]["text"]
    assert h.of("response.mcp_call.completed")[0]["item_id"] == done["response"]["output"][0]["id"]
    h.send({"type": "conversation.item.create", "event_id": "evt_x", "item": {
        "type": "mcp_approval_response", "id": "item_nope", "approval_request_id": "mcpr_nope",
        "approve": True}})  # fmt: skip
    assert (await h.wait_for("error"))["error"]["param"] == "item.approval_request_id"
    h.session.close()


async def test_an_unreachable_mcp_server_fails_its_listing_and_credentials_stay_masked() -> None:
    secret = "mcp-secret-0123456789abcdef"
    h = Harness({**TEXT, "tools": [{**DEMO, "server_url": "https://mcp.example/sse",
                                    "authorization": secret}]})  # fmt: skip
    h.session.start()
    await h.wait_for("mcp_list_tools.failed")
    created = h.of("session.created")[0]
    assert secret not in json.dumps(created)
    assert created["session"]["tools"][0]["authorization"] == "mcp…cdef"
    h.session.close()


async def test_images_are_counted_and_seen_and_assistant_audio_history_is_accepted() -> None:
    h = Harness(TEXT)
    h.session.start()
    said = {"type": "output_audio", "transcript": "Earlier I said hi."}
    h.send({"type": "conversation.item.create",
            "item": {"type": "message", "role": "assistant", "content": [said]}})  # fmt: skip
    image = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 4096}
    h.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [image, {"type": "input_text", "text": "what is this?"}]}})  # fmt: skip
    h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    details = done["response"]["usage"]["input_token_details"]
    assert details["image_tokens"] == 85 + (len(image["image_url"]) // 1024)
    text = done["response"]["output"][0]["content"][0]["text"]
    assert text == "I see an image. You said: what is this?"
    h.session.close()


async def test_a_transcription_session_transcribes_and_makes_no_replies() -> None:
    h = Harness({"type": "transcription"})
    h.session.start()
    created = h.of("session.created")[0]["session"]
    assert created["type"] == "transcription"
    assert created["audio"]["input"]["transcription"]["model"] == "gpt-transcribe"
    h.append_audio(silence(0.3))
    h.append_audio(tone(0.8))
    h.append_audio(silence(1.0))
    completed = await h.wait_for("conversation.item.input_audio_transcription.completed")
    assert completed["transcript"].endswith("seconds of speech)")
    assert not h.of("response.created")
    h.send({"type": "response.create", "event_id": "evt_r"})
    assert (await h.wait_for("error"))["error"]["event_id"] == "evt_r"
    h.session.close()


async def test_a_transcription_session_over_the_websocket(server: LocalServer) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=server.base_url, api_key="sk-local")
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        event = await connection.recv()
        assert event.type == "session.created" and event.session.type == "transcription"
        await connection.send({"type": "response.create"})
        refused = await connection.recv()
        assert refused.type == "error"
