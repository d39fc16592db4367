"""The broker's ledger: every call, who made it, how long it ran and what it cost, in SQLite.

A restart loses nothing: counts are sums over the calls table. A call still open when the broker
stopped keeps the seconds and cost measured until then (``last_seen``) and is closed at start-up
as ``broker_restarted``. All times are Unix seconds; days are UTC days.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,            -- realtime or live
    model TEXT,
    started REAL NOT NULL,
    last_seen REAL NOT NULL,
    ended REAL,
    end_reason TEXT,
    seconds REAL NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS calls_user ON calls (user, started);
CREATE TABLE IF NOT EXISTS secrets (
    value_hash TEXT PRIMARY KEY,   -- a client secret minted for a learner (hashed)
    user TEXT NOT NULL,
    model TEXT,
    expires_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Usage:
    """A learner's use in a window: minutes, dollars, calls, calls open now."""

    minutes: float
    dollars: float
    calls: int
    active: int


def day_start(now: float | None = None) -> float:
    now = time.time() if now is None else now
    return now - now % 86_400


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        now = time.time()
        with self._lock:
            self._db.execute(
                "UPDATE calls SET ended = last_seen, end_reason = 'broker_restarted' "
                "WHERE ended IS NULL",
            )
            self._db.execute("DELETE FROM secrets WHERE expires_at < ?", (now,))

    def close(self) -> None:
        self._db.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # --- writing ----------------------------------------------------------------------------

    def secret_minted(
        self, value_hash: str, user: str, model: str | None, expires_at: float
    ) -> None:
        self._q(
            "INSERT OR REPLACE INTO secrets VALUES (?, ?, ?, ?)",
            (value_hash, user, model, expires_at),
        )

    def secret_owner(self, value_hash: str) -> tuple[str, str | None] | None:
        rows = self._q(
            "SELECT user, model FROM secrets WHERE value_hash = ? AND expires_at > ?",
            (value_hash, time.time()),
        )
        return (str(rows[0][0]), rows[0][1]) if rows else None

    def call_started(self, call_id: str, user: str, kind: str, model: str | None) -> None:
        now = time.time()
        self._q(
            "INSERT OR IGNORE INTO calls (id, user, kind, model, started, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (call_id, user, kind, model, now, now),
        )

    def measured(self, call_id: str, seconds: float, cost: float) -> None:
        self._q(
            "UPDATE calls SET seconds = ?, cost = ?, last_seen = ? WHERE id = ? AND ended IS NULL",
            (seconds, cost, time.time(), call_id),
        )

    def call_ended(self, call_id: str, reason: str) -> None:
        now = time.time()
        self._q(
            "UPDATE calls SET ended = ?, last_seen = ?, end_reason = ? "
            "WHERE id = ? AND ended IS NULL",
            (now, now, reason, call_id),
        )

    # --- reading ----------------------------------------------------------------------------

    def usage(self, user: str, *, since: float | None = None) -> Usage:
        since = day_start() if since is None else since
        rows = self._q(
            "SELECT COALESCE(SUM(seconds), 0), COALESCE(SUM(cost), 0), COUNT(*), "
            "COALESCE(SUM(ended IS NULL), 0) FROM calls WHERE user = ? AND started >= ?",
            (user, since),
        )
        seconds, cost, count, _ = rows[0]
        active = self._q("SELECT COUNT(*) FROM calls WHERE user = ? AND ended IS NULL", (user,))
        return Usage(float(seconds) / 60, float(cost), int(count), int(active[0][0]))

    def calls_since(self, user: str, since: float) -> int:
        return int(
            self._q("SELECT COUNT(*) FROM calls WHERE user = ? AND started >= ?", (user, since))[0][
                0
            ]
        )

    def active(self, user: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, user, kind, model, started, seconds, cost FROM calls WHERE ended IS NULL"
        rows = self._q(sql + (" AND user = ?" if user else ""), (user,) if user else ())
        keys = ("id", "user", "kind", "model", "started", "seconds", "cost")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def per_learner(self, since: float | None = None) -> list[dict[str, Any]]:
        since = day_start() if since is None else since
        rows = self._q(
            "SELECT user, COUNT(*), COALESCE(SUM(seconds), 0), COALESCE(SUM(cost), 0), "
            "COALESCE(SUM(ended IS NULL), 0) FROM calls WHERE started >= ? "
            "GROUP BY user ORDER BY user",
            (since,),
        )
        return [
            {
                "user": user,
                "calls": int(calls),
                "minutes": round(float(seconds) / 60, 3),
                "dollars": round(float(cost), 6),
                "active": int(active),
            }
            for user, calls, seconds, cost, active in rows
        ]

    def all_calls(self) -> list[dict[str, Any]]:
        keys = ("id", "user", "kind", "model", "started", "ended", "end_reason", "seconds", "cost")
        rows = self._q(f"SELECT {', '.join(keys)} FROM calls ORDER BY started")
        return [dict(zip(keys, row, strict=True)) for row in rows]
