"""The GA Realtime client-event and session schema, as small composable validators.

Shared by the widget (``send()`` refuses a bad event before it leaves the kernel) and the bundled
local server (which answers the same mistakes with the ``error`` events OpenAI sends). It has no
dependencies, so the widget's core install stays small.

A validator takes a value and its parameter path (``"session.audio.output.voice"``), and returns
the value (normalised where the API normalises, e.g. turn detection defaults) or raises
:class:`SchemaError` whose ``code``/``param``/``message`` follow OpenAI's error bodies:
``missing_required_parameter``, ``unknown_parameter``, ``invalid_type``, ``invalid_value``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Validator = Callable[[Any, str], Any]

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
    "gpt-live-transcribe",
)


class SchemaError(ValueError):
    """A value that does not fit the Realtime API's schema, described as OpenAI describes it."""

    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.message = message


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "an array"
    return type(value).__name__


def _type_error(param: str, expected: str, value: Any) -> SchemaError:
    return SchemaError(
        "invalid_type",
        param,
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
    )


def _closest(name: str, options: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""


def string(*, max_length: int | None = None, non_empty: bool = False) -> Validator:
    def check(value: Any, param: str) -> Any:
        if not isinstance(value, str):
            raise _type_error(param, "a string", value)
        if non_empty and not value:
            raise SchemaError("invalid_value", param, f"'{param}' must not be empty.")
        if max_length is not None and len(value) > max_length:
            raise SchemaError(
                "string_above_max_length",
                param,
                f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{max_length}, but got a string with length {len(value)} instead.",
            )
        return value

    return check


def boolean() -> Validator:
    def check(value: Any, param: str) -> Any:
        if not isinstance(value, bool):
            raise _type_error(param, "a boolean", value)
        return value

    return check


def number(lo: float | None = None, hi: float | None = None, *, integer: bool = False) -> Validator:
    expected = "an integer" if integer else "a number"

    def check(value: Any, param: str) -> Any:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise _type_error(param, expected, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise SchemaError("invalid_value", param, f"Invalid '{param}': must be finite.")
        if lo is not None and value < lo:
            raise SchemaError(
                "decimal_below_min_value" if not integer else "integer_below_min_value",
                param,
                f"Invalid '{param}': expected a value >= {lo}, but got {value} instead.",
            )
        if hi is not None and value > hi:
            raise SchemaError(
                "decimal_above_max_value" if not integer else "integer_above_max_value",
                param,
                f"Invalid '{param}': expected a value <= {hi}, but got {value} instead.",
            )
        return value

    return check


def one_of(*values: Any) -> Validator:
    def check(value: Any, param: str) -> Any:
        if value not in values or isinstance(value, bool) != isinstance(values[0], bool):
            listed = ", ".join(repr(v) for v in values)
            raise SchemaError(
                "invalid_value",
                param,
                f"Invalid value: {value!r}. Supported values are: {listed}.",
            )
        return value

    return check


def nullable(inner: Validator) -> Validator:
    def check(value: Any, param: str) -> Any:
        return None if value is None else inner(value, param)

    return check


def any_of(*validators: Validator) -> Validator:
    """The first validator that accepts the value wins.

    Otherwise the error of a validator that took the value's type stands (``'nobody'`` is an
    invalid *voice*, not an invalid type), else the last one.
    """

    def check(value: Any, param: str) -> Any:
        errors: list[SchemaError] = []
        for validator in validators:
            try:
                return validator(value, param)
            except SchemaError as exc:
                errors.append(exc)
        typed = [e for e in errors if e.code != "invalid_type"]
        raise (typed or errors)[0] if typed else errors[-1]

    return check


def array(inner: Validator, *, max_items: int | None = None) -> Validator:
    def check(value: Any, param: str) -> Any:
        if not isinstance(value, list):
            raise _type_error(param, "an array", value)
        if max_items is not None and len(value) > max_items:
            raise SchemaError(
                "array_above_max_length",
                param,
                f"Invalid '{param}': array too long. Expected at most {max_items} items.",
            )
        return [inner(v, f"{param}[{i}]") for i, v in enumerate(value)]

    return check


def free_object() -> Validator:
    """Any JSON object (JSON schemas, metadata): checked for being an object, nothing more."""

    def check(value: Any, param: str) -> Any:
        if not isinstance(value, Mapping):
            raise _type_error(param, "an object", value)
        return dict(value)

    return check


def obj(
    fields: Mapping[str, Validator],
    *,
    required: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> Validator:
    """An object with known fields: unknown ones are refused, required ones must be present."""

    def check(value: Any, param: str) -> Any:
        if not isinstance(value, Mapping):
            raise _type_error(param or "body", "an object", value)
        out: dict[str, Any] = dict(defaults or {})
        for name in value:
            if name not in fields:
                path = f"{param}.{name}" if param else str(name)
                raise SchemaError(
                    "unknown_parameter",
                    path,
                    f"Unknown parameter: '{path}'.{_closest(str(name), list(fields))}",
                )
        for name in required:
            if name not in value:
                path = f"{param}.{name}" if param else name
                raise SchemaError(
                    "missing_required_parameter", path, f"Missing required parameter: '{path}'."
                )
        for name, v in value.items():
            path = f"{param}.{name}" if param else name
            out[name] = fields[name](v, path)
        return out

    return check


def tagged(tag: str, variants: Mapping[str, Validator]) -> Validator:
    """An object whose ``tag`` field (usually ``type``) picks its schema."""

    def check(value: Any, param: str) -> Any:
        if not isinstance(value, Mapping):
            raise _type_error(param, "an object", value)
        path = f"{param}.{tag}" if param else tag
        if tag not in value:
            raise SchemaError(
                "missing_required_parameter", path, f"Missing required parameter: '{path}'."
            )
        kind = value[tag]
        if not isinstance(kind, str) or kind not in variants:  # (a list or dict is unhashable)
            listed = ", ".join(repr(v) for v in variants)
            hint = _closest(kind, list(variants)) if isinstance(kind, str) else ""
            raise SchemaError(
                "invalid_value",
                path,
                f"Invalid value: {kind!r}. Supported values are: {listed}.{hint}",
            )
        return variants[kind](value, param)

    return check


# --- session -------------------------------------------------------------------------------------

_const = one_of
AUDIO_FORMAT = tagged(
    "type",
    {
        "audio/pcm": obj({"type": _const("audio/pcm"), "rate": one_of(24000)}),
        "audio/pcmu": obj({"type": _const("audio/pcmu")}),
        "audio/pcma": obj({"type": _const("audio/pcma")}),
    },
)

SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}

TURN_DETECTION = nullable(
    tagged(
        "type",
        {
            "server_vad": obj(
                {
                    "type": _const("server_vad"),
                    "threshold": number(0.0, 1.0),
                    "prefix_padding_ms": number(0, 10_000, integer=True),
                    "silence_duration_ms": number(0, 10_000, integer=True),
                    "idle_timeout_ms": nullable(number(5_000, 30_000, integer=True)),
                    "create_response": boolean(),
                    "interrupt_response": boolean(),
                },
                defaults=SERVER_VAD_DEFAULTS,
            ),
            "semantic_vad": obj(
                {
                    "type": _const("semantic_vad"),
                    "eagerness": one_of("low", "medium", "high", "auto"),
                    "create_response": boolean(),
                    "interrupt_response": boolean(),
                },
                defaults=SEMANTIC_VAD_DEFAULTS,
            ),
        },
    )
)

TRANSCRIPTION = nullable(
    obj(
        {
            "model": one_of(*TRANSCRIPTION_MODELS),
            "language": string(),
            "prompt": string(),
            "languages": array(string()),
            "keywords": array(string()),
            "delay": string(),
        }
    )
)

VOICE = any_of(one_of(*VOICES), obj({"id": string(non_empty=True)}, required=["id"]))

AUDIO = obj(
    {
        "input": obj(
            {
                "format": AUDIO_FORMAT,
                "transcription": TRANSCRIPTION,
                "noise_reduction": nullable(
                    obj({"type": one_of("near_field", "far_field"), "strength": number(0, 1)})
                ),
                "turn_detection": TURN_DETECTION,
            }
        ),
        "output": obj(
            {"format": AUDIO_FORMAT, "voice": VOICE, "speed": number(0.25, 1.5)},
        ),
    }
)

FUNCTION_TOOL = obj(
    {
        "type": _const("function"),
        "name": string(non_empty=True, max_length=64),
        "description": string(),
        "parameters": free_object(),
    },
    required=["type", "name"],
)
TOOL = tagged(
    "type",
    {
        "function": FUNCTION_TOOL,
        # MCP tools are part of the GA schema; they are accepted and kept, not run locally.
        "mcp": obj(
            {
                "type": _const("mcp"),
                "server_label": string(non_empty=True),
                "server_url": string(),
                "connector_id": string(),
                "authorization": string(),
                "headers": free_object(),
                "allowed_tools": any_of(array(string()), free_object()),
                "require_approval": any_of(one_of("always", "never"), free_object()),
                "server_description": string(),
            },
            required=["type", "server_label"],
        ),
    },
)
TOOL_CHOICE = any_of(
    one_of("auto", "none", "required"),
    tagged(
        "type",
        {
            "function": obj(
                {"type": _const("function"), "name": string(non_empty=True)},
                required=["type", "name"],
            ),
            "mcp": obj(
                {"type": _const("mcp"), "server_label": string(), "name": string()},
                required=["type", "server_label"],
            ),
        },
    ),
)
MAX_OUTPUT_TOKENS = any_of(number(1, 4096, integer=True), one_of("inf"))
OUTPUT_MODALITIES = any_of(array(one_of("audio"), max_items=1), array(one_of("text"), max_items=1))

SESSION_FIELDS: dict[str, Validator] = {
    "type": one_of("realtime"),
    "model": string(non_empty=True),
    "instructions": string(),
    "output_modalities": OUTPUT_MODALITIES,
    "audio": AUDIO,
    "tools": array(TOOL, max_items=128),
    "tool_choice": TOOL_CHOICE,
    "max_output_tokens": MAX_OUTPUT_TOKENS,
    "tracing": nullable(any_of(one_of("auto"), free_object())),
    "truncation": any_of(one_of("auto", "disabled"), free_object()),
    "include": array(one_of("item.input_audio_transcription.logprobs")),
    "prompt": nullable(free_object()),
    "reasoning": nullable(free_object()),
    "parallel_tool_calls": boolean(),
}
SESSION = obj(SESSION_FIELDS, required=["type"])

# --- items ---------------------------------------------------------------------------------------

_ITEM_COMMON: dict[str, Validator] = {
    "id": string(non_empty=True, max_length=32),
    "object": _const("realtime.item"),
    "status": one_of("completed", "incomplete", "in_progress"),
}


def _message(role: str, content: Validator) -> Validator:
    return obj(
        {
            **_ITEM_COMMON,
            "type": _const("message"),
            "role": _const(role),
            "content": content,
        },
        required=["type", "role", "content"],
    )


_USER_CONTENT = tagged(
    "type",
    {
        "input_text": obj(
            {"type": _const("input_text"), "text": string()}, required=["type", "text"]
        ),
        "input_audio": obj(
            {"type": _const("input_audio"), "audio": string(), "transcript": nullable(string())},
            required=["type"],
        ),
        "input_image": obj(
            {
                "type": _const("input_image"),
                "image_url": string(),
                "detail": one_of("auto", "low", "high"),
            },
            required=["type", "image_url"],
        ),
    },
)
_SYSTEM_CONTENT = tagged(
    "type",
    {
        "input_text": obj(
            {"type": _const("input_text"), "text": string()}, required=["type", "text"]
        )
    },
)
_ASSISTANT_CONTENT = tagged(
    "type",
    {
        "output_text": obj(
            {"type": _const("output_text"), "text": string()}, required=["type", "text"]
        ),
        # Assistant audio cannot be injected: replay its transcript as output_text.
    },
)


def _role_message() -> Validator:
    variants = {
        "user": _message("user", array(_USER_CONTENT)),
        "system": _message("system", array(_SYSTEM_CONTENT)),
        "assistant": _message("assistant", array(_ASSISTANT_CONTENT)),
    }
    return tagged("role", variants)


ITEM = tagged(
    "type",
    {
        "message": _role_message(),
        "function_call": obj(
            {
                **_ITEM_COMMON,
                "type": _const("function_call"),
                "call_id": string(non_empty=True),
                "name": string(non_empty=True),
                "arguments": string(),
            },
            required=["type", "name", "arguments"],
        ),
        "function_call_output": obj(
            {
                **_ITEM_COMMON,
                "type": _const("function_call_output"),
                "call_id": string(non_empty=True),
                "output": string(),
            },
            required=["type", "call_id", "output"],
        ),
    },
)
ITEM_OR_REFERENCE = any_of(
    obj({"type": _const("item_reference"), "id": string(non_empty=True)}, required=["type", "id"]),
    ITEM,
)

RESPONSE = obj(
    {
        "conversation": any_of(one_of("auto", "none"), string(non_empty=True)),
        "instructions": string(),
        "tools": array(TOOL, max_items=128),
        "tool_choice": TOOL_CHOICE,
        "output_modalities": OUTPUT_MODALITIES,
        "audio": obj({"output": obj({"format": AUDIO_FORMAT, "voice": VOICE})}),
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "metadata": nullable(free_object()),
        "input": array(ITEM_OR_REFERENCE),
        "prompt": nullable(free_object()),
    }
)

# --- client events -------------------------------------------------------------------------------

_EVENT_ID = string(max_length=512)


def _event(name: str, fields: Mapping[str, Validator], required: Sequence[str] = ()) -> Validator:
    return obj(
        {"type": _const(name), "event_id": _EVENT_ID, **fields}, required=["type", *required]
    )


CLIENT_EVENTS: dict[str, Validator] = {
    "session.update": _event("session.update", {"session": SESSION}, ["session"]),
    "input_audio_buffer.append": _event(
        "input_audio_buffer.append", {"audio": string()}, ["audio"]
    ),
    "input_audio_buffer.commit": _event("input_audio_buffer.commit", {}),
    "input_audio_buffer.clear": _event("input_audio_buffer.clear", {}),
    "conversation.item.create": _event(
        "conversation.item.create",
        {"item": ITEM, "previous_item_id": nullable(string(non_empty=True))},
        ["item"],
    ),
    "conversation.item.retrieve": _event(
        "conversation.item.retrieve", {"item_id": string(non_empty=True)}, ["item_id"]
    ),
    "conversation.item.truncate": _event(
        "conversation.item.truncate",
        {
            "item_id": string(non_empty=True),
            "content_index": number(0, None, integer=True),
            "audio_end_ms": number(0, None, integer=True),
        },
        ["item_id", "content_index", "audio_end_ms"],
    ),
    "conversation.item.delete": _event(
        "conversation.item.delete", {"item_id": string(non_empty=True)}, ["item_id"]
    ),
    "response.create": _event("response.create", {"response": RESPONSE}),
    "response.cancel": _event("response.cancel", {"response_id": string(non_empty=True)}),
    "output_audio_buffer.clear": _event("output_audio_buffer.clear", {}),
}
CLIENT_EVENT = tagged("type", CLIENT_EVENTS)


def validate_client_event(event: Any) -> dict[str, Any]:
    """Check a client event against the GA schema; return it normalised or raise SchemaError.

    >>> validate_client_event({"type": "response.cancel"})["type"]
    'response.cancel'
    """
    result: dict[str, Any] = CLIENT_EVENT(event, "")
    return result


def validate_session(session: Any, param: str = "session") -> dict[str, Any]:
    """Check a (partial) session config; ``type`` is required as in the GA API."""
    result: dict[str, Any] = SESSION(session, param)
    return result
