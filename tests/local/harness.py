"""Drive one engine ``Session`` directly, checking every event both ways."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from realtime_widget.local.client import EventStream
from realtime_widget.local.engine import Session

from ..protocol import check_client_event, check_server_event


def tone(
    seconds: float, *, freq: float = 440.0, dbfs: float = -20.0, rate: int = 24000
) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    amplitude = 32767 * 10 ** (dbfs / 20) * np.sqrt(2)
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(seconds: float, rate: int = 24000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


class Harness(EventStream):
    def __init__(self, config: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__()
        self.closed_with: tuple[int, str] | None = None
        self.session = Session(config, emit=self._emit, on_close=self._on_close, **options)

    def _emit(self, event: dict[str, Any]) -> None:
        check_server_event(event)
        self._received(event)

    def _on_close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)

    def send(self, event: dict[str, Any], *, valid: bool = True) -> None:
        if valid:
            check_client_event(event)
        self.session.receive(json.dumps(event))

    def append_audio(self, pcm: np.ndarray) -> None:
        self.send(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm.tobytes()).decode()}
        )

    def say(self, text: str, **response: Any) -> None:
        self.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        event: dict[str, Any] = {"type": "response.create"}
        if response:
            event["response"] = response
        self.send(event)
