"""Budgets: ``max_duration`` caps each call; ``max_cost`` caps the session's whole spend.

They differ on purpose. A call's length is a property of one call (OpenAI's own limit is per
call), so ``max_duration`` starts again with every call. Money is what a user means to cap, so
``max_cost`` counts every call of the session (reconnects included): once it is reached the
call is ended and ``connect()`` refuses until the cap is raised. A cost that can't be known (a
model without a price) can't be capped: :class:`Budget` says so instead of doing nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class BudgetExceeded(RuntimeError):
    """``connect()`` was asked for while the session's spend is at or over ``max_cost``."""


class Budget:
    """``max_duration`` (seconds, per call) and ``max_cost`` (USD, whole session);
    ``on_exceeded(reason)`` runs once per call when either is reached.

    >>> b = Budget(max_duration=None, max_cost=0.5, on_exceeded=print)
    >>> b.refusal(0.75).split(":")[0]
    'This session has spent $0.7500, over its max_cost=$0.5'
    """

    def __init__(
        self,
        *,
        max_duration: float | None,
        max_cost: float | None,
        on_exceeded: Callable[[str], None],
    ) -> None:
        for name, value in (("max_duration", max_duration), ("max_cost", max_cost)):
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"{name} must be a positive number of "
                                 f"{'seconds' if name == 'max_duration' else 'US dollars'} "
                                 f"or None, not {value!r}.")  # fmt: skip
        self.max_duration = max_duration
        self.max_cost = max_cost
        self._on_exceeded = on_exceeded
        self._timer: threading.Timer | None = None
        self._fired = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """A call is connected: its clock starts."""
        self.stop()
        with self._lock:
            self._fired = False
        if self.max_duration is not None:
            reason = (
                f"the call reached max_duration={self.max_duration:g} s (a limit on each call); "
                "the kernel ended it. Connect again for a new call"
            )
            timer = threading.Timer(self.max_duration, self._fire, args=(reason,))
            timer.daemon = True  # a timer thread: the kernel loop may be busy running a cell
            self._timer = timer
            timer.start()

    def check_cost(self, spent: float | None) -> None:
        """After a response: end the call if the session's spend reached ``max_cost``."""
        if self.max_cost is not None and spent is not None and spent >= self.max_cost:
            self._fire(
                f"the session reached max_cost=${self.max_cost:g} (spent ${spent:.4f} over all "
                "its calls); the kernel ended the call. Raise max_cost to connect again"
            )

    def refusal(self, spent: float | None) -> str | None:
        """Why a new call can't start (the cap is already spent), or None."""
        if self.max_cost is None or spent is None or spent < self.max_cost:
            return None
        return (
            f"This session has spent ${spent:.4f}, over its max_cost=${self.max_cost:g}: raise "
            "it (e.g. w.max_cost = 1.0) or set it to None to connect again."
        )

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, reason: str) -> None:
        with self._lock:
            if self._fired:
                return
            self._fired = True
        self._on_exceeded(reason)
