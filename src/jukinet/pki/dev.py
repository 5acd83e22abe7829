"""The development PKI (``jukinet init``, the demo, the tests): a private CA, every certificate the
configuration names, and the CA's certificate revocation list (ADR 0005, 0030).

Production installations point ``[tls]`` at the prefecture's own certificates and leave ``ca_key``
empty: nothing is created then.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Iterable, Optional

from cryptography.hazmat.primitives import serialization

from jukinet.pki.certs import PeerIdentity, PkiError, create_ca, cs_paths, issue, load_cert, municipality_codes
from jukinet.pki.crl import ensure_dev_crl


def ensure_dev_pki(tls, data_dir: Path, prefecture_code: str, hosts: Iterable[str] = ("127.0.0.1", "localhost"),
                   municipalities: Optional[Iterable[str]] = None) -> bool:
    """Create the development CA and every missing certificate named by ``tls`` (a
    :class:`jukinet.config.TlsConfig`). Existing files are kept. Returns True when something was
    created. The CS certificates are those of ``municipalities``, by default every municipality of
    the prefecture ``prefecture_code`` names (ADR 0035). Production installations set the paths to
    the prefecture's own certificates and leave ``ca_key`` empty: nothing is created then."""
    resolve = lambda p: (Path(data_dir) / p) if not Path(p).is_absolute() else Path(p)  # noqa: E731
    ca_cert_p, ca_key_p = resolve(tls.ca_cert), resolve(tls.ca_key) if tls.ca_key else None
    created = False
    if not ca_cert_p.exists():
        if ca_key_p is None:
            raise PkiError("PKI_MISSING", "認証局の証明書がありません。設定 [tls] を確認してください。")
        create_ca(ca_cert_p, ca_key_p)
        created = True
    if ca_key_p is None or not ca_key_p.exists():
        return created
    ca_cert = load_cert(ca_cert_p)
    ca_key = serialization.load_pem_private_key(ca_key_p.read_bytes(), password=None)
    hosts = list(hosts)
    wanted = [
        (PeerIdentity("prefecture", prefecture_code), tls.server_cert, tls.server_key, "都道府県サーバ", True, True),
        (PeerIdentity("national"), tls.national_cert, tls.national_key, "全国サーバ (模擬)", True, False),
        (PeerIdentity("national-fuhyo"), tls.national_fuhyo_cert, tls.national_fuhyo_key, "附票全国サーバ (模擬)",
         True, False),
    ]
    for code in (municipalities if municipalities is not None else municipality_codes(prefecture_code)):
        c, k = cs_paths(tls.cs_dir, code)  # resolved once, in the loop below
        wanted.append((PeerIdentity("cs", code), c, k, f"市町村CS {code}", False, True))
    for ident, c, k, cn, srv, cli in wanted:
        c, k = resolve(c), resolve(k)
        if c.exists() and k.exists():
            continue
        issue(ca_cert, ca_key, ident, c, k, common_name=cn, server=srv, client=cli, hosts=hosts if srv else ())
        created = True
    created |= ensure_dev_crl(SimpleNamespace(tls=tls, resolve=resolve))
    return created
