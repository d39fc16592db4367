"""One DTLS certificate per process (local/certificate.py), and the host addresses kept a moment."""

from __future__ import annotations

import time
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcdtlstransport import SRTP_PROFILES
from OpenSSL import SSL

from realtime_widget.local.certificate import ProcessCertificate, share_certificate
from realtime_widget.local.rtc import use_loopback_candidates


def _fingerprint(sdp: str) -> str:
    return next(line for line in sdp.splitlines() if line.startswith("a=fingerprint:"))


async def test_peer_connections_share_the_process_certificate() -> None:
    assert share_certificate() and share_certificate()  # in effect, and idempotent
    offers = []
    for _ in range(2):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("oai-events")
        await pc.setLocalDescription(await pc.createOffer())
        offers.append(pc.localDescription.sdp)
        await pc.close()
    assert _fingerprint(offers[0]) == _fingerprint(offers[1])

    certificate = ProcessCertificate.generateCertificate()
    assert certificate is ProcessCertificate.generateCertificate()
    # One OpenSSL context per SRTP profile list, with no session cache to outlive a call.
    context = certificate._create_ssl_context(SRTP_PROFILES)
    assert certificate._create_ssl_context(list(SRTP_PROFILES)) is context
    assert context.get_session_cache_mode() == SSL.SESS_CACHE_OFF


def test_the_certificate_is_replaced_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    old = ProcessCertificate.generateCertificate()
    monkeypatch.setattr(old, "renew_at", time.monotonic() - 1)
    new = ProcessCertificate.generateCertificate()
    assert new is not old
    assert new.getFingerprints() != old.getFingerprints()


def test_host_addresses_are_listed_once_for_a_burst_of_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_loopback_candidates()
    listed = []
    adapters = aioice.ice.ifaddr.get_adapters

    def counting(*args: Any, **kwargs: Any) -> Any:
        listed.append(1)
        return adapters(*args, **kwargs)

    monkeypatch.setattr(aioice.ice.ifaddr, "get_adapters", counting)
    first = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    again = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    assert first == again and "127.0.0.1" in first
    assert len(listed) <= 1  # the second call (and a room's next calls) reuse the list
    first.append("10.9.9.9")  # a caller's changes stay its own
    assert "10.9.9.9" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
