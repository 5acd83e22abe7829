"""``CENTER_DIR/center.toml``: the center's address, its own server certificate, and its tenants.

    [center]
    host = "127.0.0.1"
    port = 8600
    pg_connections = 40          # at most this many connections of the tenants to one PostgreSQL cluster
    pg_idle_seconds = 10.0       # a pooled connection idle this long is closed (ADR 0055)
    outbox_poll_seconds = 30.0   # an idle tenant's outbox worker looks this seldom (commits wake it)

    [[tenants]]
    prefecture = 24              # 01〜47
    code = "240001"              # 都道府県の団体コード
    name = "三重県"
    data_dir = "tenants/24"      # an ordinary jukinet data directory (its own jukinet.toml)
    added_at = "2026-…Z"

The center owns no personal data: only this file, its server certificate (``pki/``), its log
(``logs/center.jsonl``: events and refusals by code) and, after ``center remove``, the encrypted
exports (``exports/``) and the detached directories (``detached/``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import tomli_w
from cryptography.hazmat.primitives import serialization

from jukinet.errors import JukinetError
from jukinet.pki.certs import PeerIdentity, create_ca, issue, load_cert

CENTER_NAME = "center.toml"
DEFAULT_CENTER_PORT = 8600
log = logging.getLogger("jukinet.center")


@dataclass
class TenantEntry:
    prefecture: int
    code: str
    name: str
    data_dir: str
    added_at: str = ""


@dataclass
class Center:
    dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_CENTER_PORT
    tenants: list[TenantEntry] = field(default_factory=list)
    #: PostgreSQL connections of all tenants together to one cluster (ADR 0055): the budget of
    #: :class:`jukinet.store.connpool.ConnectionGovernor`; keep it under the cluster's
    #: ``max_connections`` minus what else connects (backups, other clients, the reserve)
    pg_connections: int = 40
    #: seconds after which a tenant's idle pooled connection is closed
    pg_idle_seconds: float = 10.0
    #: seconds between looks of an idle tenant's outbox worker (each commit wakes it at once)
    outbox_poll_seconds: float = 30.0

    # ---- the file -------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.dir / CENTER_NAME

    @classmethod
    def load(cls, center_dir: Path | str) -> "Center":
        d = Path(center_dir).absolute()
        p = d / CENTER_NAME
        if not p.is_file():
            raise JukinetError("CENTER_NOT_INITIALISED",
                               "集約センターの設定 (center.toml) がありません。`jukinet center init` で作成してください。")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
            c = raw.get("center", {})
            tenants = [TenantEntry(**t) for t in raw.get("tenants", [])]
            return cls(dir=d, host=str(c.get("host", "127.0.0.1")), port=int(c.get("port", DEFAULT_CENTER_PORT)),
                       tenants=tenants, pg_connections=int(c.get("pg_connections", 40)),
                       pg_idle_seconds=float(c.get("pg_idle_seconds", 10.0)),
                       outbox_poll_seconds=float(c.get("outbox_poll_seconds", 30.0)))
        except (tomllib.TOMLDecodeError, TypeError, ValueError):
            raise JukinetError("CENTER_CONFIG_INVALID", "集約センターの設定 (center.toml) が読めません。") from None

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {"center": {"host": self.host, "port": self.port, "pg_connections": self.pg_connections,
                           "pg_idle_seconds": self.pg_idle_seconds, "outbox_poll_seconds": self.outbox_poll_seconds},
                "tenants": [asdict(t) for t in sorted(self.tenants, key=lambda t: t.prefecture)]}
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            tomli_w.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def tenant(self, prefecture: int) -> Optional[TenantEntry]:
        return next((t for t in self.tenants if t.prefecture == prefecture), None)

    def tenant_dir(self, t: TenantEntry) -> Path:
        p = Path(t.data_dir)
        return p if p.is_absolute() else self.dir / p

    # ---- the control door of a running center (pause / resume a tenant; ADR 0055) -----------------

    @property
    def control_token_path(self) -> Path:
        return self.dir / "pki" / "control.token"

    def control_token(self, create: bool = False) -> Optional[str]:
        """The secret the running center's control door asks for (a file only the center's user
        reads; ``center serve`` creates it)."""
        p = self.control_token_path
        if not p.exists():
            if not create:
                return None
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return p.read_text().strip()

    # ---- the center's own server certificate (the CS and browsers see one server) --------------

    @property
    def ca_cert(self) -> Path:
        return self.dir / "pki" / "center-ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "pki" / "center-server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "pki" / "center-server.key"

    def ensure_pki(self, hosts=("127.0.0.1", "localhost")) -> None:
        """The center's development CA and server certificate (kept when present). Client
        certificates are not issued here: each tenant's CS certificates come from that tenant's
        own CA (ADR 0036)."""
        ca_key = self.dir / "pki" / "center-ca.key"
        if not self.ca_cert.exists():
            create_ca(self.ca_cert, ca_key, name="jukinet 集約センター 開発用認証局")
        if not self.server_cert.exists() and ca_key.exists():
            ca = load_cert(self.ca_cert)
            issue(ca, _load_key(ca_key), PeerIdentity("prefecture", "000000"), self.server_cert, self.server_key,
                  common_name="集約センター 都道府県サーバ", server=True, client=False,
                  hosts=sorted({self.host, *hosts}))

    # ---- the center log -------------------------------------------------------------------------

    def log_event(self, event: str, *, code: Optional[str] = None, prefecture: Optional[int] = None,
                  **detail) -> None:
        """One line in ``logs/center.jsonl`` (and the ``jukinet.center`` logger): an event or a
        refusal by code, the prefecture number when known, never a value of a register."""
        entry = {"at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": event}
        if code:
            entry["code"] = code
        if prefecture is not None:
            entry["prefecture"] = prefecture
        entry.update(detail)
        path = self.dir / "logs" / "center.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        log.info("center %s %s", event, code or "")

    def read_log(self) -> list[dict]:
        path = self.dir / "logs" / "center.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def init_center(center_dir: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_CENTER_PORT) -> Center:
    d = Path(center_dir).absolute()
    if (d / CENTER_NAME).exists():
        raise JukinetError("CENTER_ALREADY_INITIALISED", "この集約センターは初期化済みです (設定は変更していません)。")
    c = Center(dir=d, host=host, port=port)
    c.save()
    c.ensure_pki()
    c.log_event("center_init")
    return c
