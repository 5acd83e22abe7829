"""PKI of the 住基ネット channels: the CA, the certificates, TLS contexts and peer identities (ADR 0005).

Every channel of 事務1 is HTTPS with mutual authentication (U1, U6): the 市町村CS → 都道府県サーバ
channel and the 都道府県サーバ → 全国サーバ / 附票全国サーバ channel. Each party holds a key and a
certificate issued by a CA both sides trust. Production installations point the config
(``[tls]`` in ``jukinet.toml``) at the certificates the prefecture was issued; ``jukinet init``
creates a private development CA and every certificate the demo and the simulators need.

Identity is carried in the certificate, never in the payload. Each certificate carries exactly
one ``uniformResourceIdentifier`` subjectAltName of the form

- ``urn:jukinet:lg:242012`` — the 市町村CS of the municipality with that 全国地方公共団体コード,
- ``urn:jukinet:role:prefecture:240001`` — a prefectural server (都道府県サーバ / 附票都道府県サーバ),
- ``urn:jukinet:role:national`` / ``urn:jukinet:role:national-fuhyo`` — J-LIS's national servers,

and the Subject repeats the code in ``serialNumber`` for people reading the certificate.

>>> parse_identity_uri("urn:jukinet:lg:242012")
PeerIdentity(kind='cs', code='242012')
>>> parse_identity_uri("urn:jukinet:role:prefecture:240001")
PeerIdentity(kind='prefecture', code='240001')
>>> parse_identity_uri("urn:jukinet:lg:242013") is None      # check digit wrong
True
>>> PeerIdentity('cs', '242012').label
'lg:242012'
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jukinet import codes
from jukinet.errors import JukinetError
from jukinet import geo

__all__ = [
    "PeerIdentity", "PkiError", "parse_identity_uri", "identity_of", "fingerprint", "municipality_codes",
    "create_ca", "issue", "server_context", "client_context", "load_cert", "cs_paths",
]

URN_LG = "urn:jukinet:lg:"
URN_ROLE = "urn:jukinet:role:"
ROLES = ("prefecture", "national", "national-fuhyo")


class PkiError(JukinetError):
    """A certificate that does not identify a peer we accept (the message names no personal data)."""


@dataclass(frozen=True)
class PeerIdentity:
    """Who is at the other end of a verified channel: ``kind`` (cs | prefecture | national |
    national-fuhyo) and, for a CS or a prefecture, its 全国地方公共団体コード."""

    kind: str
    code: Optional[str] = None

    @property
    def label(self) -> str:
        if self.kind == "cs":
            return f"lg:{self.code}"
        return self.kind if self.code is None else f"{self.kind}:{self.code}"

    @property
    def uri(self) -> str:
        if self.kind == "cs":
            return URN_LG + self.code
        return URN_ROLE + self.kind + (f":{self.code}" if self.code else "")


def parse_identity_uri(uri: str) -> Optional[PeerIdentity]:
    """The identity a SAN URI names, or None when it is not one of ours."""
    if uri.startswith(URN_LG):
        code = uri[len(URN_LG):]
        return PeerIdentity("cs", code) if codes.is_valid_lg_code(code) and len(code) == 6 else None
    if uri.startswith(URN_ROLE):
        parts = uri[len(URN_ROLE):].split(":")
        if parts[0] == "prefecture" and len(parts) == 2 and codes.is_valid_lg_code(parts[1]):
            return PeerIdentity("prefecture", parts[1])
        if parts[0] in ("national", "national-fuhyo") and len(parts) == 1:
            return PeerIdentity(parts[0])
    return None


def municipality_codes(prefecture_code: str = geo.mie.PREFECTURE_CODE) -> list[str]:
    """The municipalities of a prefecture (``jukinet.geo``; 三重県's 29 by default), each code checked."""
    return [codes.validate_lg_code(m.code) for m in geo.municipalities(prefecture_code)]


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, hex (what the communication log records about a peer cert)."""
    return hashlib.sha256(der).hexdigest()


def load_cert(path: Path | str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


@lru_cache(maxsize=4096)
def _identity_cached(der: bytes, ca_der: bytes, required_eku: str):
    """(identity, not_before, not_after) of a certificate our CA signed; the validity period is
    checked by the caller on every use (the cache must not outlive an expiry)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        ca = x509.load_der_x509_certificate(ca_der)
        cert.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - any parse/signature failure is the same refusal
        raise PkiError("CERT_UNTRUSTED", "クライアント証明書が信頼された認証局の発行したものではありません。") from None
    return _identity_from_cert(cert, required_eku), cert.not_valid_before_utc, cert.not_valid_after_utc


def _identity_from_cert(cert: x509.Certificate, required_eku: str) -> PeerIdentity:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = []
    wanted = ExtendedKeyUsageOID.CLIENT_AUTH if required_eku == "client" else ExtendedKeyUsageOID.SERVER_AUTH
    if wanted not in eku:
        raise PkiError("CERT_USAGE", "証明書の用途が通信に適合しません。")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    ids = [i for i in (parse_identity_uri(u) for u in uris) if i is not None]
    if len(ids) != 1:
        raise PkiError("CERT_IDENTITY", "証明書から通信相手を特定できません。")
    return ids[0]


def identity_of(der: bytes, ca: x509.Certificate, *, usage: str = "client") -> PeerIdentity:
    """The identity in a peer certificate (DER), after checking that ``ca`` issued it, that it
    is valid now and that it is meant for ``usage`` (client | server). Raises :class:`PkiError`.

    The TLS layer has already verified the chain; this is the application's own check, so that a
    misconfigured TLS terminator cannot let a foreign certificate through.
    """
    ident, not_before, not_after = _identity_cached(der, ca.public_bytes(serialization.Encoding.DER), usage)
    if not (not_before <= _now() <= not_after):
        raise PkiError("CERT_EXPIRED", "証明書の有効期間外です。")
    return ident


# --- issuing ------------------------------------------------------------------------------------

def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def create_ca(cert_path: Path, key_path: Path, *, name: str = "jukinet 開発用認証局 (三重県)",
              days: int = 3650) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jukinet"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(Path(key_path), key)
    _write_cert(Path(cert_path), cert)
    return cert, key


def issue(ca_cert: x509.Certificate, ca_key, identity: PeerIdentity, cert_path: Path, key_path: Path, *,
          common_name: str, server: bool = False, client: bool = False, hosts: Iterable[str] = (),
          not_before: Optional[_dt.datetime] = None, not_after: Optional[_dt.datetime] = None,
          days: int = 825) -> x509.Certificate:
    """Issue a certificate for ``identity`` (its URI in the SAN) signed by the CA."""
    key = _key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jukinet"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.kind),
             x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if identity.code:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, identity.code))
    now = _now()
    nb = not_before or now - _dt.timedelta(minutes=5)
    na = not_after or now + _dt.timedelta(days=days)
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    for h in hosts:
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            san.append(x509.DNSName(h))
    eku = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    cert = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(nb).not_valid_after(na)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(Path(key_path), key)
    _write_cert(Path(cert_path), cert)
    return cert


def cs_paths(cs_dir: Path, code: str) -> tuple[Path, Path]:
    """Certificate and key of one municipality's CS in the development PKI."""
    return Path(cs_dir) / f"{code}.pem", Path(cs_dir) / f"{code}.key"


# --- TLS contexts -------------------------------------------------------------------------------

def server_context(cert: Path | str, key: Path | str, ca: Path | str, *, client_cert: str = "optional",
                   sslobject_class: Optional[type] = None) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+). ``client_cert``: "required" (national servers: only the
    prefecture may connect), "optional" (the prefectural server: the operator UI shares the port;
    CS endpoints refuse requests without a verified certificate), or "none"."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(str(ca))
    ctx.verify_mode = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
                       "none": ssl.CERT_NONE}[client_cert]
    ctx.options |= ssl.OP_NO_COMPRESSION
    if sslobject_class is not None:
        ctx.sslobject_class = sslobject_class
    return ctx


def client_context(cert: Path | str, key: Path | str, ca: Path | str) -> ssl.SSLContext:
    """A TLS client context presenting ``cert`` and trusting only ``ca`` (hostname checked)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx
