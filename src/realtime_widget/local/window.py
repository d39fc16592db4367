"""A ceiling on aiortc's SCTP congestion window, so a burst fits in the socket that receives it.

aiortc grows the window for as long as nothing is lost (the peer's advertised receive window is
only its first slow-start threshold), and on loopback nothing is lost until the receiver's UDP
socket overflows. Measured with the local server as its own process, flooding a call with 2,000
events: the window reached 180 KiB, a burst that size overflowed the socket of a receiver busy
with other work (Chromium, or an aiortc client) and dozens of chunks were lost at once (gaps in
the receiver's SACKs in three runs of five). Fast retransmit usually recovers; when a
retransmission is lost too, the call waits a full retransmission timeout, a second at aiortc's
minimum: that flood reached the client at 1,600 events/s against 8,000-14,000 otherwise.

:func:`cap_congestion_window` keeps the window at most :data:`MAX_CWND` bytes: 64 KiB in flight
is about 55 packets, well inside a default Linux socket buffer (208 KiB), and still 64 MB/s at a
loopback round trip of 1 ms (6.4 MB/s on a LAN's 10 ms), far more than any call's events. Slow
start, congestion avoidance, retransmission and timers are aiortc's and unchanged below the
ceiling. It checks what it relies on and leaves aiortc as it is otherwise (no ceiling: a flood
may lose a burst, not wrong).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from aiortc import rtcsctptransport as sctp

__all__ = ["MAX_CWND", "cap_congestion_window"]

logger = logging.getLogger(__name__)

MAX_CWND = 64 * 1024
_STORED = "_realtime_widget_cwnd"


def _get(transport: Any) -> int:
    return int(transport.__dict__[_STORED])


def _set(transport: Any, value: int) -> None:
    transport.__dict__[_STORED] = min(value, MAX_CWND)


def cap_congestion_window() -> bool:
    """Keep every SCTP association's congestion window at most :data:`MAX_CWND` bytes;
    ``True`` when in effect. Calling this again does nothing.

    >>> cap_congestion_window()
    True
    >>> cap_congestion_window()
    True
    """
    transport_class = sctp.RTCSctpTransport
    current = vars(transport_class).get("_cwnd")
    if isinstance(current, property) and current.fget is _get:
        return True
    # The window must be a plain instance attribute that aiortc sets when it makes a transport:
    # a property on the class then sees every write.
    try:
        sets_it = "self._cwnd = " in inspect.getsource(transport_class.__init__)
    except (OSError, TypeError):  # installed without its sources: can't tell
        sets_it = False
    if current is not None or not sets_it:
        logger.info("aiortc's SCTP is not as expected: its congestion window has no ceiling")
        return False
    setattr(transport_class, "_cwnd", property(_get, _set))  # noqa: B010 (mypy: an int there)
    return True
