"""Certificate revocation of the mutually authenticated channels (U1, U6, A11; ADR 0030).

The CA publishes a **CRL** (RFC 5280, signed by the CA, with ``nextUpdate``). The development CA
of ``jukinet init`` writes it to ``pki/crl.pem`` (``jukinet pki revoke`` / ``reissue`` / ``crl``);
production points ``[tls] crl_file`` (and ``crl_files``) at the CRLs of the prefecture's CA.

- **Inbound** (市町村CS → 都道府県サーバ): :class:`RevocationChecker` is consulted by the CS
  endpoints after the application re-verifies the client certificate, before the body is read.
  A revoked certificate is refused ``CERT_REVOKED``; no usable CRL (missing, past nextUpdate,
  never a valid one) refuses every CS ``CRL_UNAVAILABLE`` (fail closed).
- **Outbound** (都道府県サーバ → 全国サーバ): the client TLS context carries the CRLs in force with
  ``VERIFY_CRL_CHECK_LEAF``, so a revoked national certificate fails the handshake before any
  personal data is sent (:func:`client_context`, :func:`outbound_code`).

A CRL file is re-read when its modification time or size changes (checked at most every
``crl_check_interval`` seconds). A new file that does not parse or is not signed by our CA is
ignored (logged, counted in ``jukinet_crl_load_errors``); the last valid CRL stays in force until
its own nextUpdate. Nothing here names a person: serials, dates, reasons, fingerprints only.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import os
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from jukinet import codes
from jukinet.errors import JukinetError
from jukinet.observability import metrics
from jukinet.pki import certs as pki

log = logging.getLogger("jukinet.pki.crl")

#: reasons accepted by ``jukinet pki revoke --reason`` (RFC 5280 CRLReason)
REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "ca_compromise": x509.ReasonFlags.ca_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "certificate_hold": x509.ReasonFlags.certificate_hold,
}
REASON_JA = {
    "unspecified": "理由の指定なし", "key_compromise": "鍵の危殆化", "ca_compromise": "認証局の危殆化",
    "affiliation_changed": "所属の変更", "superseded": "証明書の更新", "cessation_of_operation": "運用の終了",
    "certificate_hold": "一時停止",
}
DEV_CRL_DAYS = 30


class CrlUnavailable(JukinetError):
    code = "CRL_UNAVAILABLE"
    message = "証明書失効リストを確認できないため受け付けられません (時間をおいて再送してください)。"


# --- reading ------------------------------------------------------------------------------------

def load_verified(data: bytes, ca: x509.Certificate) -> x509.CertificateRevocationList:
    """Parse a CRL (PEM or DER) and check that ``ca`` signed it. Raises :class:`pki.PkiError`."""
    try:
        crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
               else x509.load_der_x509_crl(data))
    except ValueError:
        raise pki.PkiError("CRL_INVALID", "証明書失効リストを読み取れません。") from None
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):
        raise pki.PkiError("CRL_SIGNATURE", "証明書失効リストが認証局の署名したものではありません。")
    return crl


def is_expired(crl: x509.CertificateRevocationList, now: Optional[_dt.datetime] = None) -> bool:
    nu = crl.next_update_utc
    return nu is None or (now or pki._now()) > nu


@dataclass
class _Loaded:
    stamp: tuple
    crl: Optional[x509.CertificateRevocationList]
    error: Optional[str] = None
    serials: frozenset = frozenset()    # the revoked serials, for a constant-time check per request


class RevocationChecker:
    """The CRLs in force for one installation, re-read when a file changes (thread-safe)."""

    def __init__(self, config, *, interval: Optional[float] = None):
        self.config = config
        tls = config.tls
        self.paths = [config.resolve(p) for p in [tls.crl_file, *tls.crl_files] if p]
        self.interval = tls.crl_check_interval if interval is None else interval
        self._ca: Optional[x509.Certificate] = None
        self._loaded: dict[Path, _Loaded] = {}
        self._lock = threading.Lock()
        self._checked = 0.0
        self.generation = 0          # bumped whenever the CRLs in force change

    def _ca_cert(self) -> x509.Certificate:
        if self._ca is None:
            self._ca = pki.load_cert(self.config.resolve(self.config.tls.ca_cert))
        return self._ca

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.interval:
            return
        with self._lock:
            self._checked = now
            for p in self.paths:
                try:
                    st = p.stat()
                    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                except OSError:
                    stamp = None
                old = self._loaded.get(p)
                if old is not None and old.stamp == stamp:
                    continue
                if stamp is None:
                    # a CRL file that disappeared: the last valid one stays in force until its nextUpdate
                    self._loaded[p] = _Loaded(None, old.crl if old else None, "CRL_MISSING",
                                              old.serials if old else frozenset())
                    _metric_error("CRL_MISSING")
                    log.error("CRL file missing: %s", p.name)
                    continue
                try:
                    crl = load_verified(p.read_bytes(), self._ca_cert())
                    if old is not None and old.crl is not None and _crl_number(crl) < _crl_number(old.crl):
                        # an older CRL put back (it may lack a later revocation): keep the newer one
                        raise pki.PkiError("CRL_ROLLBACK", "古い証明書失効リストです。")
                except (OSError, JukinetError) as e:
                    code = getattr(e, "code", "CRL_INVALID")
                    self._loaded[p] = _Loaded(stamp, old.crl if old else None, code,
                                              old.serials if old else frozenset())
                    _metric_error(code)
                    log.error("CRL %s refused (%s); the previous one stays in force", p.name, code)
                    continue
                self._loaded[p] = _Loaded(stamp, crl, None, frozenset(rc.serial_number for rc in crl))
                self.generation += 1
                log.info("CRL %s loaded: %d revoked", p.name, len(crl))
            _metric_state(self.crls())

    def watch(self) -> "RevocationChecker":
        """Re-read the files every ``interval`` seconds in a daemon thread, so the metrics and the
        log show a bad or expiring CRL even while no peer connects. :meth:`stop` ends it."""
        self._stop = threading.Event()

        def run():
            while not self._stop.wait(max(self.interval, 0.2)):
                try:
                    self.refresh(force=True)
                except Exception as e:  # noqa: BLE001 - the watcher never dies of one bad read
                    log.error("CRL watch: %s", type(e).__name__)

        threading.Thread(target=run, name="jukinet-crl-watch", daemon=True).start()
        return self

    def stop(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()

    def crls(self) -> list[x509.CertificateRevocationList]:
        return [entry.crl for entry in self._loaded.values() if entry.crl is not None]

    def _in_force(self) -> list[_Loaded]:
        self.refresh()
        now = pki._now()
        out = []
        for p in self.paths:
            entry = self._loaded.get(p)
            if entry is None or entry.crl is None or is_expired(entry.crl, now):
                raise CrlUnavailable()
            out.append(entry)
        if not out:
            raise CrlUnavailable()
        return out

    def usable(self) -> list[x509.CertificateRevocationList]:
        """The CRLs in force, or :class:`CrlUnavailable` when one configured file has no valid,
        unexpired CRL (fail closed)."""
        return [e.crl for e in self._in_force()]

    def fresh(self) -> bool:
        """True while the loaded CRLs were (re)read within ``interval``: :meth:`check` then reads no
        file and can run on the event loop instead of a worker thread (ADR 0063)."""
        return time.monotonic() - self._checked < self.interval

    def check(self, der: bytes) -> None:
        """Raise ``CERT_REVOKED`` if the certificate (DER) is on a CRL in force, ``CRL_UNAVAILABLE``
        if revocation cannot be checked."""
        entries = self._in_force()
        serial = _serial_of(der)
        if any(serial in e.serials for e in entries):
            raise pki.PkiError("CERT_REVOKED", "証明書は失効しています。")

    def pem(self) -> bytes:
        """The CRLs in force (PEM), for an OpenSSL trust store; raises :class:`CrlUnavailable`."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.usable())


@functools.lru_cache(maxsize=4096)
def _serial_of(der: bytes) -> int:
    return x509.load_der_x509_certificate(der).serial_number


def client_context(config, checker: RevocationChecker) -> ssl.SSLContext:
    """The prefecture's client context (``pki.client_context``) with the CRLs in force and
    ``VERIFY_CRL_CHECK_LEAF``: a revoked national certificate fails the handshake. Raises
    :class:`CrlUnavailable` when no valid CRL is in force (nothing is sent then)."""
    tls = config.tls
    ctx = pki.client_context(config.resolve(tls.server_cert), config.resolve(tls.server_key),
                             config.resolve(tls.ca_cert))
    fd, name = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(checker.pem())
        ctx.load_verify_locations(cafile=name)   # OpenSSL reads the CRLs from the PEM file
    finally:
        os.unlink(name)
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


class OutboundContexts:
    """The client context for the national channels, rebuilt when the CRLs in force change."""

    def __init__(self, config, checker: Optional[RevocationChecker] = None):
        self.config = config
        self.checker = checker or RevocationChecker(config)
        self._ctx: Optional[ssl.SSLContext] = None
        self._gen = -1
        self._lock = threading.Lock()

    def current(self) -> ssl.SSLContext:
        """Raises :class:`CrlUnavailable` (nothing may be sent) when no valid CRL is in force."""
        with self._lock:
            self.checker.usable()       # refreshes; an expired or missing CRL refuses here already
            if self._ctx is None or self._gen != self.checker.generation:
                self._ctx = client_context(self.config, self.checker)
                self._gen = self.checker.generation
            return self._ctx


_VERIFY_CODES = {23: "CERT_REVOKED", 3: "CRL_UNAVAILABLE", 12: "CRL_UNAVAILABLE", 11: "CRL_UNAVAILABLE",
                 8: "CRL_UNAVAILABLE"}


def outbound_code(exc: BaseException) -> Optional[str]:
    """``CERT_REVOKED`` / ``CRL_UNAVAILABLE`` if the exception (or one it wraps) is a failed
    certificate check about revocation, else None."""
    seen = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            code = _VERIFY_CODES.get(getattr(e, "verify_code", None))
            if code is None and "revoked" in str(e).lower():
                code = "CERT_REVOKED"
            return code
        if isinstance(e, CrlUnavailable):
            return "CRL_UNAVAILABLE"
        if "certificate revoked" in str(e).lower():
            return "CERT_REVOKED"
        e = e.__cause__ or e.__context__
    return None


# --- metrics ------------------------------------------------------------------------------------

def _metric_state(crls: list) -> None:
    nexts = [c.next_update_utc for c in crls if c.next_update_utc is not None]
    metrics.crl_state(min(nexts).timestamp() if nexts else None, sum(len(c) for c in crls))


def _metric_error(code: str) -> None:
    metrics.crl_load_error(code)


# --- the development CA: revoke, reissue, publish ----------------------------------------------

@dataclass(frozen=True)
class Entry:
    serial: int
    revoked_at: _dt.datetime
    reason: str
    identity: Optional[str] = None    # lg:242012, national, … (from the archived certificate)

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "X")


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


class DevCa:
    """The development CA's revocation work (needs ``[tls] ca_key``; production CAs publish their own)."""

    def __init__(self, config):
        self.config = config
        tls = config.tls
        if not tls.ca_key or not config.resolve(tls.ca_key).exists():
            raise pki.PkiError("CA_KEY_MISSING", "認証局の秘密鍵がないため失効処理はできません (本番では発行元の認証局に依頼します)。")
        self.ca = pki.load_cert(config.resolve(tls.ca_cert))
        self.key = serialization.load_pem_private_key(config.resolve(tls.ca_key).read_bytes(), password=None)
        self.crl_path = config.resolve(tls.crl_file or "pki/crl.pem")
        self.archive = self.crl_path.parent / "revoked"

    def current(self) -> Optional[x509.CertificateRevocationList]:
        if not self.crl_path.exists():
            return None
        return load_verified(self.crl_path.read_bytes(), self.ca)

    # the CA's own record of what it revoked (like OpenSSL's index.txt): ``pki/revoked/index.json``;
    # the CRL is always rebuilt from it, so an overwritten or lost crl.pem loses no revocation
    def _index_path(self) -> Path:
        return self.archive / "index.json"

    def _index(self) -> dict:
        p = self._index_path()
        return json.loads(p.read_text("utf-8")) if p.exists() else {"crl_number": 0, "revoked": {}}

    def entries(self, index: Optional[dict] = None) -> list[Entry]:
        out = [Entry(int(h, 16), _dt.datetime.fromisoformat(e["revoked_at"]), e["reason"], e.get("identity"))
               for h, e in (index or self._index())["revoked"].items()]
        return sorted(out, key=lambda e: e.revoked_at)

    def publish(self, add: Iterable[tuple[int, str, Optional[str]]] = (),
                days: int = DEV_CRL_DAYS) -> x509.CertificateRevocationList:
        """Record ``add`` ((serial, reason, identity)) and write a new CRL of every revocation."""
        index = self._index()
        now = pki._now()
        for serial, reason, ident in add:
            index["revoked"].setdefault(format(serial, "X"), {"revoked_at": now.isoformat(), "reason": reason,
                                                              "identity": ident})
        old = None
        try:
            old = self.current()
        except JukinetError:
            pass
        number = max(index["crl_number"], _crl_number(old) if old is not None else 0) + 1
        index["crl_number"] = number
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.ca.subject)
             .last_update(now - _dt.timedelta(minutes=1)).next_update(now + _dt.timedelta(days=days))
             .add_extension(x509.CRLNumber(number), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.public_key()), critical=False))
        for e in self.entries(index):
            rb = x509.RevokedCertificateBuilder().serial_number(e.serial).revocation_date(e.revoked_at)
            if e.reason != "unspecified":
                rb = rb.add_extension(x509.CRLReason(REASONS[e.reason]), critical=False)
            b = b.add_revoked_certificate(rb.build())
        crl = b.sign(self.key, hashes.SHA256())
        _atomic_write(self._index_path(), json.dumps(index, ensure_ascii=False, indent=1).encode())
        _atomic_write(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
        return crl

    def cert_path(self, target: str) -> Path:
        """The certificate file of ``target``: a 全国地方公共団体コード, ``national`` or ``national-fuhyo``."""
        tls = self.config.tls
        if target == "national":
            return self.config.resolve(tls.national_cert)
        if target == "national-fuhyo":
            return self.config.resolve(tls.national_fuhyo_cert)
        code = codes.validate_lg_code(target)
        return self.config.resolve(pki.cs_paths(tls.cs_dir, code)[0])

    def revoke_serial(self, serial: int, reason: str, cert: Optional[x509.Certificate] = None) -> Entry:
        if reason not in REASONS:
            raise JukinetError("REASON_UNKNOWN", "失効理由が不正です。", field="reason")
        ident = None
        if cert is not None:
            self.archive.mkdir(parents=True, exist_ok=True)
            (self.archive / f"{format(serial, 'X')}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            try:
                ident = pki._identity_from_cert(cert, _usage_of(cert)).label
            except JukinetError:
                ident = None
        self.publish([(serial, reason, ident)])
        return next(e for e in self.entries() if e.serial == serial)

    def revoke(self, target: str, reason: str) -> Entry:
        p = self.cert_path(target)
        if not p.exists():
            raise JukinetError("CERT_NOT_FOUND", "対象の証明書がありません。", field="target")
        cert = pki.load_cert(p)
        return self.revoke_serial(cert.serial_number, reason, cert)

    def reissue(self, target: str, hosts: Iterable[str] = ("127.0.0.1", "localhost")) -> x509.Certificate:
        """A fresh key and certificate for ``target``; the previous certificate is revoked
        (``superseded``) unless it already is."""
        p = self.cert_path(target)
        key_path = p.with_suffix(".key")
        if p.exists():
            old = pki.load_cert(p)
            revoked = {e.serial for e in self.entries()}
            if old.serial_number not in revoked:
                self.revoke_serial(old.serial_number, "superseded", old)
        if target in ("national", "national-fuhyo"):
            ident = pki.PeerIdentity(target)
            cn = "全国サーバ (模擬)" if target == "national" else "附票全国サーバ (模擬)"
            return pki.issue(self.ca, self.key, ident, p, key_path, common_name=cn, server=True, hosts=hosts)
        code = p.stem
        return pki.issue(self.ca, self.key, pki.PeerIdentity("cs", code), p, key_path,
                         common_name=f"市町村CS {code}", client=True)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename: a running server never reads half a CRL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _usage_of(cert: x509.Certificate) -> str:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "client"
    return "client" if ExtendedKeyUsageOID.CLIENT_AUTH in eku else "server"


def ensure_dev_crl(config) -> bool:
    """The development CA's CRL: created empty when missing, re-signed when less than half of its
    validity is left (``jukinet init`` / ``serve``). No-op without the CA key. True if written."""
    try:
        ca = DevCa(config)
    except JukinetError:
        return False
    try:
        crl = ca.current()
    except JukinetError:
        crl = None
    if crl is not None and crl.next_update_utc is not None and \
            crl.next_update_utc - pki._now() > _dt.timedelta(days=DEV_CRL_DAYS / 2):
        return False
    ca.publish()   # from the CA's index: a missing, damaged or expiring CRL is written afresh
    return True
