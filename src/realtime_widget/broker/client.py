"""The instructor's view from Python: what the broker's page shows, as data."""

from __future__ import annotations

import os
from typing import Any

import httpx


class BrokerClient:
    """The broker's usage and kill switch, from an instructor's notebook on the hub.

    >>> broker = BrokerClient()  # doctest: +SKIP
    >>> broker.learners()  # minutes, dollars, calls per learner today  # doctest: +SKIP
    >>> broker.end(user="alice")  # doctest: +SKIP
    """

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        url = url or os.environ.get("REALTIME_WIDGET_BROKER_URL")
        token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
        if not url or not token:
            raise RuntimeError(
                "BrokerClient works inside a hub server (it uses $REALTIME_WIDGET_BROKER_URL and "
                "$JUPYTERHUB_API_TOKEN), or pass url= and token=."
            )
        self.url = url.rstrip("/") + "/"
        self._headers = {"Authorization": f"token {token}"}

    def _get(self, path: str) -> httpx.Response:
        res = httpx.get(self.url + path, headers=self._headers, timeout=15)
        _raise(res)
        return res

    def usage(self) -> dict[str, Any]:
        """Today's usage per learner, the calls in progress, the totals and the policy."""
        data: dict[str, Any] = self._get("api/usage").json()
        return data

    def learners(self) -> Any:
        """Today's usage per learner as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.usage()["learners"])

    def csv(self) -> str:
        """Every call the broker made, as CSV."""
        return self._get("api/usage.csv").text

    def end(self, *, call: str | None = None, user: str | None = None) -> list[str]:
        """End one call, a learner's calls, or (with neither) every call; the ids ended."""
        body = {k: v for k, v in (("call", call), ("user", user)) if v is not None}
        res = httpx.post(self.url + "api/end", json=body, headers=self._headers, timeout=30)
        _raise(res)
        ended: list[str] = res.json()["ended"]
        return ended


def _raise(res: httpx.Response) -> None:
    if res.status_code >= 400:
        try:
            message = res.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = res.text[:300]
        raise RuntimeError(f"The broker refused ({res.status_code}): {message}")
