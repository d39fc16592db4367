"""Turn detection: server VAD (or semantic VAD) on the incoming audio, the input audio buffer,
barge-in, and the idle timeout.

Energy-based, knobs from ``audio.input.turn_detection``: incoming audio becomes
``input_audio_buffer.speech_started`` / ``speech_stopped`` / ``committed``, a user audio item
and, with ``create_response``, a response. Speech during a response (with
``interrupt_response``) is a barge-in: the response ends ``cancelled`` (``turn_detected``), the
output buffer is cleared and the assistant's item is truncated at what was heard. With
``idle_timeout_ms``, that long without speech after the model's last response triggers
``input_audio_buffer.timeout_triggered``: the silence is committed as a user audio item and a
response prompts the user to go on. ``turn_detection: null`` turns all of it off;
``input_audio_buffer.commit`` still works.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

import numpy as np

from ..audio import SAMPLE_RATE, EnergyVAD
from .state import MIN_COMMIT_MS, Event, Item, State, new_id


class TurnDetection(State):
    """The input audio buffer and what VAD makes of it."""

    def _configure_vad(self) -> None:
        detection = self.session["audio"]["input"]["turn_detection"]
        if detection is None:
            self._vad = None
            return
        if detection["type"] == "server_vad":
            threshold = detection["threshold"]
            silence = detection["silence_duration_ms"]
            padding = detection["prefix_padding_ms"]
        else:  # semantic_vad: eagerness decides how long a pause ends a turn
            threshold = 0.5
            silence = {"low": 1500, "medium": 800, "high": 400, "auto": 800}[detection["eagerness"]]
            padding = 300
        position = self._vad.position_ms if self._vad is not None else 0
        self._vad = EnergyVAD(
            threshold=threshold, prefix_padding_ms=padding, silence_duration_ms=silence
        )
        self._vad_offset_ms = position

    def _on_input_audio_buffer_append(self, event: Event, event_id: str | None) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            self._error(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded PCM16 audio.",
                param="audio",
                event_id=event_id,
            )
            return
        pcm = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)
        self.feed_audio(pcm)

    def _on_input_audio_buffer_commit(self, event: Event, event_id: str | None) -> None:
        if self._buffer_ms < MIN_COMMIT_MS:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has "
                f"{self._buffer_ms:.2f}ms of audio.",
                event_id=event_id,
            )
            return
        self._commit_buffer(self._speech_item_id or new_id("item_"), create_response=False)

    def _on_input_audio_buffer_clear(self, event: Event, event_id: str | None) -> None:
        self._buffer_ms = 0
        self._speech_item_id = None
        if self._vad is not None:
            self._vad.reset()
        self._send({"type": "input_audio_buffer.cleared"})

    def feed_audio(self, pcm: np.ndarray) -> None:
        """Incoming user audio: PCM16 mono at 24 kHz (the WebRTC track or buffer appends)."""
        if self.closed or pcm.size == 0:
            return
        self._buffer_ms += pcm.size * 1000 // SAMPLE_RATE
        if self._vad is None:
            return
        for vad_event in self._vad.process(pcm):
            at = vad_event.audio_ms + self._vad_offset_ms
            if vad_event.kind == "speech_started":
                self._speech_started(at)
            else:
                self._speech_stopped(at)

    def _speech_started(self, audio_start_ms: int) -> None:
        self._cancel_idle_timeout()
        self._speech_item_id = new_id("item_")
        self._buffer_start_ms = audio_start_ms
        self._send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": self._speech_item_id,
            }
        )
        detection = self.session["audio"]["input"]["turn_detection"]
        if detection is None or not detection["interrupt_response"]:
            return
        playing = self.player.playing if self.player is not None else None
        if self._active is not None and self._active.in_conversation:
            self._finish(self._active, "cancelled", "turn_detected")
        if playing is not None:
            heard = self.player.played_ms(playing) if self.player is not None else 0
            self._clear_output()
            self._truncate_response_audio(playing, heard)

    def _truncate_response_audio(self, response_id: str, heard_ms: int) -> None:
        response = self._responses.get(response_id)
        if response is None or not response.in_conversation:
            return
        for output in response.outputs:
            index = self._find(output.item["id"])
            if index is None or output.item["type"] != "message":
                continue
            entry = self.items[index]
            if entry.audio_ms > heard_ms:
                self._truncate(entry, 0, heard_ms)

    def _speech_stopped(self, audio_end_ms: int) -> None:
        item_id = self._speech_item_id or new_id("item_")
        self._send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_end_ms,
                "item_id": item_id,
            }
        )
        self._buffer_ms = max(audio_end_ms - self._buffer_start_ms, MIN_COMMIT_MS)
        detection = self.session["audio"]["input"]["turn_detection"]
        self._commit_buffer(
            item_id, create_response=bool(detection and detection["create_response"])
        )

    def _commit_buffer(self, item_id: str, *, create_response: bool, idle: bool = False) -> None:
        duration_ms = self._buffer_ms
        self._buffer_ms = 0
        self._speech_item_id = None
        previous = self.items[-1].item["id"] if self.items else None
        self._send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(Item(item, audio_ms=duration_ms, idle=idle))
        self._send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self._send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        if self.session["audio"]["input"]["transcription"] is not None and not idle:
            self._spawn(self._transcribe(item, duration_ms))
        if create_response and self._active is None and not self.is_transcription:
            self._create_response({}, in_conversation=True)

    # --- the idle timeout ----------------------------------------------------------------------

    def _arm_idle_timeout(self) -> None:
        """The model has finished: with ``idle_timeout_ms``, silence that long prompts the user."""
        self._cancel_idle_timeout()
        detection = self.session["audio"]["input"].get("turn_detection")
        timeout = detection.get("idle_timeout_ms") if isinstance(detection, dict) else None
        if self.closed or self._vad is None or not timeout:
            return
        start = self._vad.position_ms + self._vad_offset_ms
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(timeout / 1000, self._idle_timeout, start)

    def _cancel_idle_timeout(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_timeout(self, audio_start_ms: int) -> None:
        self._idle = None
        if self.closed or self._active is not None or self._vad is None:
            return
        end = max(self._vad.position_ms + self._vad_offset_ms, audio_start_ms)
        item_id = new_id("item_")
        self._send(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "audio_start_ms": audio_start_ms,
                "audio_end_ms": end,
                "item_id": item_id,
            }
        )
        self._buffer_ms = max(end - audio_start_ms, MIN_COMMIT_MS)
        self._commit_buffer(item_id, create_response=True, idle=True)
