"""HTTPS with mutual TLS for uvicorn: the verified client certificate reaches the application, and
refused handshakes are reported (ADR 0005).

uvicorn verifies a client certificate when the TLS context asks for one, but does not put it in
the ASGI scope. :func:`protocol_class` returns a subclass of uvicorn's HTTP protocol that adds the
ASGI **TLS extension** (``scope["extensions"]["tls"]``, as hypercorn does) to every request of a
connection: ``client_cert_chain`` holds the PEM of the certificate the TLS layer verified (empty
when the client sent none). With ``CERT_OPTIONAL`` the same port serves browsers without a
certificate (the operator UI) and the CS, whose endpoints refuse requests without one.

A handshake that fails (unknown CA, expired certificate, no TLS at all) never reaches the
application. :class:`RecordingSSLObject` is set as the context's ``sslobject_class``: it sees the
failure inside the TLS layer and hands a reason code to the ``handshake_failed`` callback, which
the server writes to the communication log (U6).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from typing import Callable, Optional

import uvicorn

HandshakeHook = Callable[[str, Optional[str]], None]

#: called with (reason code, peer address or None) for every refused TLS handshake
_handshake_hooks: list[HandshakeHook] = []


def add_handshake_hook(hook: HandshakeHook) -> None:
    _handshake_hooks.append(hook)


def remove_handshake_hook(hook: HandshakeHook) -> None:
    try:
        _handshake_hooks.remove(hook)
    except ValueError:
        pass


def classify_tls_error(exc: BaseException) -> str:
    """A stable code for a failed handshake (no personal data: OpenSSL's reason only)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        msg = (exc.verify_message or "").lower()
        if "expired" in msg:
            return "TLS_CERT_EXPIRED"
        if "not yet valid" in msg:
            return "TLS_CERT_NOT_YET_VALID"
        if "issuer" in msg or "self-signed" in msg or "self signed" in msg:
            return "TLS_UNKNOWN_CA"
        return "TLS_CERT_INVALID"
    text = str(exc).lower()
    if "expired" in text:
        return "TLS_CERT_EXPIRED"
    if "unknown ca" in text or "unable to get" in text or "certificate verify failed" in text:
        return "TLS_UNKNOWN_CA"
    if "wrong version" in text or "http request" in text or "unsupported protocol" in text:
        return "TLS_PROTOCOL"
    return "TLS_HANDSHAKE_FAILED"


class RecordingSSLObject(ssl.SSLObject):
    """An SSLObject that reports a failed server-side handshake to the registered hooks."""

    def do_handshake(self):  # noqa: D401
        try:
            return super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            if self.server_side:
                code = classify_tls_error(exc)
                for hook in list(_handshake_hooks):
                    try:
                        hook(code, None)
                    except Exception:  # noqa: BLE001 - a logging hook never breaks the server
                        pass
            raise


def _tls_extension(transport) -> dict:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return {}
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    cipher = ssl_object.cipher()
    return {"tls": {"server_cert": None, "client_cert_chain": chain, "client_cert_der": der,
                    "client_cert_name": None, "client_cert_error": None,
                    "tls_version": ssl_object.version(), "cipher_suite": cipher[0] if cipher else None}}


def protocol_class() -> type:
    """uvicorn's HTTP/1.1 protocol (httptools, else h11) with the ASGI TLS extension added."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    class TlsExtensionProtocol(Base):
        def connection_made(self, transport):
            super().connection_made(transport)
            ext = _tls_extension(transport)
            if not ext:
                return
            inner = self.app

            async def app(scope, receive, send):
                extensions = scope.get("extensions")
                if extensions is None:
                    scope["extensions"] = extensions = {}
                extensions.update(ext)
                await inner(scope, receive, send)

            self.app = app

    return TlsExtensionProtocol


def make_server(app, host: str, port: int, ssl_context: Optional[ssl.SSLContext], *,
                log_level: str = "warning", backlog: int = 2048) -> uvicorn.Server:
    """A uvicorn server for ``app`` on ``host:port`` with ``ssl_context`` (our own context, so that
    the TLS policy and the client-certificate mode are ours)."""
    cfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol_class(),
                         lifespan="on", backlog=backlog, timeout_keep_alive=30, access_log=False,
                         server_header=False)
    cfg.load()
    cfg.ssl = ssl_context
    return uvicorn.Server(cfg)


class ServerThread:
    """Run a uvicorn server in a background thread (tests, the demo, the simulators)."""

    def __init__(self, server: uvicorn.Server):
        self.server = server
        self.thread = threading.Thread(target=self._run, daemon=True, name="jukinet-uvicorn")

    def _run(self) -> None:
        self.server.run()

    def start(self, timeout: float = 15.0) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
