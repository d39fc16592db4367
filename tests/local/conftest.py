from __future__ import annotations

from collections.abc import Iterator

import pytest

from realtime_widget.local import LocalServer


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    with LocalServer(port=0) as running:
        yield running


@pytest.fixture()
def fresh_server() -> Iterator[LocalServer]:
    """A server of one's own, for tests that change its limits or count its calls."""
    with LocalServer(port=0, max_session_s=1.0) as running:
        yield running
