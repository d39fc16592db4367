"""An experiment's scenarios as pytest cases, as a prompt regression suite in a repository would
write them (this module is such a suite, against the local server)."""

from __future__ import annotations

import pytest

from realtime_widget.workbench import Case, Experiment, Scenario, check


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


WEATHER = Scenario(
    "weather",
    ["call get_weather with city=Paris"],
    expect=[check.called("get_weather", city="Paris")],
)
exp = Experiment(
    variants={"terse": {"instructions": "Be brief."}, "warm": {"instructions": "Be warm."}},
    scenarios=[Scenario("greeting", ["hello"], expect=[check.contains("hello")]), WEATHER],
    tools=[get_weather],
    endpoint="local",
)


@pytest.mark.parametrize("case", exp.cases(), ids=str)
async def test_prompts(case: Case) -> None:
    (await exp.run_case(case)).assert_passed()


def test_the_cases_are_the_plan_named_for_test_ids() -> None:
    assert [str(c) for c in exp.cases()] == [
        "terse/greeting#0", "terse/weather#0", "warm/greeting#0", "warm/weather#0",
    ]  # fmt: skip


async def test_a_failing_case_says_what_failed() -> None:
    strict = Experiment(
        variants={"only": {}},
        scenarios=[Scenario("greeting", ["hello"], expect=[check.contains("goodbye")])],
        endpoint="local",
    )
    run = await strict.run_case(Case("only", "greeting"))
    with pytest.raises(AssertionError, match=r"only/greeting: contains\('goodbye'\): not in"):
        run.assert_passed()
    with pytest.raises(KeyError, match="not a case of this experiment"):
        await strict.run_case(Case("only", "farewell"))
