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
from asyncio import sslproto

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
                own = getattr(type(self), "_hook", None)
                for hook in ([own] if own is not None else list(_handshake_hooks)):
                    try:
                        hook(code, None)
                    except Exception:  # noqa: BLE001 - a logging hook never breaks the server
                        pass
            raise


def recording_class(hook: HandshakeHook) -> type:
    """A :class:`RecordingSSLObject` that reports to ``hook`` only (one per server context)."""
    return type("ServerRecordingSSLObject", (RecordingSSLObject,), {"_hook": staticmethod(hook)})


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


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def unified_protocol_class(ssl_context: ssl.SSLContext, first_byte_timeout: float = 10.0) -> type:
    """One port for TLS and, on a loopback address only, plain HTTP (port unification).

    The first byte of a connection tells: 0x16 starts a TLS handshake (the CS, the operator UI
    over HTTPS), anything else is plain HTTP (the operator UI of a local demo at
    ``http://localhost``, where browsers allow WebAuthn). A TLS connection is handed to asyncio's
    TLS protocol with our context (client certificates verified, refusals recorded); the HTTP
    protocol then runs on top, with the TLS extension in its scope. Plain connections never carry
    a client certificate, so the CS endpoints refuse them (``CLIENT_CERT_REQUIRED``).
    """
    http_class = protocol_class()

    class UnifiedProtocol(asyncio.Protocol):
        def __init__(self, config, server_state, app_state, _loop=None):
            self._kw = dict(config=config, server_state=server_state, app_state=app_state)
            self.loop = _loop or asyncio.get_event_loop()
            self.transport = None
            self._timer = None

        def connection_made(self, transport):
            self.transport = transport
            self._timer = self.loop.call_later(first_byte_timeout, transport.close)

        def connection_lost(self, exc):
            if self._timer is not None:
                self._timer.cancel()

        def data_received(self, data: bytes) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            http = http_class(**self._kw)
            if data[:1] == b"\x16":
                proto = sslproto.SSLProtocol(self.loop, http, ssl_context, None, server_side=True,
                                             ssl_handshake_timeout=first_byte_timeout)
            else:
                proto = http
            self.transport.set_protocol(proto)
            proto.connection_made(self.transport)
            if isinstance(proto, asyncio.BufferedProtocol):
                view = memoryview(data)
                while view:
                    buf = proto.get_buffer(len(view))
                    n = min(len(buf), len(view))
                    buf[:n] = view[:n]
                    proto.buffer_updated(n)
                    view = view[n:]
            else:
                proto.data_received(data)

    return UnifiedProtocol


def make_server(app, host: str, port: int, ssl_context: Optional[ssl.SSLContext], *,
                log_level: str = "warning", backlog: int = 2048, plain_http_on_loopback: bool = False) -> uvicorn.Server:
    """A uvicorn server for ``app`` on ``host:port`` with ``ssl_context`` (our own context, so that
    the TLS policy and the client-certificate mode are ours). With ``plain_http_on_loopback`` and a
    loopback ``host``, the same port also answers plain HTTP (see :func:`unified_protocol_class`)."""
    unified = plain_http_on_loopback and ssl_context is not None and host in LOOPBACK
    http = unified_protocol_class(ssl_context) if unified else protocol_class()
    cfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, http=http,
                         lifespan="on", backlog=backlog, timeout_keep_alive=30, access_log=False,
                         server_header=False, loop="auto")
    cfg.load()
    cfg.ssl = None if unified else ssl_context
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
