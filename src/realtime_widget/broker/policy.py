"""What an instructor allows: models, voices, an instructions prefix, call length, and quotas.

A policy is a JSON file (``realtime-widget broker --policy workshop.json``) or the defaults::

    {"models": ["gpt-realtime-2.1", "gpt-live-1.1"], "voices": ["marin", "cedar"],
     "instructions_prefix": "You are a workshop assistant. ",
     "max_call_s": 600,
     "quota": {"minutes_per_day": 30, "dollars_per_day": 2.0, "concurrent_calls": 1,
               "calls_per_hour": 20},
     "groups": {"instructors": {"minutes_per_day": null, "dollars_per_day": null}}}

A learner's quota is ``quota`` with the overrides of each hub group they belong to laid over it
(``null`` lifts a limit). Days are UTC days; ``"window": "workshop"`` makes the minutes and
dollars count over the whole workshop (the ledger) instead of per day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class PolicyError(ValueError):
    """A session the policy refuses; ``str()`` says what is allowed."""

    def __init__(self, message: str, *, code: str = "not_allowed", param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass(frozen=True)
class Quota:
    """Limits per learner; None lifts one."""

    minutes_per_day: float | None = 30.0
    dollars_per_day: float | None = 2.0
    concurrent_calls: int | None = 1
    calls_per_hour: int | None = 20

    def over(self, overrides: dict[str, Any]) -> Quota:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"Unknown quota fields {sorted(unknown)}: use {sorted(known)}.")
        return replace(self, **overrides)


@dataclass(frozen=True)
class Policy:
    models: tuple[str, ...] = ("gpt-realtime-2.1", "gpt-realtime-2", "gpt-live-1.1", "gpt-live-1")
    voices: tuple[str, ...] = ()  # empty: any
    instructions_prefix: str = ""
    max_call_s: float = 600.0
    quota: Quota = field(default_factory=Quota)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    window: str = "day"  # or "workshop": minutes and dollars never reset

    @classmethod
    def load(cls, path: str | Path | None) -> Policy:
        if path is None:
            return cls()
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"Could not read the policy {path}: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Policy:
        known = {
            "models",
            "voices",
            "instructions_prefix",
            "max_call_s",
            "quota",
            "groups",
            "window",
        }
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"Unknown policy fields {sorted(unknown)}: use {sorted(known)}.")
        policy = cls()
        window = str(raw.get("window") or "day")
        if window not in ("day", "workshop"):
            raise ValueError(f"window is 'day' or 'workshop', not {window!r}.")
        quota = Quota().over(raw.get("quota") or {})
        for name, overrides in (raw.get("groups") or {}).items():
            quota.over(overrides)  # checked now, not when a learner of that group comes
            del name
        return replace(
            policy,
            models=tuple(raw.get("models") or policy.models),
            voices=tuple(raw.get("voices") or ()),
            instructions_prefix=str(raw.get("instructions_prefix") or ""),
            max_call_s=float(raw.get("max_call_s") or policy.max_call_s),
            quota=quota,
            groups=dict(raw.get("groups") or {}),
            window=window,
        )

    def quota_for(self, groups: list[str]) -> Quota:
        quota = self.quota
        for group in sorted(groups):
            if group in self.groups:
                quota = quota.over(self.groups[group])
        return quota

    def apply(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as the broker sends it upstream: checked, the instructions prefixed."""
        model = session.get("model")
        if not isinstance(model, str) or model not in self.models:
            raise PolicyError(
                f"This workshop allows the models {', '.join(self.models)}, not {model!r}: "
                'pass one of them as RealtimeWidget(model="...").',
                param="session.model",
            )
        voice = (session.get("audio") or {}).get("output", {}).get("voice")
        if self.voices and voice is not None and voice not in self.voices:
            raise PolicyError(
                f"This workshop allows the voices {', '.join(self.voices)}, not {voice!r}.",
                param="session.audio.output.voice",
            )
        out = dict(session)
        if self.instructions_prefix:
            out["instructions"] = self.instructions_prefix + str(session.get("instructions") or "")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "voices": list(self.voices),
            "instructions_prefix": self.instructions_prefix,
            "max_call_s": self.max_call_s,
            "quota": {f.name: getattr(self.quota, f.name) for f in fields(self.quota)},
            "groups": self.groups,
            "window": self.window,
        }
