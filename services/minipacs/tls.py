"""DICOM TLS for the listener (PS3.15 B.1): server certificate, optional
client-certificate verification against a CA."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from minipacs.config import Settings


class TLSConfigError(Exception):
    """The certificate, key or CA file cannot be loaded."""


class _DeferredHandshakeContext(ssl.SSLContext):
    """pynetdicom wraps each accepted socket in the thread that accepts
    connections, and `wrap_socket` does the TLS handshake there by default: one
    peer that connects and says nothing would stall every other connection.
    Deferring the handshake moves it into the association's own thread (the
    first read performs it), bounded by the network timeout."""

    handshake_timeout: float | None = None

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["do_handshake_on_connect"] = False
        sock.settimeout(self.handshake_timeout)
        return super().wrap_socket(sock, *args, **kwargs)


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context, or None when PACS_TLS_CERT is not set."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = _DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.handshake_timeout = settings.network_timeout
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        if settings.tls_ca is not None:
            context.load_verify_locations(cafile=settings.tls_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load TLS certificate, key or CA: {exc}") from exc
    return context


def self_check_context(settings: Settings) -> ssl.SSLContext | None:
    """For `minipacs healthcheck` against our own TLS port: no server
    verification (we dial 127.0.0.1, whose name is not in the certificate),
    and our own certificate as the client certificate, so with PACS_TLS_CA
    the CA must have issued the server certificate too."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
