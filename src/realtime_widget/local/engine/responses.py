"""Responses: what the model says (``responder.plan``), streamed as the API streams it.

Replies stream word by word as ``response.output_text.delta`` (``output_modalities: ["text"]``)
or as ``response.output_audio_transcript.delta`` with speech (``["audio"]``, the default). Over
WebRTC the speech plays on the server's audio track and the transcript deltas keep pace with it,
so the response is active while the model speaks; ``output_audio_buffer.started``/``stopped``
follow the audio actually sent. Over WebSocket the same speech arrives as
``response.output_audio.delta`` (PCM16, 24 kHz, base64) without real-time pacing. Each response
starts with ``response.created`` and ``rate_limits.updated``, and ends with ``response.done``
whose ``usage`` counts tokens: text ~4 characters a token, user audio 10 a second, model audio 20
a second, an image 85 (``detail: low``) or 85 plus one per KiB of its URL, earlier input counted
as cached in blocks of 64. ``max_output_tokens`` smaller than the reply ends it ``incomplete``.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, pcm16_to_base64, synthesize_speech
from .mcp import McpServers
from .responder import Plan, plan
from .state import (
    WS_AUDIO_CHUNK_MS,
    Item,
    Output,
    Response,
    image_tokens,
    new_id,
    tokens_for_text,
)


class Responses(McpServers):
    """Responses: created, streamed, cancelled, finished, with their usage."""

    def _cancel_idle_timeout(self) -> None:
        raise NotImplementedError

    def _voice(self) -> Any:
        raise NotImplementedError

    def _create_response(self, params: dict[str, Any], in_conversation: bool) -> None:
        audio_params = params.get("audio", {}).get("output", {})
        response = Response(
            id=new_id("resp_"),
            params=params,
            in_conversation=in_conversation,
            modalities=params.get("output_modalities") or self.session["output_modalities"],
            voice=audio_params.get("voice", self._voice()),
            input_tokens=self._count_input(params),
        )
        self._responses[response.id] = response
        while len(self._responses) > 64:  # keep what barge-in and cancel may still need
            self._responses.pop(next(iter(self._responses)))
        if in_conversation:
            self._active = response
        self._requests_used += 1
        self._cancel_idle_timeout()
        self._send({"type": "response.created", "response": self._response_body(response)})
        # As the API does: the rate limits when a response starts, not when it ends.
        self._send({"type": "rate_limits.updated", "rate_limits": self._rate_limits()})
        response.task = self._spawn(self._run(response))

    def _response_body(self, response: Response) -> dict[str, Any]:
        status = "in_progress" if not response.finished else response.status_reason or "completed"
        return {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": [o.item for o in response.outputs],
            "conversation_id": "conv_local" if response.in_conversation else None,
            "output_modalities": response.modalities,
            "max_output_tokens": response.params.get(
                "max_output_tokens", self.session["max_output_tokens"]
            ),
            "audio": {
                "output": {
                    "format": self.session["audio"]["output"]["format"],
                    "voice": response.voice,
                }
            },
            "usage": None,
            "metadata": response.params.get("metadata"),
        }

    def _input_items(self, params: dict[str, Any]) -> list[Item]:
        if "input" not in params:
            return list(self.items)
        entries = []
        for ref in params["input"]:
            if ref.get("type") == "item_reference":
                index = self._find(ref["id"])
                if index is not None:
                    entries.append(self.items[index])
            else:
                entries.append(Item(ref))
        return entries

    def _count_input(self, params: dict[str, Any]) -> dict[str, int]:
        text = tokens_for_text(params.get("instructions", self.session.get("instructions", "")))
        audio = images = 0
        for entry in self._input_items(params):
            item = entry.item
            if item["type"] == "message":
                for part in item["content"]:
                    if part["type"] == "input_image":
                        images += image_tokens(part)
                    else:
                        text += tokens_for_text(part.get("text") or part.get("transcript") or "")
                if item["role"] == "user" and entry.audio_ms:
                    audio += math.ceil(entry.audio_ms / 100)
            else:
                words = str(item.get("arguments") or "") + str(item.get("output") or "")
                text += tokens_for_text(words)
        total = text + audio + images
        cached = min(self._last_input_tokens, total) // 64 * 64
        if params.get("conversation", "auto") != "none":
            self._last_input_tokens = total
        return {"text": text, "audio": audio, "image": images, "cached": cached}

    def _plan(self, response: Response) -> Plan:
        params = response.params
        tools = params.get("tools", self.session["tools"])
        functions = [t for t in tools if t.get("type") == "function"]
        servers = {s.label: s for s in self._mcp_servers().values() if s.reachable}
        choice = params.get("tool_choice", self.session["tool_choice"])
        return plan(self._input_items(params), functions=functions, choice=choice, servers=servers)

    async def _run(self, response: Response) -> None:
        try:
            planned = self._plan(response)
            arguments = planned.arguments or {}
            if planned.kind == "call":
                await self._stream_call(response, planned.name, arguments)
            elif planned.kind == "approval" and planned.server is not None:
                self._stream_approval_request(response, planned.server, planned.name, arguments)
            elif planned.kind == "mcp" and planned.server is not None:
                said = await self._stream_mcp_call(
                    response, planned.server, planned.name, arguments, planned.approval_request_id
                )
                await self._stream_message(response, said)
            else:
                await self._stream_message(response, planned.reply)
            if not response.finished:
                self._finish(response, "completed", None)
        except asyncio.CancelledError:
            pass

    def _add_output(self, response: Response, item: dict[str, Any]) -> Output:
        output = Output(item=item, index=len(response.outputs))
        response.outputs.append(output)
        self._send(
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": output.index,
                "item": item,
            }
        )
        if response.in_conversation:
            previous = self.items[-1].item["id"] if self.items else None
            self.items.append(Item(item))
            self._send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
        return output

    async def _stream_call(self, response: Response, name: str, arguments: dict[str, Any]) -> None:
        item = {
            "id": new_id("item_"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": new_id("call_", 16),
            "arguments": "",
        }
        output = self._add_output(response, item)
        text = json.dumps(arguments)
        for start in range(0, len(text), 16):
            await asyncio.sleep(self.text_delay_s)
            self._send(
                {
                    "type": "response.function_call_arguments.delta",
                    "response_id": response.id,
                    "item_id": item["id"],
                    "output_index": output.index,
                    "call_id": item["call_id"],
                    "delta": text[start : start + 16],
                }
            )
            output.text += text[start : start + 16]
        item["arguments"] = text
        self._send(
            {
                "type": "response.function_call_arguments.done",
                "response_id": response.id,
                "item_id": item["id"],
                "output_index": output.index,
                "call_id": item["call_id"],
                "name": name,
                "arguments": text,
            }
        )
        self._close_output(response, output, "completed")

    async def _stream_message(self, response: Response, reply: str) -> None:
        limit = response.params.get("max_output_tokens", self.session["max_output_tokens"])
        audio = "audio" in response.modalities
        words = reply.split(" ")
        incomplete = False
        if isinstance(limit, int):
            # Output tokens: text ~4 chars each, speech 20 a second; cut the reply to fit.
            budget = limit if not audio else max(1, limit // 5)
            kept, used = [], 0
            for word in words:
                used += tokens_for_text(word + " ")
                if used > budget:
                    incomplete = True
                    break
                kept.append(word)
            words = kept or words[:1]
        reply = " ".join(words)
        part_type = "output_audio" if audio else "output_text"
        item: dict[str, Any] = {
            "id": new_id("item_"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        output = self._add_output(response, item)
        ids = {
            "response_id": response.id,
            "item_id": item["id"],
            "output_index": output.index,
            "content_index": 0,
        }
        part: dict[str, Any] = (
            {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        )
        self._send({"type": "response.content_part.added", **ids, "part": part})
        output.part_open = True
        item["content"] = [
            {"type": part_type, "transcript": ""} if audio else {"type": part_type, "text": ""}
        ]
        word_times = self._word_times(words, 0)
        if not audio:
            for i, word in enumerate(words):
                await asyncio.sleep(self.text_delay_s)
                delta = word if i == 0 else " " + word
                output.text += delta
                item["content"][0]["text"] = output.text
                self._send({"type": "response.output_text.delta", **ids, "delta": delta})
            self._send({"type": "response.output_text.done", **ids, "text": output.text})
        else:
            speed = self.session["audio"]["output"].get("speed", 1.0)
            pcm = await asyncio.to_thread(synthesize_speech, reply, speed=speed)
            output.audio_ms = pcm.size * 1000 // SAMPLE_RATE
            word_times = self._word_times(words, output.audio_ms)
            self._audio_seen = True
            entry_index = self._find(item["id"]) if response.in_conversation else None
            if entry_index is not None:
                self.items[entry_index].audio_ms = output.audio_ms
                self.items[entry_index].word_times = word_times
            if self.transport == "webrtc" and self.player is not None:
                await self._speak_webrtc(response, output, ids, words, word_times, pcm)
            else:
                await self._speak_websocket(output, ids, words, word_times, pcm)
            self._send({"type": "response.output_audio.done", **ids})
            self._send(
                {"type": "response.output_audio_transcript.done", **ids, "transcript": output.text}
            )
        self._close_output(response, output, "incomplete" if incomplete else "completed")
        if incomplete:
            self._finish(response, "incomplete", "max_output_tokens")

    @staticmethod
    def _word_times(words: list[str], duration_ms: int) -> list[int]:
        """Where each word starts in the speech, spread by length (good enough to cut at)."""
        weights = [len(w) + 1 for w in words]
        total = sum(weights) or 1
        times, at = [], 0.0
        for weight in weights:
            times.append(int(at))
            at += duration_ms * weight / total
        return times

    def _transcript_delta(self, output: Output, ids: dict[str, Any], i: int, word: str) -> None:
        delta = word if i == 0 else " " + word
        output.text += delta
        output.item["content"][0]["transcript"] = output.text
        self._send({"type": "response.output_audio_transcript.delta", **ids, "delta": delta})

    async def _speak_webrtc(
        self,
        response: Response,
        output: Output,
        ids: dict[str, Any],
        words: list[str],
        word_times: list[int],
        pcm: np.ndarray,
    ) -> None:
        assert self.player is not None
        self.player.play(response.id, pcm)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i, word in enumerate(words):
            # Keep the caption with the voice: a word's delta goes out as it starts playing.
            delay = started + word_times[i] / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._transcript_delta(output, ids, i, word)

    async def _speak_websocket(
        self,
        output: Output,
        ids: dict[str, Any],
        words: list[str],
        word_times: list[int],
        pcm: np.ndarray,
    ) -> None:
        chunk = SAMPLE_RATE * WS_AUDIO_CHUNK_MS // 1000
        next_word = 0
        for start in range(0, pcm.size, chunk):
            await asyncio.sleep(self.text_delay_s)
            self._send(
                {
                    "type": "response.output_audio.delta",
                    **ids,
                    "delta": pcm16_to_base64(pcm[start : start + chunk]),
                }
            )
            end_ms = (start + chunk) * 1000 // SAMPLE_RATE
            while next_word < len(words) and word_times[next_word] < end_ms:
                self._transcript_delta(output, ids, next_word, words[next_word])
                next_word += 1
        for i in range(next_word, len(words)):
            self._transcript_delta(output, ids, i, words[i])

    def _close_output(self, response: Response, output: Output, status: str) -> None:
        item = output.item
        ids = {"response_id": response.id, "item_id": item["id"], "output_index": output.index}
        if output.part_open:
            output.part_open = False
            content = item["content"][0]
            part: dict[str, Any] = (
                {"type": "audio", "transcript": content.get("transcript", "")}
                if content["type"] == "output_audio"
                else {"type": "text", "text": content.get("text", "")}
            )
            self._send(
                {"type": "response.content_part.done", **ids, "content_index": 0, "part": part}
            )
        if item["type"] in ("message", "function_call", "function_call_output"):
            item["status"] = status  # (MCP items have no status in the API's shape)
        self._send(
            {
                "type": "response.output_item.done",
                "response_id": response.id,
                "output_index": output.index,
                "item": item,
            }
        )
        if response.in_conversation:
            self._send({"type": "conversation.item.done", "item": item})

    def _finish(self, response: Response, status: str, reason: str | None) -> None:
        """End a response now (completed, cancelled or incomplete) and report it."""
        if response.finished:
            return
        response.finished = True
        response.status_reason = status
        if self._active is response:
            self._active = None
        if response.task is not None and response.task is not asyncio.current_task():
            response.task.cancel()
        for output in response.outputs:
            if output.item.get("status") == "in_progress":
                self._close_output(response, output, "incomplete")
        usage = self._usage(response)
        self._tokens_used += usage["total_tokens"]
        body = self._response_body(response)
        body["status"] = status
        if status != "completed":
            body["status_details"] = {"type": status, "reason": reason}
        body["usage"] = usage
        self._send({"type": "response.done", "response": body})
        if self.transport != "webrtc" or self.player is None or status != "completed":
            self._arm_idle_timeout()  # (over WebRTC: once the speech has played out)

    def _rate_limits(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "requests",
                "limit": 5000,
                "remaining": max(0, 5000 - self._requests_used),
                "reset_seconds": 60.0,
            },
            {
                "name": "tokens",
                "limit": 400_000,
                "remaining": max(0, 400_000 - self._tokens_used),
                "reset_seconds": 60.0,
            },
        ]

    def _usage(self, response: Response) -> dict[str, Any]:
        cached = response.input_tokens["cached"]
        text_out = sum(tokens_for_text(o.text) for o in response.outputs)
        audio_out = sum(math.ceil(o.audio_ms / 50) for o in response.outputs)
        tokens_in = response.input_tokens
        input_total = tokens_in["text"] + tokens_in["audio"] + tokens_in["image"]
        return {
            "total_tokens": input_total + text_out + audio_out,
            "input_tokens": input_total,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": tokens_in["text"],
                "audio_tokens": tokens_in["audio"],
                "image_tokens": tokens_in["image"],
                "cached_tokens": tokens_in["cached"],
                # The cached prefix is the earliest input: text first, then audio, then images.
                "cached_tokens_details": {
                    "text_tokens": min(cached, tokens_in["text"]),
                    "audio_tokens": min(max(0, cached - tokens_in["text"]), tokens_in["audio"]),
                    "image_tokens": max(0, cached - tokens_in["text"] - tokens_in["audio"]),
                },
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }

    def playback_started(self, response_id: str) -> None:
        self._send({"type": "output_audio_buffer.started", "response_id": response_id})

    def playback_stopped(self, response_id: str) -> None:
        self._send({"type": "output_audio_buffer.stopped", "response_id": response_id})
        if self._active is None:
            self._arm_idle_timeout()
