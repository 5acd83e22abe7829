"""The center operations view (運用委託, issue 14): per tenant health, outbox queue lengths and lag,
last backup, certificate expiry, disk use. Read with :mod:`jukinet.ops.status` on each tenant's
installation, without row counts: only queue lengths, sizes and dates — no value of a register and
no count of persons.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from jukinet import pki
from jukinet.bootstrap import Installation
from jukinet.center.registry import Center, TenantEntry
from jukinet.ops import status as S
from jukinet.store.migrate import STORES


@dataclass
class TenantStatus:
    prefecture: int
    code: str
    name: str
    health: str                                   # ok | degraded | unreachable
    outbox_depth: dict = field(default_factory=dict)         # register -> pending + failed
    outbox_oldest_age_seconds: dict = field(default_factory=dict)
    last_backup_at: Optional[str] = None
    cert_expires_at: Optional[str] = None         # the earliest of the tenant's CA, server and CS certificates
    disk_bytes: int = 0                           # data directory + (PostgreSQL) its schemas
    error_code: Optional[str] = None

    def as_dict(self) -> dict:
        return asdict(self)


def _iso(d: Optional[datetime]) -> Optional[str]:
    return d.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if d else None


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _earliest_expiry(inst: Installation) -> Optional[datetime]:
    config = inst.config
    paths = [config.resolve(config.tls.ca_cert), config.resolve(config.tls.server_cert)]
    cs_dir = config.resolve(config.tls.cs_dir)
    if cs_dir.is_dir():
        paths += sorted(cs_dir.glob("*.pem"))
    earliest = None
    for p in paths:
        try:
            na = pki.load_cert(p).not_valid_after_utc
        except (OSError, ValueError):
            continue
        earliest = na if earliest is None or na < earliest else earliest
    return earliest


def tenant_status(entry: TenantEntry, inst: Installation, *, now: Optional[datetime] = None) -> TenantStatus:
    now = now or datetime.now(timezone.utc)
    st = TenantStatus(entry.prefecture, entry.code, entry.name, health="ok")
    disk = _dir_bytes(inst.config.data_dir)
    for reg in STORES:
        db = S.database(inst.registers, reg, counts=False)
        if not db.reachable:
            st.health, st.error_code = "unreachable", db.error_code
        elif not db.up_to_date and st.health == "ok":
            st.health = "degraded"
        if db.size_bytes and not str(inst.registers.engine(reg).url).startswith("sqlite"):
            disk += db.size_bytes
    for reg in ("juki", "fuhyo"):
        ob = S.outbox(inst.registers, reg, now)
        st.outbox_depth[reg] = ob.depth
        st.outbox_oldest_age_seconds[reg] = round(ob.oldest_age_seconds or 0.0, 1) if ob.depth is not None else None
    st.last_backup_at = _iso(S.backup(inst.config).last_success_at)
    st.cert_expires_at = _iso(_earliest_expiry(inst))
    st.disk_bytes = disk
    return st


def center_status(center: Center, tenants: dict[int, Installation]) -> list[TenantStatus]:
    out = []
    for entry in sorted(center.tenants, key=lambda t: t.prefecture):
        inst = tenants.get(entry.prefecture)
        if inst is None:
            out.append(TenantStatus(entry.prefecture, entry.code, entry.name, health="unreachable",
                                    error_code="TENANT_NOT_OPEN"))
            continue
        try:
            out.append(tenant_status(entry, inst))
        except Exception as e:  # noqa: BLE001 - a status never raises; the code only
            out.append(TenantStatus(entry.prefecture, entry.code, entry.name, health="unreachable",
                                    error_code=getattr(e, "code", type(e).__name__)))
    return out
