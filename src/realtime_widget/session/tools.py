"""Python functions as tools the Realtime model can call, and running them when it does.

A tool is a plain function. Its JSON Schema comes from the signature, the type hints and the
docstring (:func:`tool_from_function`); :class:`ToolRegistry` keeps the tools of one session in
order; :func:`run_tool` answers one ``function_call`` from the model with a :class:`ToolResult`
whose ``output`` is what goes back as ``function_call_output.output``. Nothing a tool does wrong
(bad arguments, an exception, a timeout, a name the model made up) escapes ``run_tool``: it
becomes an output that tells the model what failed, so the session goes on.

Only the standard library is needed; pydantic models are understood when pydantic is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import difflib
import enum
import inspect
import json
import re
import sys
import threading
import time
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["Tool", "ToolRegistry", "ToolResult", "run_tool", "tool_from_function"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_RECEIVED_LIMIT = 2000  # characters of bad arguments echoed back to the model


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"tool name {name!r} is not allowed: use 1 to 64 letters, digits, '_' or '-' "
            "(pass name=... to choose one)"
        )


@dataclasses.dataclass
class Tool:
    """A function the model can call, with the JSON Schema of its arguments.

    Usually made by :func:`tool_from_function`; build one directly to declare a hand-written
    schema. ``fn`` is called with the arguments as keywords.

    >>> t = Tool("ping", "Answer pong.", {"type": "object", "properties": {}}, lambda: "pong")
    >>> t.schema()["name"]
    'ping'
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    timeout: float = 30.0

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")

    def schema(self) -> dict[str, Any]:
        """The Realtime (GA) tool declaration, as sent in ``session.tools``.

        >>> t = Tool("ping", "Answer pong.", {"type": "object", "properties": {}}, lambda: "pong")
        >>> t.schema()["type"], t.schema()["parameters"]
        ('function', {'type': 'object', 'properties': {}})
        """
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


# --- schemas from type hints -------------------------------------------------------------------


def _pydantic_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic model class, without importing pydantic."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(tp, type):
        return False
    base = getattr(pydantic, "BaseModel", None)
    return base is not None and issubclass(tp, base)


def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise TypeError(f"{value!r} cannot be a JSON enum value (use str, int, float, bool or None)")


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds: list[str] = []
    for value in values:
        kind = _json_type(value)
        if kind not in kinds:
            kinds.append(kind)
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def _jsonable(value: Any) -> tuple[bool, Any]:
    """``(True, json_value)`` when a default can be shown to the model as JSON."""
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return True, json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return False, None


class _Builder:
    """Turns type hints into JSON Schema; pydantic ``$defs`` that must stay land in ``defs``."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self._building: list[type] = []

    def schema(self, tp: Any, where: str) -> dict[str, Any]:
        if tp is inspect.Parameter.empty or tp is Any or tp is object:
            return {}
        if tp is None or tp is type(None):
            return {"type": "null"}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            inner = self.schema(args[0], where)
            for meta in args[1:]:
                text = meta if isinstance(meta, str) else getattr(meta, "description", None)
                if isinstance(text, str) and text:
                    inner = {**inner, "description": text}
            return inner
        if _is_union(origin):
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.schema(options[0], where)
            return {"anyOf": [self.schema(a, where) for a in options]}
        if origin is typing.Literal:
            return _enum_schema([v.value if isinstance(v, enum.Enum) else v for v in args])
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_schema([member.value for member in tp])
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"}
        if tp in (list, tuple, set, frozenset) or (
            origin in (list, tuple, set, frozenset, Sequence) and not args
        ):
            return {"type": "array"}
        if origin in (list, set, frozenset, Sequence):
            out: dict[str, Any] = {"type": "array", "items": self.schema(args[0], where)}
            if origin in (set, frozenset):
                out["uniqueItems"] = True
            return out
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.schema(args[0], where)}
            if args == ((),) or not args:  # tuple[()]: the empty tuple
                return {"type": "array", "maxItems": 0}
            return {
                "type": "array",
                "prefixItems": [self.schema(a, where) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if tp is dict or (origin in (dict, Mapping) and not args):
            return {"type": "object"}
        if origin in (dict, Mapping):
            if args[0] is not str:
                raise TypeError(f"{where}: JSON object keys are strings, so use dict[str, ...]")
            return {"type": "object", "additionalProperties": self.schema(args[1], where)}
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self._dataclass(tp, where)
        if _pydantic_model(tp):
            return self._pydantic(tp)
        raise TypeError(
            f"{where}: no JSON Schema for {tp!r}; use str, int, float, bool, Literal, an Enum, "
            "list, tuple, dict[str, ...], Optional, a dataclass or a pydantic model, "
            "or leave the parameter unannotated"
        )

    def _dataclass(self, cls: type, where: str) -> dict[str, Any]:
        if cls in self._building:
            raise TypeError(f"{where}: dataclass {cls.__name__} refers to itself; not supported")
        self._building.append(cls)
        try:
            hints = _hints(cls)
            properties: dict[str, Any] = {}
            required: list[str] = []
            for field in dataclasses.fields(cls):
                if not field.init:
                    continue
                prop = self.schema(hints.get(field.name, Any), f"{where}.{field.name}")
                if field.default is None:
                    pass
                elif field.default is not dataclasses.MISSING:
                    ok, value = _jsonable(field.default)
                    if ok:
                        prop = {**prop, "default": value}
                elif field.default_factory is dataclasses.MISSING:
                    required.append(field.name)
                properties[field.name] = prop
            out: dict[str, Any] = {"type": "object", "properties": properties}
            if required:
                out["required"] = required
            out["additionalProperties"] = False
            return out
        finally:
            self._building.pop()

    def _pydantic(self, model: Any) -> dict[str, Any]:
        raw: dict[str, Any] = model.model_json_schema()
        defs: dict[str, Any] = raw.pop("$defs", {})
        kept: set[str] = set()

        def inline(node: Any, stack: tuple[str, ...]) -> Any:
            if isinstance(node, list):
                return [inline(n, stack) for n in node]
            if not isinstance(node, dict):
                return node
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref[len("#/$defs/") :]
                rest = {k: inline(v, stack) for k, v in node.items() if k != "$ref"}
                if name in stack:  # recursive: keep the reference, hoisted to the root
                    kept.add(name)
                    return {**rest, "$ref": ref}
                return {**inline(defs[name], (*stack, name)), **rest}
            return {k: inline(v, stack) for k, v in node.items()}

        out: dict[str, Any] = inline(raw, ())
        done: set[str] = set()
        while kept - done:
            name = sorted(kept - done)[0]
            done.add(name)
            body = inline(defs[name], (name,))
            if name in self.defs and self.defs[name] != body:
                raise TypeError(f"two different models are both named {name}; rename one")
            self.defs[name] = body
        return out


def _hints(obj: Any) -> dict[str, Any]:
    """Type hints with extras; string annotations may also name what the function closes over."""
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception as error:  # NameError for a forward reference, TypeError on old syntax
        code, cells = getattr(obj, "__code__", None), getattr(obj, "__closure__", None) or ()
        local: dict[str, Any] = {}
        for var, cell in zip(getattr(code, "co_freevars", ()), cells, strict=False):
            with contextlib.suppress(ValueError):  # an empty cell
                local[var] = cell.cell_contents
        if local:
            with contextlib.suppress(Exception):
                return typing.get_type_hints(obj, localns=local, include_extras=True)
        name = getattr(obj, "__qualname__", repr(obj))
        raise TypeError(
            f"cannot read the type hints of {name}: {error} "
            "(define the types it names at module level)"
        ) from error


# --- docstrings --------------------------------------------------------------------------------

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns|Return|Yields|"
    r"Raises|Examples?|Notes?|Warnings?|See Also|Attributes|Todo)\s*:\s*$"
)
_ARGS = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _summary(doc: str) -> str:
    lines: list[str] = []
    for line in doc.splitlines():
        text = line.strip()
        if not text or _SECTION.match(text) or text.startswith(":") or text.startswith(">>>"):
            break
        lines.append(text)
    return " ".join(lines)


def _param_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google ``Args:`` section or Sphinx ``:param x:`` lines."""
    found: dict[str, list[str]] = {}
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        sphinx = _SPHINX.match(line.strip())
        if sphinx:
            name, parts = sphinx.group(1), [sphinx.group(2).strip()]
            base = _indent(line)
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > base:
                parts.append(lines[i].strip())
                i += 1
            found[name] = parts
            continue
        if _ARGS.match(line.strip()):
            header = _indent(line)
            entry_indent: int | None = None
            current: list[str] | None = None
            i += 1
            while i < len(lines):
                body = lines[i]
                if not body.strip():
                    i += 1
                    continue
                level = _indent(body)
                if level <= header:
                    break
                if entry_indent is None:
                    entry_indent = level
                google = _GOOGLE_ENTRY.match(body.strip())
                if level <= entry_indent and google:
                    current = [google.group(3).strip()]
                    found[google.group(1)] = current
                elif current is not None:
                    current.append(body.strip())
                i += 1
            continue
        i += 1
    return {name: " ".join(p for p in parts if p) for name, parts in found.items()}


# --- tools from functions ----------------------------------------------------------------------


def tool_from_function(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = 30.0,
) -> Tool:
    """A :class:`Tool` whose schema comes from ``fn``'s signature, type hints and docstring.

    The description is the docstring's first paragraph; parameter descriptions come from
    ``Annotated[X, "text"]``, or else a Google-style ``Args:`` section or Sphinx ``:param x:``
    lines. Parameters with a default are optional (the default is shown when it is JSON).

    >>> from typing import Literal
    >>> def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    ...     '''The weather in a city.
    ...
    ...     Args:
    ...         city: Its name, in English.
    ...     '''
    ...     return "sunny"
    >>> t = tool_from_function(get_weather)
    >>> t.description
    'The weather in a city.'
    >>> t.parameters["properties"]["unit"]
    {'type': 'string', 'enum': ['C', 'F'], 'default': 'C'}
    >>> t.parameters["required"]
    ['city']
    """
    if not callable(fn):
        raise TypeError(f"a tool is a function, not {type(fn).__name__}")
    tool_name = name if name is not None else getattr(fn, "__name__", None)
    if tool_name is None:
        raise ValueError(f"{fn!r} has no __name__: pass name=... to name the tool")
    _check_name(tool_name)
    doc = inspect.cleandoc(inspect.getdoc(fn) or "")
    signature = inspect.signature(fn)
    hints = _hints(fn)
    described = _param_docs(doc)
    builder = _Builder()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise TypeError(
                f"tool {tool_name}: parameter {star}{param.name} cannot be described to the "
                "model; list the arguments it takes as named parameters"
            )
        where = f"tool {tool_name}, parameter {param.name}"
        prop = builder.schema(hints.get(param.name, inspect.Parameter.empty), where)
        if "description" not in prop and param.name in described:
            prop = {**prop, "description": described[param.name]}
        if param.default is param.empty:
            required.append(param.name)
        elif param.default is not None:  # "default": null would contradict the type
            ok, value = _jsonable(param.default)
            if ok:
                prop = {**prop, "default": value}
        properties[param.name] = prop
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if builder.defs:
        parameters["$defs"] = builder.defs
    return Tool(
        name=tool_name,
        description=_summary(doc) if description is None else description,
        parameters=parameters,
        fn=fn,
        timeout=timeout,
    )


_ADD_OPTIONS = ("name", "description", "timeout")


class ToolRegistry:
    """The tools of a session, in the order they were added; safe to use from any thread.

    >>> tools = ToolRegistry()
    >>> def add(a: int, b: int) -> int:
    ...     "Add two numbers."
    ...     return a + b
    >>> tools.add(add).name
    'add'
    >>> "add" in tools, len(tools), tools.names()
    (True, 1, ['add'])
    >>> tools.remove("add")
    >>> tools.get("add") is None
    True
    """

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()

    def add(self, fn_or_tool: Callable[..., Any] | Tool, **options: Any) -> Tool:
        """Add a tool (a function is converted by :func:`tool_from_function`) and return it.

        ``options`` are ``name``, ``description`` and ``timeout``; ``None`` means the default.
        A tool with the same name replaces the old one, keeping its place.

        >>> tools = ToolRegistry()
        >>> def ping() -> str:
        ...     "Answer pong."
        ...     return "pong"
        >>> tools.add(ping, name="ping2", timeout=5).timeout
        5
        """
        for key in options:
            if key not in _ADD_OPTIONS:
                close = difflib.get_close_matches(key, _ADD_OPTIONS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(f"unknown option {key!r}{hint} (valid: {', '.join(_ADD_OPTIONS)})")
        given = {k: v for k, v in options.items() if v is not None}
        if isinstance(fn_or_tool, Tool):
            tool = dataclasses.replace(fn_or_tool, **given) if given else fn_or_tool
        else:
            tool = tool_from_function(fn_or_tool, **given)
        with self._lock:
            self._tools[tool.name] = tool
        return tool

    def remove(self, name: str) -> None:
        """Remove a tool; ``KeyError`` (naming the known tools) when there is none by that name.

        >>> ToolRegistry().remove("nope")
        Traceback (most recent call last):
        KeyError: "no tool named 'nope'; the tools are: (none)"
        """
        with self._lock:
            if name not in self._tools:
                known = ", ".join(self._tools) or "(none)"
                raise KeyError(f"no tool named {name!r}; the tools are: {known}")
            del self._tools[name]

    def get(self, name: str) -> Tool | None:
        """The tool of that name, or ``None``."""
        with self._lock:
            return self._tools.get(name)

    def names(self) -> list[str]:
        """The tools' names, in order."""
        with self._lock:
            return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """The tools' declarations for ``session.tools``, in order."""
        with self._lock:
            return [tool.schema() for tool in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        with self._lock:
            return iter(list(self._tools.values()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"


# --- running a call ----------------------------------------------------------------------------


@dataclasses.dataclass
class ToolResult:
    """One tool call, answered.

    ``output`` is what the model receives as ``function_call_output.output``; ``value`` is the
    Python return value (``None`` when the call failed), ``error`` the failure as text.
    """

    call_id: str
    name: str
    arguments: dict[str, Any] | None
    output: str
    ok: bool
    error: str | None
    seconds: float
    value: Any = None


class _BadArguments(Exception):
    pass


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Build dataclass, pydantic and Enum instances from the JSON the model sent."""
    if tp is inspect.Parameter.empty or tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _convert(value, args[0], where)
    if _is_union(origin):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(value, options[0], where)
        for option in options:
            try:
                return _convert(value, option, where)
            except _BadArguments:
                continue
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            valid = [m.value for m in tp]
            raise _BadArguments(f"{where}: {value!r} is not one of {valid}") from None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise _BadArguments(f"{where}: expected an object, got {value!r}")
        hints = _hints(tp)
        fields = {f.name for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise _BadArguments(f"{where}: unknown field(s) {', '.join(unknown)}")
        kwargs = {k: _convert(v, hints.get(k, Any), f"{where}.{k}") for k, v in value.items()}
        try:
            return tp(**kwargs)
        except TypeError as error:
            raise _BadArguments(f"{where}: {error}") from None
    if _pydantic_model(tp):
        try:
            return tp.model_validate(value)
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            raise _BadArguments(f"{where}: {error}") from None
    if isinstance(value, list) and origin in (list, tuple, set, frozenset, Sequence):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _BadArguments(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _convert(v, t, f"{where}[{i}]")
                for i, (v, t) in enumerate(zip(value, args, strict=True))
            )
        item = args[0] if args else Any
        converted = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return converted if origin is Sequence else origin(converted)
    if isinstance(value, list) and tp in (tuple, set, frozenset):
        return tp(value)
    if isinstance(value, dict) and origin in (dict, Mapping) and len(args) == 2:
        return {k: _convert(v, args[1], f"{where}[{k!r}]") for k, v in value.items()}
    return value


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if _pydantic_model(type(value)):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


def _serialise(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _failure(tool: str, message: str, **extra: Any) -> str:
    return json.dumps({"error": message, "tool": tool, **extra}, ensure_ascii=False)


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


async def _in_thread(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run ``fn`` in its own daemon thread (not the loop's executor: see :func:`run_tool`)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(ok: bool, outcome: Any) -> None:
        if future.done():  # timed out or cancelled: the result is ignored
            return
        if ok:
            future.set_result(outcome)
        else:
            future.set_exception(outcome)

    def work() -> None:
        try:
            outcome, ok = context.run(fn, *args, **kwargs), True
        except BaseException as error:  # handed to the loop, which decides
            outcome, ok = error, False
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(settle, ok, outcome)

    threading.Thread(target=work, name=f"tool-{getattr(fn, '__name__', 'fn')}", daemon=True).start()
    return await future


async def run_tool(registry: ToolRegistry, name: str, call_id: str, arguments: str) -> ToolResult:
    """Run the tool the model called and return what to answer; never raises for tool errors.

    ``arguments`` is the JSON text from the ``function_call`` item. Coroutine functions run as
    tasks on the running loop and are cancelled after the tool's ``timeout``. Sync functions run
    in a thread of their own so they never block the loop (or a comm handler); past the timeout
    the model is told so, but **the thread keeps running** (Python cannot stop it) and its
    result is ignored. Each thread is a daemon, so a stuck tool does not hold up the kernel's
    exit or the loop's default executor.

    A failure's ``output`` is JSON such as ``{"error": "ValueError: no such city",
    "tool": "get_weather"}``, and ``error`` is the same message.

    >>> tools = ToolRegistry()
    >>> def add(a: int, b: int) -> int:
    ...     "Add two numbers."
    ...     return a + b
    >>> _ = tools.add(add)
    >>> result = asyncio.run(run_tool(tools, "add", "call_1", '{"a": 2, "b": 3}'))
    >>> result.ok, result.output, result.value
    (True, '5', 5)
    >>> json.loads(asyncio.run(run_tool(tools, "sub", "call_2", "{}")).output)["available"]
    ['add']
    """
    started = time.perf_counter()

    def fail(message: str, parsed: dict[str, Any] | None, **extra: Any) -> ToolResult:
        return ToolResult(
            call_id=call_id,
            name=name,
            arguments=parsed,
            output=_failure(name, message, **extra),
            ok=False,
            error=message,
            seconds=time.perf_counter() - started,
        )

    tool = registry.get(name)
    if tool is None:
        return fail(f"there is no tool named {name!r}", None, available=registry.names())

    text = arguments if isinstance(arguments, str) else str(arguments)
    try:
        parsed_any: Any = json.loads(text) if text.strip() else {}
    except ValueError as error:
        received = text if len(text) <= _RECEIVED_LIMIT else text[:_RECEIVED_LIMIT] + "…"
        return fail(f"the arguments were not valid JSON ({error})", None, received=received)
    if not isinstance(parsed_any, dict):
        return fail(
            f"the arguments must be a JSON object, not {type(parsed_any).__name__}",
            None,
            received=text[:_RECEIVED_LIMIT],
        )
    parsed: dict[str, Any] = parsed_any

    schema = tool.parameters
    properties = schema.get("properties") or {}
    missing = [key for key in schema.get("required") or [] if key not in parsed]
    if missing:
        return fail(f"missing required argument(s): {', '.join(missing)}", parsed)
    if schema.get("additionalProperties") is False:
        unknown = [key for key in parsed if key not in properties]
        if unknown:
            expected = ", ".join(properties) or "(none)"
            return fail(f"unknown argument(s): {', '.join(unknown)} (expected: {expected})", parsed)

    try:
        call_args, call_kwargs = _prepare(tool, parsed)
    except _BadArguments as error:
        return fail(f"invalid argument {error}", parsed)
    except TypeError as error:  # type hints that cannot be read
        return fail(f"the tool could not be called: {error}", parsed)

    fn = tool.fn
    try:
        if _is_async(fn):
            task = asyncio.ensure_future(fn(*call_args, **call_kwargs))
        else:
            task = asyncio.ensure_future(_in_thread(fn, call_args, call_kwargs))
        try:
            done, _ = await asyncio.wait({task}, timeout=tool.timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            task.add_done_callback(_swallow)
            what = "was cancelled" if _is_async(fn) else "its result will be ignored"
            return fail(f"{name} took longer than {tool.timeout:g} s; {what}", parsed)
        value = task.result()
        output = _serialise(value)
    except Exception as error:
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return fail(message, parsed)
    return ToolResult(
        call_id=call_id,
        name=name,
        arguments=parsed,
        output=output,
        ok=True,
        error=None,
        seconds=time.perf_counter() - started,
        value=value,
    )


def _swallow(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it


def _prepare(tool: Tool, parsed: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional-only parameters by position, the rest by keyword, converted by type hint."""
    try:
        signature = inspect.signature(tool.fn)
    except (TypeError, ValueError):  # a builtin without a signature: pass as given
        return [], dict(parsed)
    hints = _hints(tool.fn)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name not in parsed:
            if param.kind is param.POSITIONAL_ONLY and param.default is not param.empty:
                args.append(param.default)
            continue
        value = _convert(parsed[param.name], hints.get(param.name, Any), param.name)
        if param.kind is param.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[param.name] = value
    for key in parsed:  # a hand-written schema may name arguments the signature takes as **kw
        if key not in signature.parameters:
            kwargs[key] = parsed[key]
    return args, kwargs
