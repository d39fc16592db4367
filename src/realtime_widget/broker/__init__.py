"""Workshops on JupyterHub: a key broker with per-learner quotas and an instructor's view.

The broker (``realtime-widget broker``, a JupyterHub managed service) holds the instructor's key
and makes every call for the learners, who need no configuration: inside a hub server the widget
finds it (``endpoint="hub"``). See ``service.py`` for the endpoints, ``policy.py`` for what an
instructor sets, ``store.py`` for the ledger, ``meter.py`` for how calls are measured and ended,
and :class:`BrokerClient` for the instructor's Python API.
"""

from __future__ import annotations

from .client import BrokerClient
from .policy import Policy, Quota

__all__ = ["BrokerClient", "Policy", "Quota"]
