"""What one local session holds: its config (as OpenAI reports it), items, responses, and the
shared plumbing the engine's parts use. No behaviour of the model here."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ...protocol import (
    SERVER_VAD_DEFAULTS,
    deprecations,
    is_live_model,
    suggestions,
    with_vad_defaults,
)
from ...redact import mask_tool_credentials
from ..audio import SAMPLE_RATE, EnergyVAD

DEFAULT_MODEL = "gpt-realtime-2"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-transcribe"
DEFAULT_INSTRUCTIONS = "You are the local realtime server: you repeat what you are told."
MAX_SESSION_SECONDS = 60 * 60
MIN_COMMIT_MS = 100
QUOTE_LIMIT = 200
WS_AUDIO_CHUNK_MS = 200

Event = dict[str, Any]
Transport = Literal["webrtc", "websocket"]


# token_urlsafe's two symbols, made letters: ids stay alphanumeric, as OpenAI's are.
_ALPHANUMERIC = str.maketrans("-_", "xZ")
# A worker behind ``serve --workers`` starts every id with its mark, so the front can route any
# request naming an id (a call, a client secret, a Live session) to the worker that owns it.
_mark = ""


def mark_ids(mark: str) -> None:
    """Start every id made in this process with ``mark`` (after the prefix)."""
    global _mark
    _mark = mark


def new_id(prefix: str, length: int = 20) -> str:
    """An id in OpenAI's style (``item_…``, ``resp_…``); the API allows 32 characters for items.

    >>> len(new_id("item_")), new_id("item_").startswith("item_")
    (25, True)
    """
    # One read of the system's randomness per id, not one per character: ids are made per event.
    body = secrets.token_urlsafe(length).translate(_ALPHANUMERIC)
    return prefix + _mark + body[: length - len(_mark)]


class AudioPlayer(Protocol):
    """The outgoing audio of a WebRTC call (``rtc.VoiceTrack``)."""

    @property
    def playing(self) -> str | None: ...

    def play(self, response_id: str, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None: ...

    def clear(self) -> str | None: ...

    def played_ms(self, response_id: str) -> int: ...


def default_session(model: str = DEFAULT_MODEL, kind: str = "realtime") -> dict[str, Any]:
    """The effective config of a new session, in the shape ``session.created`` reports."""
    audio_input = {
        "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": dict(SERVER_VAD_DEFAULTS),
    }
    if kind == "transcription":
        audio_input["transcription"] = {"model": DEFAULT_TRANSCRIPTION_MODEL}
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": new_id("sess_"),
            "expires_at": 0,
            "include": None,
            "audio": {"input": audio_input},
        }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess_"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": 0,
        "include": None,
        "audio": {
            "input": audio_input,
            "output": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "voice": "marin",
                "speed": 1.0,
            },
        },
    }


def merge_session(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Apply a validated partial session: fields sent replace, ``audio.input/output`` merge."""
    merged = {**current}
    for key, value in update.items():
        if key == "audio":
            audio = {**merged["audio"]}
            for side in ("input", "output"):
                if side in value and side in audio:
                    audio[side] = {**audio[side], **value[side]}
            if "turn_detection" in value.get("input", {}):
                # As the API does: the type's defaults under the knobs given.
                detection = audio["input"]["turn_detection"]
                audio["input"]["turn_detection"] = with_vad_defaults(detection)
            merged["audio"] = audio
        else:
            merged[key] = value
    return merged


def effective_session(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A validated (partial) session config laid over the defaults of its type."""
    config = config or {}
    kind = config.get("type", "realtime")
    return merge_session(default_session(kind=kind), config)


def public_session(session: dict[str, Any]) -> dict[str, Any]:
    """The session as the server reports it: a copy, MCP credentials masked (OpenAI keeps a
    server's authorization to itself; so does this server)."""
    shown: dict[str, Any] = json.loads(json.dumps(session))
    if "tools" in shown:
        shown["tools"] = mask_tool_credentials(shown["tools"])
    return shown


def model_problem(model: str, today: datetime.date | None = None) -> tuple[str, str] | None:
    """Why a Realtime model can't be used here, as the API says it ``(code, message)``: a
    GPT-Live model, a model shut down, or one the ``openai`` package does not know."""
    if is_live_model(model):
        return (
            "invalid_model",
            f"The model '{model}' is a GPT-Live model: it is served at /v1/live/sessions, not "
            "by the Realtime API.",
        )
    shutdown = deprecations().get(model)
    if shutdown is not None and (today or datetime.date.today()) >= shutdown:
        return (
            "model_not_found",
            f"The model '{model}' was shut down on {shutdown.isoformat()} and is no longer "
            "available.",
        )
    if model not in suggestions("model"):
        return (
            "model_not_found",
            f"The model '{model}' does not exist or you do not have access to it.",
        )
    return None


def transcription_model_problem(model: str) -> str | None:
    if model not in suggestions("transcription_model"):
        return f"Invalid transcription model '{model}'."
    return None


def tokens_for_text(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def image_tokens(part: dict[str, Any]) -> int:
    """An image's input tokens: 85 at ``detail: low``, else 85 plus one per KiB of its URL."""
    if part.get("detail") == "low":
        return 85
    return 85 + len(str(part.get("image_url") or "")) // 1024


def quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 1] + "…"


@dataclass
class Output:
    """One output item of a response, kept so a cancel can close it properly."""

    item: dict[str, Any]
    index: int
    part_open: bool = False
    text: str = ""
    audio_ms: int = 0


@dataclass
class Response:
    id: str
    params: dict[str, Any]
    in_conversation: bool
    modalities: list[str]
    voice: Any
    input_tokens: dict[str, int]
    outputs: list[Output] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    finished: bool = False
    status_reason: str | None = None


@dataclass
class Item:
    item: dict[str, Any]
    audio_ms: int = 0  # user audio length or assistant speech length
    # Word start times (ms) of assistant speech, to cut the transcript at a truncation.
    word_times: list[int] = field(default_factory=list)
    idle: bool = False  # the silence an idle timeout committed


class State:
    """The attributes and plumbing every part of the engine shares (``Session`` sets them)."""

    session: dict[str, Any]
    transport: Transport
    player: AudioPlayer | None
    text_delay_s: float
    items: list[Item]
    closed: bool
    _responses: dict[str, Response]
    _active: Response | None
    _vad: EnergyVAD | None
    _vad_offset_ms: int
    _buffer_ms: int
    _buffer_start_ms: int
    _speech_item_id: str | None
    _audio_seen: bool
    _requests_used: int
    _tokens_used: int
    _last_input_tokens: int
    _listed: set[str]
    _idle: asyncio.TimerHandle | None

    def _send(self, event: Event) -> None:
        raise NotImplementedError

    def _error(
        self,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        raise NotImplementedError

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        raise NotImplementedError

    def _find(self, item_id: str) -> int | None:
        for index, entry in enumerate(self.items):
            if entry.item["id"] == item_id:
                return index
        return None

    def _append_item(self, entry: Item) -> str | None:
        """Add an item at the end of the conversation; returns the id before it."""
        previous = self.items[-1].item["id"] if self.items else None
        self.items.append(entry)
        return previous

    @property
    def is_transcription(self) -> bool:
        return self.session.get("type") == "transcription"

    def _create_response(self, params: dict[str, Any], in_conversation: bool) -> None:
        raise NotImplementedError

    def _finish(self, response: Response, status: str, reason: str | None) -> None:
        raise NotImplementedError

    def _truncate(self, entry: Item, content_index: int, audio_end_ms: int) -> None:
        raise NotImplementedError

    def _clear_output(self) -> str | None:
        raise NotImplementedError

    def _transcribe(self, item: dict[str, Any], duration_ms: int) -> Any:
        raise NotImplementedError

    def _arm_idle_timeout(self) -> None:
        raise NotImplementedError


Handler = Callable[[Event, "str | None"], None]
