"""The Realtime API's vocabulary, taken from the installed ``openai`` package's types.

Nothing here lists a field by hand. The client events, session configs, items and responses
are the JSON Schema pydantic makes of the SDK's request types (``openai.types.realtime``'s
``*Param`` TypedDicts); the server events are the SDK's event union. Upgrading ``openai`` is how
the widget learns a new field or event. On top of the SDK's shapes this project adds its own
strictness, so a mistake is named before anything is sent:

- every object is closed: an unknown parameter is refused with its full path and the closest
  valid name (``Unknown parameter: 'session.instructoins'. Did you mean 'instructions'?``);
- a few numeric bounds the API enforces but the SDK's types don't carry (:data:`BOUNDS`).

And one leniency the API has that the SDK's request types don't spell out: an optional field
may be ``null`` (the API reads it as unset or off: ``noise_reduction: null``, as the official
Agents SDK sends).

Open values stay open as in the API: models, voices and transcription models are any string;
the SDK's known values are offered as suggestions (:func:`suggestions`), and a model the SDK
marks deprecated gets a warning naming its successor (:func:`model_warning`), not a refusal.

The schema is interpreted by :func:`validate` here and by ``js/checks.ts`` in the page, which
gets the same schema from the kernel (``{"op": "schema"}``): one source, one set of rules.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import difflib
import hashlib
import inspect
import json
import math
import os
import re
import typing
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import typing_extensions

SchemaNode = dict[str, Any]

# Bounds the API enforces that the SDK's types don't carry: (minimum, maximum) by field name.
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "audio_end_ms": (0, None),
    "content_index": (0, None),
    "prefix_padding_ms": (0, None),
    "silence_duration_ms": (0, None),
    "threshold": (0, 1),
    "speed": (0.25, 1.5),
}
# Array lengths the API enforces that the SDK's types don't carry, by field name.
MAX_ITEMS: dict[str, int] = {"output_modalities": 1, "tools": 128}
# Successors OpenAI recommends for models it is shutting down (docs: deprecations).
SUCCESSORS = {
    "gpt-realtime-mini": "gpt-realtime-2.1-mini",
    "gpt-realtime": "gpt-realtime-2.1",
    "gpt-audio-mini": "gpt-audio-1.5",
    "gpt-4o-mini-transcribe": "gpt-transcribe",
    "gpt-4o-transcribe": "gpt-transcribe",
    "whisper-1": "gpt-transcribe",
}


class SchemaError(ValueError):
    """A value that does not fit the Realtime API's schema, described as OpenAI describes it:
    ``code`` (``unknown_parameter``, ``missing_required_parameter``, ``invalid_type``,
    ``invalid_value``, ...), ``param`` (the field's path) and ``message``."""

    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.message = message


# --- the schema, from the SDK --------------------------------------------------------------------


def _realtime() -> Any:
    import openai.types.realtime as realtime

    return realtime


def _live() -> Any:
    import openai.types.live as live

    return live


def _close(node: Any) -> None:
    """Close every object with known properties (unknown ones are then refused), and add the
    API's bounds the SDK's types don't carry."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        required = set(node.get("required", []))
        properties = node.get("properties", {})
        for name, prop in list(properties.items()):
            bound = BOUNDS.get(name)
            if bound is not None and isinstance(prop, dict):
                _bound(prop, bound)
            if name in MAX_ITEMS and isinstance(prop, dict) and prop.get("type") == "array":
                prop["maxItems"] = MAX_ITEMS[name]
            if name not in required and isinstance(prop, dict) and not _nullable(prop):
                properties[name] = {"anyOf": [prop, {"type": "null"}]}
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def _nullable(prop: SchemaNode) -> bool:
    branches = prop.get("anyOf", [prop])
    return any(b.get("type") == "null" for b in branches if isinstance(b, dict))


def _bound(prop: SchemaNode, bound: tuple[float | None, float | None]) -> None:
    targets = [prop, *prop.get("anyOf", [])]
    for target in targets:
        if target.get("type") in ("integer", "number"):
            if bound[0] is not None:
                target["minimum"] = bound[0]
            if bound[1] is not None:
                target["maximum"] = bound[1]


# Bump when what this module makes of the SDK's schema changes (the cache key includes it).
_FORMAT = 7


def _cache_file() -> Path | None:
    """Where the schema made for this ``openai`` version is kept: building it takes the SDK's
    import and pydantic's generation (about a second); reading it back, milliseconds."""
    try:
        versions = f"{metadata.version('openai')}-{metadata.version('pydantic')}"
    except metadata.PackageNotFoundError:
        return None
    rules = f"{_FORMAT}{sorted(BOUNDS.items())}{sorted(MAX_ITEMS.items())}"
    digest = hashlib.sha256(rules.encode()).hexdigest()[:12]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "realtime-widget" / f"protocol-{versions}-{digest}.json"


def _build() -> SchemaNode:
    from pydantic import TypeAdapter

    realtime = _realtime()
    roots = {
        "client_event": realtime.RealtimeClientEventParam,
        "session": typing.Union[  # noqa: UP007 - a runtime union of the SDK's two session types
            realtime.RealtimeSessionCreateRequestParam,
            realtime.RealtimeTranscriptionSessionCreateRequestParam,
        ],
        # GPT-Live (/v1/live): its client events, the session made at creation (WebRTC), and
        # what session.update may change (delegation and triggers only).
        "live_client_event": _live().ClientEventParam,
        "live_session": _live().MediaSessionConfigParam,
        "live_session_update": _live().SessionUpdateConfigParam,
        "live_fork_session": _live().MediaSessionForkConfigParam,
    }
    # One generation for all roots: shapes of the same name in different modules (GPT-Live's
    # `Audio` and Realtime's, say) get distinct $defs instead of overwriting each other.
    together = typing_extensions.TypedDict("Roots", roots)  # type: ignore[misc]
    generated = TypeAdapter(together).json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = generated.pop("$defs", {})
    entry: dict[str, Any] = generated["properties"]
    document: SchemaNode = {"$defs": defs, "x-roots": entry}
    _close(document)
    return document


@cache
def schema() -> SchemaNode:
    """The JSON Schema of everything the widget checks: ``$defs`` holds each shape, and
    ``x-roots`` names the entry points (``client_event``, ``session``)."""
    cached = _cache_file()
    if cached is not None and cached.is_file():
        with contextlib.suppress(OSError, ValueError):
            loaded: SchemaNode = json.loads(cached.read_text(encoding="utf-8"))
            return loaded
    document = _build()
    if cached is not None:
        with contextlib.suppress(OSError):  # a read-only home: build it each time
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(document), encoding="utf-8")
            partial.replace(cached)
    return document


@cache
def schema_json() -> str:
    """The schema as the page gets it (compact JSON)."""
    return json.dumps(schema(), separators=(",", ":"))


def _union_members(union: Any) -> list[Any]:
    args = typing.get_args(union)
    if args and typing.get_origin(union) is typing.Annotated:
        args = typing.get_args(args[0])
    return list(args)


def _types_of(union: Any) -> list[str]:
    out: list[str] = []
    for member in _union_members(union):
        field = member.model_fields.get("type")
        if field is not None:
            out.extend(str(v) for v in typing.get_args(field.annotation))
    return out


@cache
def client_event_types() -> tuple[str, ...]:
    """Every client event type of the installed SDK's ``RealtimeClientEvent`` union."""
    return tuple(_types_of(_realtime().RealtimeClientEvent))


@cache
def server_event_types() -> tuple[str, ...]:
    """Every server event type of the installed SDK's ``RealtimeServerEvent`` union."""
    return tuple(_types_of(_realtime().RealtimeServerEvent))


@cache
def live_client_event_types() -> tuple[str, ...]:
    """Every client event type of the installed SDK's GPT-Live ``ClientEvent`` union."""
    return tuple(_types_of(_live().ClientEvent))


@cache
def live_server_event_types() -> tuple[str, ...]:
    """Every server event type of the installed SDK's GPT-Live ``ServerEvent`` union."""
    return tuple(_types_of(_live().ServerEvent))


# --- suggestions and deprecations -------------------------------------------------------------

_SUGGESTED = {
    "model": ("RealtimeSessionCreateRequestParam", "model"),
    "voice": ("RealtimeAudioConfigOutputParam", "voice"),
    "transcription_model": ("AudioTranscriptionParam", "model"),
}


def suggestions(what: str) -> list[str]:
    """The SDK's known values of an open field: ``"model"``, ``"voice"`` or
    ``"transcription_model"`` (any other string is accepted too).

    >>> "marin" in suggestions("voice")
    True
    """
    definition, field = _SUGGESTED[what]
    values: list[str] = []

    def collect(node: SchemaNode) -> None:
        node = _resolve(node)
        for branch in node.get("anyOf", []):
            collect(branch)
        values.extend(str(v) for v in node.get("enum", []))

    collect(schema()["$defs"][definition]["properties"][field])
    return values


_DEPRECATED = re.compile(
    r"-\s+((?:\"[^\"]+\",?\s*)+):\s*Announced shutdown date:\s*(\d{4}-\d{2}-\d{2})"
)


@cache
def deprecations() -> dict[str, datetime.date]:
    """Model names the SDK marks deprecated, with their announced shutdown date (read from the
    SDK's own field documentation)."""
    realtime = _realtime()
    found: dict[str, datetime.date] = {}
    for module in (
        realtime.realtime_session_create_request_param,
        realtime.audio_transcription_param,
    ):
        text = " ".join(inspect.getsource(module).split())
        for names, date in _DEPRECATED.findall(text):
            for name in re.findall(r"\"([^\"]+)\"", names):
                found[name] = datetime.date.fromisoformat(date)
    return found


def _successor(model: str) -> str | None:
    for prefix, successor in SUCCESSORS.items():
        if model == prefix or model.startswith(prefix + "-2"):
            return successor
    return None


def model_warning(model: str, today: datetime.date | None = None) -> str | None:
    """A warning for a model the SDK marks deprecated (or None): when it shuts down, and what
    to use instead.

    >>> model_warning("gpt-realtime", datetime.date(2026, 12, 3)).split(":")[0]
    "'gpt-realtime' is deprecated"
    """
    shutdown = deprecations().get(model)
    if shutdown is None:
        return None
    today = today or datetime.date.today()
    when = "was shut down on" if today >= shutdown else "shuts down on"
    successor = _successor(model)
    instead = f" Use {successor!r} instead." if successor else ""
    return f"{model!r} is deprecated: OpenAI {when} {shutdown.isoformat()}.{instead}"


def is_live_model(model: str) -> bool:
    """A GPT-Live model (``gpt-live-1``, ``gpt-live-1.1``): it speaks ``/v1/live``, not Realtime."""
    return model.startswith("gpt-live")


# --- validation ----------------------------------------------------------------------------------


def _resolve(node: SchemaNode) -> SchemaNode:
    ref = node.get("$ref")
    if ref is None:
        return node
    defs = schema()["$defs"]
    for _ in range(50):
        node = defs[ref.rsplit("/", 1)[-1]]
        ref = node.get("$ref")
        if ref is None:
            return node
    raise RuntimeError("a $ref cycle in the schema")


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
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "null":
        return value is None
    return True


def _json(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def _listing(values: list[Any]) -> str:
    shown = [_json(v) for v in values]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _closest(name: str, options: list[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""


def _at(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _check(node: SchemaNode, value: Any, path: str) -> SchemaError | None:
    node = _resolve(node)
    if "anyOf" in node:
        return _check_any(node, value, path)
    kind = node.get("type")
    if isinstance(kind, str) and not _type_ok(kind, value):
        return SchemaError(
            "invalid_type",
            path or "body",
            f"Invalid type for '{path or 'body'}': expected {_NAMES.get(kind, kind)}, but got "
            f"{_kind(value)} instead.",
        )
    if "const" in node and value != node["const"]:
        return SchemaError(
            "invalid_value",
            path,
            f"Invalid value: {_json(value)}. Supported values are: {_json(node['const'])}.",
        )
    if "enum" in node and (value not in node["enum"] or isinstance(value, bool)):
        hint = _closest(value, [str(v) for v in node["enum"]]) if isinstance(value, str) else ""
        return SchemaError(
            "invalid_value",
            path,
            f"Invalid value: {_json(value)}. Supported values are: {_listing(node['enum'])}.{hint}",
        )
    if kind in ("integer", "number"):
        low, high = node.get("minimum"), node.get("maximum")
        if low is not None and value < low:
            return SchemaError(
                "integer_below_min_value" if kind == "integer" else "decimal_below_min_value",
                path,
                f"Invalid '{path}': expected a value >= {low}, but got {value} instead.",
            )
        if high is not None and value > high:
            return SchemaError(
                "integer_above_max_value" if kind == "integer" else "decimal_above_max_value",
                path,
                f"Invalid '{path}': expected a value <= {high}, but got {value} instead.",
            )
    if isinstance(value, Mapping) and ("properties" in node or kind == "object"):
        return _check_object(node, value, path)
    if isinstance(value, list) and len(value) > node.get("maxItems", len(value)):
        return SchemaError(
            "array_above_max_length",
            path,
            f"Invalid '{path}': array too long. Expected an array with maximum length "
            f"{node['maxItems']}, but got an array with length {len(value)} instead.",
        )
    if isinstance(value, list) and "items" in node:
        for index, element in enumerate(value):
            error = _check(node["items"], element, _at(path, index))
            if error is not None:
                return error
    return None


def _check_object(node: SchemaNode, value: Mapping[str, Any], path: str) -> SchemaError | None:
    properties: dict[str, Any] = node.get("properties", {})
    extra = node.get("additionalProperties", True)
    for name in value:
        if name not in properties and extra is False:
            where = _at(path, str(name))
            return SchemaError(
                "unknown_parameter",
                where,
                f"Unknown parameter: '{where}'.{_closest(str(name), list(properties))}",
            )
    for name in node.get("required", []):
        if name not in value:
            where = _at(path, name)
            return SchemaError(
                "missing_required_parameter", where, f"Missing required parameter: '{where}'."
            )
    for name, element in value.items():
        sub = properties.get(name, extra if isinstance(extra, dict) else None)
        if sub is not None:
            error = _check(sub, element, _at(path, str(name)))
            if error is not None:
                return error
    return None


_CONSTS: dict[int, dict[str, Any]] = {}
_UNIONS: dict[int, tuple[list[SchemaNode], list[SchemaNode], list[str]]] = {}


def _consts(node: SchemaNode) -> dict[str, Any]:
    """The properties of an object schema fixed to one value (its discriminators)."""
    found = _CONSTS.get(id(node))
    if found is None:
        found = {}
        for name, prop in node.get("properties", {}).items():
            prop = _resolve(prop)
            # An optional fixed field is wrapped to allow null: the fixed value is inside.
            fixed = [_resolve(b) for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
            if len(fixed) == 1 and "const" in fixed[0]:
                found[name] = fixed[0]["const"]
            elif len(fixed) == 1 and len(fixed[0].get("enum", [])) == 1:
                found[name] = fixed[0]["enum"][0]
        _CONSTS[id(node)] = found
    return found


def _union(node: SchemaNode) -> tuple[list[SchemaNode], list[SchemaNode], list[str]]:
    """An anyOf's branches resolved, its object branches, and their discriminating keys
    ("type" first, then "role", ...); computed once per schema node."""
    found = _UNIONS.get(id(node))
    if found is None:
        resolved = [_resolve(b) for b in node["anyOf"]]
        objects = [b for b in resolved if "properties" in b]
        keys: list[str] = []
        for branch in objects:
            keys.extend(k for k in _consts(branch) if k not in keys)
        keys.sort(key=lambda k: (k != "type", k != "role"))
        found = (resolved, objects, keys)
        _UNIONS[id(node)] = found
    return found


def _enters(node: SchemaNode, value: Any) -> bool:
    """Whether a value is of the kind a schema node describes (before its details)."""
    node = _resolve(node)
    if "anyOf" in node:
        return any(_enters(b, value) for b in node["anyOf"])
    kind = node.get("type")
    if isinstance(kind, str):
        return _type_ok(kind, value) or (kind == "number" and _type_ok("integer", value))
    if "properties" in node:
        return isinstance(value, Mapping)
    return "const" not in node and "enum" not in node


def _check_any(node: SchemaNode, value: Any, path: str) -> SchemaError | None:
    resolved, objects, keys = _union(node)
    if isinstance(value, Mapping) and keys:
        # Discriminated objects (by "type", then "role", ...): only the branch the value names
        # is checked, and explained if it fails; a value that names none is told the names.
        matching = objects
        for key in keys:
            named = [b for b in matching if key in _consts(b)]
            if not named:
                continue
            if key not in value:
                if all(key in b.get("required", ()) for b in named):
                    where = _at(path, key)
                    return SchemaError(
                        "missing_required_parameter",
                        where,
                        f"Missing required parameter: '{where}'.",
                    )
                continue  # an optional fixed field (``object``): it narrows nothing
            shown = value[key]
            narrowed = [b for b in named if _consts(b)[key] == shown]
            if not narrowed:
                options = list(dict.fromkeys(_consts(b)[key] for b in named))
                hint = _closest(shown, [str(o) for o in options]) if isinstance(shown, str) else ""
                return SchemaError(
                    "invalid_value",
                    _at(path, key),
                    f"Invalid value: {_json(shown)}. Supported values are: "
                    f"{_listing(options)}.{hint}",
                )
            matching = narrowed
        first = None
        for branch in matching:
            error = _check(branch, value, path)
            if error is None:
                return None
            first = first or error
        return first
    errors = []
    for branch in resolved:
        error = _check(branch, value, path)
        if error is None:
            return None
        errors.append(error)
    # The branch the value's own type entered explains best (an object's deep mistake, a
    # string's wrong value); only when none did is it a matter of type.
    entered = [e for e, b in zip(errors, resolved, strict=True) if _enters(b, value)]
    if entered:
        return entered[0]
    kinds = []
    for branch in resolved:
        kind = branch.get("type") or ("object" if "properties" in branch else None)
        if isinstance(kind, str) and _NAMES.get(kind, kind) not in kinds:
            kinds.append(_NAMES.get(kind, kind))
    expected = " or ".join(kinds) if kinds else "another value"
    return SchemaError(
        "invalid_type",
        path or "body",
        f"Invalid type for '{path or 'body'}': expected {expected}, but got {_kind(value)} "
        "instead.",
    )


def check(node: SchemaNode, value: Any, path: str = "") -> None:
    """Raise :class:`SchemaError` if ``value`` does not fit a JSON Schema ``node`` (the same
    rules as the API's shapes; ``messages.py`` checks the page's messages with it)."""
    error = _check(node, value, path)
    if error is not None:
        raise error


def validate(root: str, value: Any, path: str = "") -> None:
    """Raise :class:`SchemaError` if ``value`` does not fit the schema's ``root``
    (``"client_event"`` or ``"session"``)."""
    error = _check(schema()["x-roots"][root], value, path)
    if error is not None:
        raise error


def validate_client_event(event: Any, *, live: bool = False) -> dict[str, Any]:
    """Check a client event against the SDK's types (and this project's strictness); return a
    copy, or raise :class:`SchemaError`. ``live``: a GPT-Live event (``openai.types.live``).

    >>> validate_client_event({"type": "response.cancel"})["type"]
    'response.cancel'
    >>> validate_client_event({"type": "session.close"}, live=True)["type"]
    'session.close'
    """
    validate("live_client_event" if live else "client_event", event)
    result: dict[str, Any] = copy.deepcopy(dict(event))
    return result


def validate_session(session: Any, param: str = "session") -> dict[str, Any]:
    """Check a (partial) session config; ``type`` is required, as in the GA API."""
    validate("session", session, param)
    result: dict[str, Any] = copy.deepcopy(dict(session))
    return result


def validate_live_session(session: Any, param: str = "session") -> dict[str, Any]:
    """Check a GPT-Live session config as made at creation (``model`` required)."""
    validate("live_session", session, param)
    result: dict[str, Any] = copy.deepcopy(dict(session))
    return result


# Set at creation and never changed (the API's immutable_field_update): the Session panel shows
# them read-only during a Live call, and update_session refuses them before sending.
LIVE_IMMUTABLE = ("model", "instructions", "audio", "input", "store", "client")


def live_update_problem(fields: Mapping[str, Any]) -> SchemaError | None:
    """Why a GPT-Live ``session.update`` would be refused, as the API says it (or None)."""
    for name in fields:
        if name in LIVE_IMMUTABLE:
            return SchemaError(
                "immutable_field_update",
                f"session.{name}",
                f"GPT-Live sets '{name}' when the session is created and it cannot change "
                "during a call: only 'delegation' (within its type) and 'triggers' can. "
                "It applies to the next call.",
            )
    return _check(schema()["x-roots"]["live_session_update"], dict(fields), "session")


# --- defaults the server applies (the local server fills them as OpenAI does) -------------------

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


def with_vad_defaults(detection: dict[str, Any] | None) -> dict[str, Any] | None:
    """Turn detection as the server applies it: the type's defaults under what was given."""
    if detection is None:
        return None
    defaults = (
        SEMANTIC_VAD_DEFAULTS if detection.get("type") == "semantic_vad" else SERVER_VAD_DEFAULTS
    )
    return {**defaults, **detection}
