"""The broker's policy and ledger on their own (the hub end to end is tests/hub)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from realtime_widget.broker import Policy, Quota
from realtime_widget.broker.policy import PolicyError
from realtime_widget.broker.store import Store, day_start


def test_a_policy_file_is_checked_and_groups_lay_over_the_quota() -> None:
    policy = Policy.from_dict(
        {
            "models": ["gpt-realtime-2"],
            "instructions_prefix": "Be kind. ",
            "quota": {"minutes_per_day": 10},
            "groups": {"tiny": {"minutes_per_day": 1}, "staff": {"concurrent_calls": None}},
        }
    )
    assert policy.quota_for([]) == Quota(minutes_per_day=10)
    assert policy.quota_for(["tiny", "staff"]).minutes_per_day == 1
    assert policy.quota_for(["staff"]).concurrent_calls is None
    session = policy.apply({"type": "realtime", "model": "gpt-realtime-2", "instructions": "Hi."})
    assert session["instructions"] == "Be kind. Hi."
    with pytest.raises(PolicyError, match="allows the models gpt-realtime-2"):
        policy.apply({"type": "realtime", "model": "gpt-realtime-1.5"})
    with pytest.raises(ValueError, match="Unknown quota fields"):
        Policy.from_dict({"groups": {"x": {"minutes": 1}}})
    with pytest.raises(ValueError, match="window is 'day' or 'workshop'"):
        Policy.from_dict({"window": "week"})


def test_the_ledger_survives_a_restart_and_counts_by_window(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    store = Store(path)
    store.call_started("rtc_1", "ann", "realtime", "gpt-realtime-2")
    store.measured("rtc_1", 90, 0.25)
    store.call_started("rtc_2", "ann", "live", "gpt-live-1.1")
    store.measured("rtc_2", 30, 0.025)
    store.call_ended("rtc_1", "ended")
    store.secret_minted("hash", "ann", "gpt-realtime-2", time.time() + 60)
    usage = store.usage("ann")
    assert (usage.minutes, usage.dollars, usage.calls, usage.active) == (2.0, 0.275, 2, 1)
    store.close()
    again = Store(path)  # the broker restarted: the open call is closed where it was last seen
    usage = again.usage("ann")
    assert (usage.minutes, usage.calls, usage.active) == (2.0, 2, 0)
    reasons = {c["id"]: c["end_reason"] for c in again.all_calls()}
    assert reasons == {"rtc_1": "ended", "rtc_2": "broker_restarted"}
    assert again.secret_owner("hash") == ("ann", "gpt-realtime-2")
    assert again.usage("ann", since=day_start() + 86_400).calls == 0  # tomorrow: nothing yet
