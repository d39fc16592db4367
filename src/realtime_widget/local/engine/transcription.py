"""Input transcription: what the user said, as the API reports it (late, after the item).

With ``audio.input.transcription`` set, each committed user audio item gets a placeholder
transcript ``(N.N seconds of speech)``: ``conversation.item.input_audio_transcription.delta``
events, then ``.completed`` with its usage in seconds, delivered shortly after the item, as the
real API does (often after the assistant has started replying). A transcription-only session
(``session.type: "transcription"``) does just this: VAD and captions, no responses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .state import State


class Transcription(State):
    """Captions of the user's audio items."""

    async def _transcribe(self, item: dict[str, Any], duration_ms: int) -> None:
        # Real transcriptions arrive late, often after the reply has started: so do these.
        await asyncio.sleep(0.05)
        text = f"({duration_ms / 1000:.1f} seconds of speech)"
        for word in text.split(" "):
            self._send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item["id"],
                    "content_index": 0,
                    "delta": word if word.startswith("(") else " " + word,
                }
            )
        item["content"][0]["transcript"] = text
        self._send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item["id"],
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(duration_ms / 1000, 3)},
            }
        )
