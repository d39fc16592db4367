"""One DTLS certificate per process for aiortc's peer connections, as a media server keeps one.

aiortc makes a new ECDSA key and a self-signed certificate for every peer connection, and a new
OpenSSL context from them when DTLS starts: about 1.5 ms of CPU per call, on the one event loop
that a practice server's whole room shares, and a room's calls arrive together. WebRTC lets an
application give many connections the same certificate (a browser's
``RTCPeerConnection.generateCertificate``) and media servers keep one per process; each peer still
checks it against the fingerprint in the SDP it was sent, so nothing about a call's security
changes.

aiortc has no parameter for it: :func:`share_certificate` makes ``RTCPeerConnection`` take the
process's certificate, made when first needed and replaced after a day (aiortc's certificates
are valid for 30), whose fingerprints and OpenSSL contexts are made once. It checks what it relies
on and leaves aiortc as it is otherwise (a certificate per call: slower, not wrong).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, ClassVar

from aiortc import rtcpeerconnection
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint
from OpenSSL import SSL

__all__ = ["share_certificate"]

logger = logging.getLogger(__name__)

RENEW_AFTER_S = 24 * 3600


class ProcessCertificate(RTCCertificate):
    """The certificate every peer connection in this process uses (``generateCertificate``
    hands out the current one)."""

    _current: ClassVar[ProcessCertificate | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key=key, cert=cert)
        self.renew_at = time.monotonic() + RENEW_AFTER_S
        self._fingerprints = super().getFingerprints()
        self._contexts: dict[tuple[bytes, ...], SSL.Context] = {}

    @classmethod
    def generateCertificate(cls) -> ProcessCertificate:
        with cls._lock:  # a kernel's server thread and its own loop may both make calls
            current = cls._current
            if current is None or time.monotonic() >= current.renew_at:
                current = cls._current = super().generateCertificate()
            return current

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:
        return list(self._fingerprints)

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> SSL.Context:
        # A context may serve many connections; aiortc changes none after making it. Without a
        # session cache, no DTLS session outlives its call.
        key = tuple(profile.openssl_profile for profile in srtp_profiles)
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                context = super()._create_ssl_context(srtp_profiles)
                context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
                self._contexts[key] = context
            return context


def share_certificate() -> bool:
    """Make aiortc's peer connections use this process's certificate; ``True`` when in effect.

    Calling this again does nothing.

    >>> share_certificate()
    True
    >>> share_certificate()
    True
    """
    current = getattr(rtcpeerconnection, "RTCCertificate", None)
    if current is ProcessCertificate:
        return True
    if current is not RTCCertificate or not hasattr(RTCCertificate, "_create_ssl_context"):
        logger.info("aiortc's certificates are not as expected: one is made per call")
        return False
    rtcpeerconnection.RTCCertificate = ProcessCertificate  # type: ignore[attr-defined]
    return True
