"""Python functions as tools: the JSON Schema the model sees, and running the calls it makes.

No ``from __future__ import annotations`` here: the tools below are local functions whose
annotations name local classes, so they are evaluated when defined, as in a notebook cell.
"""

import asyncio
import enum
import json
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, List, Literal, Optional, Union  # noqa: UP035

import jsonschema  # dev extra: checks the generated schemas are valid JSON Schema
import pydantic  # dev extra: pydantic models as tool parameters
import pytest

from realtime_widget.session.tools import (
    Tool,
    ToolRegistry,
    ToolResult,
    run_tool,
    tool_from_function,
)


def params(fn: Any) -> dict[str, Any]:
    return tool_from_function(fn).parameters


def props(fn: Any) -> dict[str, Any]:
    return params(fn)["properties"]  # type: ignore[no-any-return]


def check_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)


# --- schemas -----------------------------------------------------------------------------------


def test_primitives_and_unannotated_parameters() -> None:
    def f(a: str, b: int, c: float, d: bool, e, g: Any) -> None:  # type: ignore[no-untyped-def]
        """Do f."""

    assert params(f) == {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "integer"},
            "c": {"type": "number"},
            "d": {"type": "boolean"},
            "e": {},
            "g": {},
        },
        "required": ["a", "b", "c", "d", "e", "g"],
        "additionalProperties": False,
    }
    assert tool_from_function(f).schema() == {
        "type": "function",
        "name": "f",
        "description": "Do f.",
        "parameters": params(f),
    }


def test_literals_become_enums_of_the_right_type() -> None:
    def f(
        unit: Literal["C", "F"],
        level: Literal[1, 2, 3],
        flag: Literal[True],
        mixed: Literal["auto", 0],
        ratio: Literal[0.5, 1.5],
    ) -> None:
        pass

    assert props(f) == {
        "unit": {"type": "string", "enum": ["C", "F"]},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "flag": {"type": "boolean", "enum": [True]},
        "mixed": {"type": ["string", "integer"], "enum": ["auto", 0]},
        "ratio": {"type": "number", "enum": [0.5, 1.5]},
    }


def test_lists_and_tuples_become_arrays_with_items() -> None:
    def f(
        a: list[int],
        b: List[str],  # noqa: UP006
        c: tuple[float, ...],
        d: tuple[int, str],
        e: list,  # type: ignore[type-arg]
        g: list[list[bool]],
        h: set[str],
    ) -> None:
        pass

    assert props(f) == {
        "a": {"type": "array", "items": {"type": "integer"}},
        "b": {"type": "array", "items": {"type": "string"}},
        "c": {"type": "array", "items": {"type": "number"}},
        "d": {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "minItems": 2,
            "maxItems": 2,
        },
        "e": {"type": "array"},
        "g": {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}},
        "h": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    }


def test_dicts_with_string_keys_become_objects_with_additional_properties() -> None:
    def f(a: dict[str, float], b: Dict[str, list[int]], c: dict) -> None:  # type: ignore[type-arg]  # noqa: UP006
        pass

    assert props(f) == {
        "a": {"type": "object", "additionalProperties": {"type": "number"}},
        "b": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "integer"}},
        },
        "c": {"type": "object"},
    }

    def g(a: dict[int, str]) -> None:
        pass

    with pytest.raises(TypeError, match=r"parameter a.*dict\[str"):
        tool_from_function(g)


def test_optional_is_the_inner_schema_and_required_only_without_a_default() -> None:
    def f(
        a: Optional[int],  # noqa: UP045
        b: int | None = None,
        c: Optional[str] = "x",  # noqa: UP045
        d: Union[int, str] = 1,  # noqa: UP007
    ) -> None:
        pass

    p = params(f)
    assert p["properties"] == {
        "a": {"type": "integer"},
        "b": {"type": "integer"},
        "c": {"type": "string", "default": "x"},
        "d": {"anyOf": [{"type": "integer"}, {"type": "string"}], "default": 1},
    }
    assert p["required"] == ["a"]


def test_defaults_are_shown_when_json_and_make_parameters_optional() -> None:
    sentinel = object()

    def f(a: int = 3, b: list[str] = ["x"], c: Any = sentinel, d: tuple[int, ...] = (1, 2)) -> None:  # noqa: B006
        pass

    p = params(f)
    assert p["properties"] == {
        "a": {"type": "integer", "default": 3},
        "b": {"type": "array", "items": {"type": "string"}, "default": ["x"]},
        "c": {},
        "d": {"type": "array", "items": {"type": "integer"}, "default": [1, 2]},
    }
    assert p["required"] == []


def test_annotated_descriptions_win_over_the_docstring() -> None:
    def f(city: Annotated[str, "A city, in English."], days: Annotated[int, 42] = 1) -> None:
        """Weather.

        Args:
            city: overridden by Annotated.
            days: How many days.
        """

    assert props(f) == {
        "city": {"type": "string", "description": "A city, in English."},
        "days": {"type": "integer", "description": "How many days.", "default": 1},
    }


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def test_enums_become_enums_of_their_values() -> None:
    def f(color: Color, level: Level = Level.LOW) -> None:
        pass

    assert props(f) == {
        "color": {"type": "string", "enum": ["red", "green"]},
        "level": {"type": "integer", "enum": [1, 2], "default": 1},
    }


@dataclass
class Point:
    x: float
    y: float = 0.0


@dataclass
class Route:
    name: Annotated[str, "What to call it."]
    stops: list[Point]
    start: Point
    tags: list[str] = field(default_factory=list)
    note: str | None = None


def test_dataclasses_become_nested_object_schemas() -> None:
    def f(route: Route) -> None:
        pass

    point = {
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"],
        "additionalProperties": False,
    }
    assert props(f)["route"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "What to call it."},
            "stops": {"type": "array", "items": point},
            "start": point,
            "tags": {"type": "array", "items": {"type": "string"}},
            "note": {"type": "string"},
        },
        "required": ["name", "stops", "start"],
        "additionalProperties": False,
    }
    check_schema(params(f))


def test_a_self_referencing_dataclass_is_refused_not_looped() -> None:
    @dataclass
    class Node:
        value: int
        child: Optional["Node"] = None

    globals()["Node"] = Node  # so the string annotation resolves
    try:

        def f(node: Node) -> None:
            pass

        with pytest.raises(TypeError, match="refers to itself"):
            tool_from_function(f)
    finally:
        del globals()["Node"]


def test_unsupported_types_are_refused_naming_the_parameter() -> None:
    class Opaque:
        pass

    def f(thing: Opaque) -> None:
        pass

    with pytest.raises(TypeError, match="tool f, parameter thing"):
        tool_from_function(f)


def test_pydantic_models_use_their_own_schema() -> None:

    class Address(pydantic.BaseModel):
        street: str
        zip_code: str = pydantic.Field(description="Postal code.")

    class Person(pydantic.BaseModel):
        name: str
        address: Address

    def f(person: Person, address: Address) -> None:
        pass

    p = params(f)
    assert p["properties"]["address"] == Address.model_json_schema()
    person = p["properties"]["person"]
    assert "$defs" not in json.dumps(person)  # inlined
    assert person["properties"]["address"] == Address.model_json_schema()
    assert person["required"] == ["name", "address"]
    check_schema(p)


def test_a_recursive_pydantic_model_keeps_its_defs_at_the_root() -> None:

    class Tree(pydantic.BaseModel):
        value: int
        children: list["Tree"] = pydantic.Field(default_factory=list)

    Tree.model_rebuild(_types_namespace={"Tree": Tree})

    def f(tree: Tree) -> None:
        pass

    p = params(f)
    assert set(p["$defs"]) == {"Tree"}
    check_schema(p)
    good = {"tree": {"value": 1, "children": [{"value": 2, "children": []}]}}
    jsonschema.validate(good, p)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tree": {"value": 1, "children": [{"value": "x"}]}}, p)


# --- docstrings --------------------------------------------------------------------------------


def test_google_docstrings_give_the_description_and_parameter_descriptions() -> None:
    def f(city: str, days: int = 1, units: str = "metric") -> None:
        """Get the weather
        for a city.

        More detail that the model does not need.

        Args:
            city (str): The city, in English;
                continued on a second line.
            days: How many days ahead.

        Returns:
            units: not a parameter description.
        """

    t = tool_from_function(f)
    assert t.description == "Get the weather for a city."
    assert t.parameters["properties"] == {
        "city": {
            "type": "string",
            "description": "The city, in English; continued on a second line.",
        },
        "days": {"type": "integer", "description": "How many days ahead.", "default": 1},
        "units": {"type": "string", "default": "metric"},
    }


def test_sphinx_docstrings_give_parameter_descriptions() -> None:
    def f(city: str, days: int = 1) -> None:
        """Get the weather.

        :param city: The city,
            in English.
        :param int days: How many days ahead.
        :returns: nothing.
        """

    t = tool_from_function(f)
    assert t.description == "Get the weather."
    assert t.parameters["properties"] == {
        "city": {"type": "string", "description": "The city, in English."},
        "days": {"type": "integer", "description": "How many days ahead.", "default": 1},
    }


def test_name_and_description_can_be_given() -> None:
    def f() -> None:
        """Docstring."""

    t = tool_from_function(f, name="other-name", description="Given.", timeout=2.5)
    assert (t.name, t.description, t.timeout) == ("other-name", "Given.", 2.5)
    assert tool_from_function(lambda: None, name="anon").description == ""


# --- refusals ----------------------------------------------------------------------------------


def test_star_args_and_kwargs_are_refused_by_name() -> None:
    def f(a: int, *rest: int) -> None:
        pass

    def g(a: int, **extra: Any) -> None:
        pass

    with pytest.raises(TypeError, match=r"\*rest"):
        tool_from_function(f)
    with pytest.raises(TypeError, match=r"\*\*extra"):
        tool_from_function(g)


@pytest.mark.parametrize("name", ["has space", "", "x" * 65, "dotted.name", "émoji"])
def test_bad_names_are_refused_with_the_fix(name: str) -> None:
    with pytest.raises(ValueError, match=r"name=\.\.\."):
        tool_from_function(lambda: None, name=name)
    with pytest.raises(ValueError, match="letters, digits"):
        Tool(name, "", {"type": "object"}, lambda: None)


def test_a_lambda_needs_a_name() -> None:
    with pytest.raises(ValueError, match=r"'<lambda>'.*name="):
        tool_from_function(lambda: None)
    assert tool_from_function(lambda: None, name="x" * 64).name == "x" * 64


# --- registry ----------------------------------------------------------------------------------


def one() -> str:
    """First."""
    return "1"


def two() -> str:
    """Second."""
    return "2"


def test_registry_keeps_order_and_replaces_by_name() -> None:
    tools = ToolRegistry()
    first = tools.add(one)
    tools.add(two)
    assert tools.names() == ["one", "two"]
    replacement = tools.add(two, name="one", description="Replaced.")
    assert tools.names() == ["one", "two"]  # the replacement keeps the old place
    assert tools.get("one") is replacement and replacement is not first
    assert [t.description for t in tools] == ["Replaced.", "Second."]
    assert len(tools) == 2 and "two" in tools and "three" not in tools
    assert tools.schemas() == [replacement.schema(), tools.get("two").schema()]  # type: ignore[union-attr]
    assert tools.get("three") is None


def test_registry_add_accepts_tools_and_options() -> None:
    tools = ToolRegistry()
    tool = Tool("ping", "Pong.", {"type": "object", "properties": {}}, lambda: "pong")
    assert tools.add(tool) is tool
    faster = tools.add(tool, timeout=1.0, name=None)
    assert faster.timeout == 1.0 and tool.timeout == 30.0
    assert tools.add(one, timeout=None).timeout == 30.0
    with pytest.raises(TypeError, match="'timeout'"):
        tools.add(one, timout=3)


def test_registry_remove_names_the_known_tools() -> None:
    tools = ToolRegistry()
    tools.add(one)
    tools.add(two)
    tools.remove("one")
    assert tools.names() == ["two"]
    with pytest.raises(KeyError, match=r"'one'.*two"):
        tools.remove("one")


def test_registry_is_safe_across_threads() -> None:
    tools = ToolRegistry()
    template = tool_from_function(one)
    threads, per_thread = 8, 300
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []
    writers_done = threading.Event()

    def writer(index: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                tools.add(template, name=f"t{index}_{i}")
                if i % 3 == 0:
                    tools.remove(f"t{index}_{i}")
        except BaseException as error:
            errors.append(error)

    def reader() -> None:
        start.wait()
        try:
            while not writers_done.is_set():
                tools.schemas()
                list(tools)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads - 1)]
    workers.append(threading.Thread(target=reader))
    for worker in workers:
        worker.start()
    start.wait()
    for worker in workers[:-1]:
        worker.join(30)
    writers_done.set()
    workers[-1].join(30)
    assert errors == []
    expected = [f"t{n}_{i}" for n in range(threads - 1) for i in range(per_thread) if i % 3]
    assert sorted(tools.names()) == sorted(expected)


# --- run_tool ----------------------------------------------------------------------------------


def registry(*fns: Any, timeout: float = 30.0) -> ToolRegistry:
    tools = ToolRegistry()
    for fn in fns:
        tools.add(fn, timeout=timeout)
    return tools


async def test_a_sync_tool_runs_off_the_loop_and_its_str_is_the_output() -> None:
    release = threading.Event()
    threads: list[str] = []

    def get_weather(city: str) -> str:
        """Weather."""
        threads.append(threading.current_thread().name)
        # Set by the loop: if the tool ran on the loop's thread this would time out.
        released = release.wait(5)
        return f"sunny in {city}" if released else "blocked the loop"

    asyncio.get_running_loop().call_soon(release.set)
    result = await run_tool(registry(get_weather), "get_weather", "call_1", '{"city": "Paris"}')
    assert result == ToolResult(
        call_id="call_1",
        name="get_weather",
        arguments={"city": "Paris"},
        output="sunny in Paris",
        ok=True,
        error=None,
        seconds=result.seconds,
        value="sunny in Paris",
    )
    assert 0 <= result.seconds < 5
    assert threads != [threading.current_thread().name]


async def test_an_async_tool_is_awaited_and_other_values_are_json() -> None:
    @dataclass
    class Forecast:
        city: str
        temps: list[int]

    async def forecast(city: str, days: int = 2) -> Forecast:
        await asyncio.sleep(0)
        return Forecast(city, list(range(days)))

    def mapping() -> dict[str, Any]:
        return {"a": [1, 2], "when": Color.RED, "unique": {3}}

    def nothing() -> None:
        return None

    tools = registry(forecast, mapping, nothing)
    result = await run_tool(tools, "forecast", "c1", '{"city": "Oslo", "days": 3}')
    assert result.ok and isinstance(result.value, Forecast)
    assert json.loads(result.output) == {"city": "Oslo", "temps": [0, 1, 2]}
    result = await run_tool(tools, "mapping", "c2", "{}")
    assert json.loads(result.output) == {"a": [1, 2], "when": "red", "unique": [3]}
    assert (await run_tool(tools, "nothing", "c3", "")).output == "null"  # "" means no arguments


async def test_dataclass_enum_and_list_arguments_are_built() -> None:
    seen: dict[str, Any] = {}

    def plan(route: Route, color: Color, extra: list[Point] | None = None) -> int:
        seen.update(route=route, color=color, extra=extra)
        return len(route.stops)

    arguments = {
        "route": {"name": "r", "stops": [{"x": 1}, {"x": 2, "y": 3}], "start": {"x": 0}},
        "color": "green",
        "extra": [{"x": 9}],
    }
    result = await run_tool(registry(plan), "plan", "c", json.dumps(arguments))
    assert result.ok, result.output
    assert result.output == "2"
    assert seen["route"] == Route("r", [Point(1), Point(2, 3)], Point(0))
    assert seen["color"] is Color.GREEN
    assert seen["extra"] == [Point(9)]


async def test_pydantic_arguments_are_validated_and_returns_dumped() -> None:

    class Item(pydantic.BaseModel):
        name: str
        qty: int = 1

    def order(item: Item) -> Item:
        assert isinstance(item, Item)
        return Item(name=item.name.upper(), qty=item.qty * 2)

    tools = registry(order)
    result = await run_tool(tools, "order", "c", '{"item": {"name": "tea", "qty": 2}}')
    assert result.ok and json.loads(result.output) == {"name": "TEA", "qty": 4}
    bad = await run_tool(tools, "order", "c", '{"item": {"qty": "many"}}')
    assert not bad.ok and "invalid argument item" in json.loads(bad.output)["error"]


async def test_invalid_json_tells_the_model_what_was_received() -> None:
    result = await run_tool(registry(one), "one", "c", '{"city": Par')
    assert not result.ok and result.value is None and result.arguments is None
    body = json.loads(result.output)
    assert "not valid JSON" in body["error"] and body["received"] == '{"city": Par'
    assert result.error == body["error"]
    not_object = await run_tool(registry(one), "one", "c", "[1, 2]")
    assert "JSON object" in json.loads(not_object.output)["error"]


async def test_an_unknown_tool_lists_the_available_ones() -> None:
    result = await run_tool(registry(one, two), "three", "c", "{}")
    assert not result.ok
    body = json.loads(result.output)
    assert "three" in body["error"] and body["available"] == ["one", "two"]


async def test_missing_and_unknown_arguments_are_named() -> None:
    calls: list[Any] = []

    def f(a: int, b: int, c: int = 0) -> None:
        calls.append((a, b, c))

    tools = registry(f)
    missing = await run_tool(tools, "f", "c", '{"c": 1}')
    assert not missing.ok and missing.arguments == {"c": 1}
    assert json.loads(missing.output)["error"] == "missing required argument(s): a, b"
    unknown = await run_tool(tools, "f", "c", '{"a": 1, "b": 2, "d": 3, "e": 4}')
    assert json.loads(unknown.output)["error"].startswith("unknown argument(s): d, e")
    assert calls == []


async def test_an_exception_becomes_json_naming_the_error() -> None:
    def get_weather(city: str) -> str:
        raise ValueError("no such city")

    async def empty() -> None:
        raise RuntimeError

    tools = registry(get_weather, empty)
    result = await run_tool(tools, "get_weather", "c", '{"city": "Atlantis"}')
    assert not result.ok and result.value is None
    assert json.loads(result.output) == {"error": "ValueError: no such city", "tool": "get_weather"}
    assert result.error == "ValueError: no such city"
    assert json.loads((await run_tool(tools, "empty", "c", "{}")).output)["error"] == "RuntimeError"


async def test_a_sync_tool_past_its_timeout_is_reported_and_its_thread_released() -> None:
    release, finished = threading.Event(), threading.Event()

    def slow() -> str:
        try:
            release.wait(30)
            return "late"
        finally:
            finished.set()

    try:
        result = await run_tool(registry(slow, timeout=0.2), "slow", "c", "{}")
        assert not result.ok and result.value is None
        assert "took longer than 0.2 s" in json.loads(result.output)["error"]
        assert 0.2 <= result.seconds < 5
        assert not finished.is_set()  # still running: Python cannot stop a thread
    finally:
        release.set()
        assert finished.wait(5)


async def test_an_async_tool_past_its_timeout_is_cancelled() -> None:
    never, cancelled = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    try:
        result = await run_tool(registry(slow, timeout=0.2), "slow", "c", "{}")
        assert not result.ok
        assert json.loads(result.output)["error"] == "slow took longer than 0.2 s; was cancelled"
        await asyncio.wait_for(cancelled.wait(), 5)
    finally:
        never.set()


async def test_an_async_tool_raising_timeout_error_is_an_exception_not_a_timeout() -> None:
    async def flaky() -> str:
        raise TimeoutError("upstream")

    result = await run_tool(registry(flaky), "flaky", "c", "{}")
    assert result.error == "TimeoutError: upstream"


async def test_cancelling_run_tool_cancels_an_async_tool() -> None:
    started, cancelled, never = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.ensure_future(run_tool(registry(slow), "slow", "c", "{}"))
    try:
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(cancelled.wait(), 5)
    finally:
        never.set()


async def test_positional_only_parameters_and_hand_written_tools() -> None:
    def power(base: int, /, exp: int = 2) -> int:
        return int(base**exp)

    tools = registry(power)
    assert (await run_tool(tools, "power", "c", '{"base": 3}')).value == 9
    assert (await run_tool(tools, "power", "c", '{"base": 2, "exp": 3}')).value == 8

    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    tools.add(Tool("search", "Search.", schema, lambda **kw: sorted(kw)))
    result = await run_tool(tools, "search", "c", '{"q": "x", "extra": 1}')
    assert result.value == ["extra", "q"]  # no additionalProperties: false, so extras pass


async def test_string_annotations_may_name_what_the_function_closes_over() -> None:
    @dataclass
    class Local:
        n: int

    def double(item: "Local") -> int:  # a string, as under `from __future__ import annotations`
        assert isinstance(item, Local)
        return item.n * 2

    assert props(double)["item"]["required"] == ["n"]
    assert (await run_tool(registry(double), "double", "c", '{"item": {"n": 4}}')).value == 8
