"""Tenants of a center: each prefecture an ordinary installation in its own data directory.

``add_tenant`` does what ``jukinet init`` does, for one prefecture under ``CENTER/tenants/NN``:
its own databases (SQLite files, or its own PostgreSQL database with three roles that reach only
their own schema — ``jukinet.store.provision``), its own config with its ``prefecture_code``, its own
keys, hash chains, catalogue and development PKI (a CA per prefecture that issues the CS
certificates of that prefecture's municipalities only). ``remove_tenant`` exports the whole
installation with the encrypted backup of :mod:`jukinet.backup` under the tenant's own public key
and moves the directory aside; it never deletes. ``adopt_tenant`` makes an existing single-prefecture
installation a tenant, in place (ADR 0045): its keys, registers, history and operation-log chains are
verified before and after, and nothing but its ``[server]`` address and pool sizes changes.

Routing: the first two digits of a 全国地方公共団体コード are the prefecture (総務省's rule; the
check digit is verified first), so 名古屋市 231002 — which has no row in Japan Post's data, only
its wards — belongs to 愛知県 (23).

>>> prefecture_of("231002"), prefecture_of("242012"), prefecture_of("231003"), prefecture_of("481234")
(23, 24, None, None)
"""

from __future__ import annotations

import hashlib
import shutil
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sqlalchemy import create_engine, inspect, text

from jukinet import codes, geo, pki, wareki
from jukinet.backup.demo import ensure_demo_key
from jukinet.backup.service import make_backup
from jukinet.bootstrap import Installation, bootstrap
from jukinet.center.refusals import record_refusal
from jukinet.center.registry import Center, TenantEntry
from jukinet.config import Config, ServerConfig
from jukinet.errors import JukinetError
from jukinet.security.checkpoints import genesis as genesis_checkpoints
from jukinet.security.oplog import CHAINS, Actor, verify_all
from jukinet.store import provision
from jukinet.store.engine import postgres_url
from jukinet.store.upgrade import require_current

#: PostgreSQL pool per register of a tenant (ADR 0036): 3 registers × (1 + 2) ≤ 9 connections a tenant
TENANT_POOL_SIZE = 1
TENANT_MAX_OVERFLOW = 2
CENTER_ACTOR = Actor("center", None)


def prefecture_of(code: Optional[str]) -> Optional[int]:
    """The prefecture number (1–47) a 6-digit 全国地方公共団体コード belongs to, or None."""
    if not code or len(code) != 6 or not code.isdigit() or not codes.is_valid_lg_code(code):
        return None
    n = int(code[:2])
    return n if 1 <= n <= 47 else None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pg_key(url: str) -> tuple:
    """(hosts, database) of a PostgreSQL URL; the libpq multi-host form (a Patroni cluster) accepted."""
    u = postgres_url(url)
    hosts = u.query.get("host")
    if hosts:
        hosts = tuple(sorted((hosts,) if isinstance(hosts, str) else hosts))
    else:
        hosts = (f"{u.host or ''}:{u.port or 5432}",)
    return hosts, u.database or ""


def _ensure_pg_database(admin_url: str) -> None:
    """Create the tenant's database on its cluster when it does not exist yet (needs CREATEDB)."""
    url = postgres_url(admin_url)
    name = url.database or ""
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": name}).scalar() is None:
                if not provision._IDENT.match(name):
                    raise JukinetError("DB_NAME_INVALID", "データベース名は英小文字・数字・_ で指定してください。")
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def add_tenant(center: Center, prefecture: str | int, *, db_url: Optional[str] = None,
               backup_public_key: Optional[Path] = None, training_required: bool = True) -> TenantEntry:
    """Create the installation of ``prefecture`` and register it in ``center.toml``."""
    pref = geo.prefecture(prefecture)
    if center.tenant(pref.number) is not None:
        raise JukinetError("CENTER_TENANT_EXISTS", f"{pref.name} は既にこのセンターに収容されています。")
    data_dir = center.dir / "tenants" / f"{pref.number:02d}"
    if data_dir.exists() and any(data_dir.iterdir()):
        raise JukinetError("CENTER_TENANT_DIR_EXISTS",
                           "収容先のディレクトリが空ではありません (以前の切り離しの残りなら detached/ へ移してください)。")
    if db_url:
        mine = _pg_key(db_url)
        for t in center.tenants:
            other = Config.load(center.tenant_dir(t)).database.juki_url
            if not other.startswith("sqlite") and _pg_key(other) == mine:
                raise JukinetError("CENTER_DB_SHARED",
                                   "このデータベースは他の都道府県が使用しています。都道府県ごとに別のデータベースを指定してください。")
        _ensure_pg_database(db_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = provision.database_config(data_dir, db_url)
    provision.migrate_all(db, data_dir)
    if db_url:
        db.pool_size, db.max_overflow = TENANT_POOL_SIZE, TENANT_MAX_OVERFLOW
    config = Config(data_dir=data_dir, database=db, prefecture_code=pref.code, prefecture_name=pref.name,
                    server=ServerConfig(host=center.host, port=center.port))
    config.security.training_required = training_required
    config.save()
    genesis_checkpoints(data_dir)
    pki.ensure_dev_pki(config.tls, data_dir, pref.code, hosts=sorted({center.host, "127.0.0.1", "localhost"}))
    if backup_public_key is not None:
        target = config.resolve(config.backup.public_key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(backup_public_key, target)
    else:
        ensure_demo_key(config)    # development: a key pair in the tenant's directory (ADR 0036)
    with bootstrap(config) as inst:
        inst.ensure_default_catalogue()
        with inst.registers.admin_tx() as conn:
            inst.oplog.append(conn, "admin", actor=CENTER_ACTOR, action="center_attach",
                              detail={"target": pref.code})
    entry = TenantEntry(prefecture=pref.number, code=pref.code, name=pref.name,
                        data_dir=str(data_dir.relative_to(center.dir)), added_at=_now())
    center.tenants.append(entry)
    center.save()
    center.log_event("tenant_add", prefecture=pref.number)
    return entry


def remove_tenant(center: Center, prefecture: str | int, *, confirm: bool = False) -> tuple[Path, Path]:
    """Export the tenant encrypted for its governor and detach it; returns (archive, moved directory).

    Without ``confirm`` nothing happens (``CENTER_CONFIRM_REQUIRED``). The databases are not dropped:
    on PostgreSQL they stay on their cluster, unreachable from the center, until the governor has
    verified the archive (the README's procedure)."""
    pref = geo.prefecture(prefecture)
    t = center.tenant(pref.number)
    if t is None:
        raise JukinetError("TENANT_UNKNOWN", f"{pref.name} はこのセンターに収容されていません。")
    if not confirm:
        message = f"{pref.name} の切り離しには --confirm が必要です (暗号化して書き出し、センターから外します。削除はしません)。"
        # the prefecture whose files the command names is told, in its own chain (ADR 0053)
        record_refusal(center, "CENTER_CONFIRM_REQUIRED", message, event="tenant_remove_refused", door="center_cli",
                       targets=[pref.number], command="center remove")
        raise JukinetError("CENTER_CONFIRM_REQUIRED", message)
    data_dir = center.tenant_dir(t)
    config = Config.load(data_dir)
    with bootstrap(config) as inst:
        with inst.registers.admin_tx() as conn:   # in the tenant's own chain, inside the archive
            inst.oplog.append(conn, "admin", actor=CENTER_ACTOR, action="center_detach",
                              detail={"target": pref.code})
    stamp = wareki.japan_stamp(datetime.now(timezone.utc), "%Y%m%dT%H%M%S") + "JST"   # the time in Japan (ADR 0042)
    archive = center.dir / "exports" / f"{pref.number:02d}-{stamp}.jkb"
    try:
        result = make_backup(config, out=archive)
    except JukinetError as e:
        center.log_event("tenant_remove_failed", code=e.code, prefecture=pref.number)
        raise
    center.tenants = [x for x in center.tenants if x.prefecture != pref.number]
    center.save()
    moved = center.dir / "detached" / f"{pref.number:02d}-{stamp}"
    moved.parent.mkdir(parents=True, exist_ok=True)
    os_replace_dir(data_dir, moved)
    center.log_event("tenant_remove", prefecture=pref.number, archive=result.path.name, bytes=result.bytes)
    return result.path, moved


# ---- adopting an existing single-prefecture installation (ADR 0045) ------------------------------

def _keys_digest(data_dir: Path) -> dict[str, str]:
    """sha256 of every key file of the installation (keys/, the at-rest and operation-log keys)."""
    out = {}
    for sub in ("keys", "pki"):
        root = data_dir / sub
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    out[str(p.relative_to(data_dir))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _snapshot(inst: Installation) -> dict:
    """What adoption must keep: the number of rows of every register table and the chain heads.
    Compared in this process only; never written to the center log (no counts of persons there)."""
    rows = {}
    for store in ("juki", "fuhyo", "admin"):
        engine = inst.registers.engine(store)
        with engine.connect() as conn:
            for table in sorted(inspect(conn).get_table_names()):
                if table != "alembic_version":
                    rows[f"{store}.{table}"] = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
    reports = verify_all(inst.oplog, {c: inst.registers.engine(c) for c in CHAINS})
    return {"rows": rows, "chains": {r.chain: (r.head_seq, r.head_hash, r.ok,
                                               [p.code or p.kind for p in r.problems]) for r in reports}}


def adopt_tenant(center: Center, data_dir: Path | str, prefecture: str | int) -> TenantEntry:
    """Make the single-prefecture installation in ``data_dir`` the tenant ``prefecture`` of ``center``.

    In place: the directory and its databases stay where they are (SQLite URLs are absolute paths;
    a PostgreSQL database stays on its cluster), ``center.toml`` names the directory. Refused, with
    nothing changed, when the directory belongs to another prefecture (``CENTER_ADOPT_WRONG_PREFECTURE``),
    the prefecture is already hosted (``CENTER_TENANT_EXISTS``), its database is another tenant's
    (``CENTER_DB_SHARED``), its schema is behind (``SCHEMA_BEHIND``: `jukinet migrate` first), or an
    operation-log chain does not verify (``CENTER_ADOPT_CHAIN_BROKEN``). Stop ``jukinet serve`` and take
    a backup first (README)."""
    pref = geo.prefecture(prefecture)
    data_dir = Path(data_dir).absolute()

    def refuse(code: str, message: str):
        if code == "CENTER_TENANT_EXISTS" and center.tenant(pref.number) is not None:
            # another directory offered as a hosted prefecture: that prefecture is told (ADR 0053)
            record_refusal(center, code, message, event="tenant_adopt_refused", door="center_cli",
                           targets=[pref.number], command="center adopt")
        else:
            center.log_event("tenant_adopt_refused", code=code, prefecture=pref.number)
        return JukinetError(code, message)

    try:
        config = Config.load(data_dir)
    except JukinetError as e:
        raise refuse(e.code, e.message) from None
    if config.prefecture_code != pref.code:
        actual = geo.prefecture(config.prefecture_code).name if prefecture_of_pref(config.prefecture_code) else "不明"
        raise refuse("CENTER_ADOPT_WRONG_PREFECTURE",
                     f"このデータディレクトリは {actual} のものです。{pref.name} としては収容できません (何も変更していません)。")
    if center.tenant(pref.number) is not None:
        raise refuse("CENTER_TENANT_EXISTS", f"{pref.name} は既にこのセンターに収容されています (何も変更していません)。")
    if any(center.tenant_dir(t).resolve() == data_dir.resolve() for t in center.tenants):
        raise refuse("CENTER_TENANT_EXISTS", "このデータディレクトリは既にこのセンターに収容されています。")
    url = config.database.juki_url
    if not url.startswith("sqlite"):
        mine = _pg_key(url)
        for t in center.tenants:
            other = Config.load(center.tenant_dir(t)).database.juki_url
            if not other.startswith("sqlite") and _pg_key(other) == mine:
                raise refuse("CENTER_DB_SHARED", "このデータベースは他の都道府県が使用しています。")
    try:
        require_current(config, str(data_dir))
    except JukinetError as e:
        raise refuse(e.code, e.message) from None
    keys_before = _keys_digest(data_dir)
    with bootstrap(config) as inst:           # opens the keys: a wrong at-rest key is refused here
        before = _snapshot(inst)
    broken = sorted(c for c, (_s, _h, ok, _p) in before["chains"].items() if not ok)
    if broken:
        raise refuse("CENTER_ADOPT_CHAIN_BROKEN",
                     f"操作ログの連鎖に不整合があります ({', '.join(broken)})。`jukinet audit verify` で確認してください "
                     "(何も変更していません)。")

    # the change: the center's address, small pools; the previous config kept beside it
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    shutil.copyfile(config.path, data_dir / f"jukinet.toml.pre-center-{stamp}")
    config.server = ServerConfig(host=center.host, port=center.port)
    if not url.startswith("sqlite"):
        config.database.pool_size, config.database.max_overflow = TENANT_POOL_SIZE, TENANT_MAX_OVERFLOW
    config.save()
    pki.ensure_dev_pki(config.tls, data_dir, pref.code, hosts=sorted({center.host, "127.0.0.1", "localhost"}))
    with bootstrap(config) as inst:
        with inst.registers.admin_tx() as conn:
            inst.oplog.append(conn, "admin", actor=CENTER_ACTOR, action="center_attach",
                              detail={"target": pref.code, "adopted": True})
        after = _snapshot(inst)
    lost = [k for k, n in before["rows"].items() if after["rows"].get(k, 0) < n]
    chains_ok = all(ok for (_s, _h, ok, _p) in after["chains"].values()) and all(
        after["chains"][c][0] >= before["chains"][c][0] for c in CHAINS)
    if lost or not chains_ok or {k: v for k, v in _keys_digest(data_dir).items() if k in keys_before} != keys_before:
        raise refuse("CENTER_ADOPT_VERIFY_FAILED",
                     "収容後の検証に失敗しました。center.toml は変更していません。バックアップから確認してください。")
    try:
        rel = str(data_dir.relative_to(center.dir))
    except ValueError:
        rel = str(data_dir)
    entry = TenantEntry(prefecture=pref.number, code=pref.code, name=pref.name, data_dir=rel, added_at=_now())
    center.tenants.append(entry)
    center.save()
    center.log_event("tenant_adopt", prefecture=pref.number)
    return entry


def prefecture_of_pref(code: Optional[str]) -> Optional[int]:
    """The number of a prefecture's own 団体コード (``240001`` → 24), or None."""
    try:
        return geo.prefecture(code).number if code else None
    except JukinetError:
        return None


def os_replace_dir(src: Path, dst: Path) -> None:
    shutil.move(str(src), str(dst))


def open_tenant(center: Center, t: TenantEntry, connections=None) -> Installation:
    """One tenant's installation through the composition root (``connections``: the center's
    :class:`jukinet.store.connpool.ConnectionGovernor`, ADR 0055); the caller closes it."""
    inst = bootstrap(center.tenant_dir(t), connections=connections)
    if inst.config.prefecture_code != t.code:
        inst.close()
        raise JukinetError("CENTER_TENANT_MISMATCH",
                           f"{t.name} のデータディレクトリの都道府県コードが center.toml と一致しません。")
    return inst


def open_tenants(center: Center, stack: ExitStack, connections=None) -> dict[int, Installation]:
    """Every tenant's installation through the composition root, closed with ``stack``."""
    out: dict[int, Installation] = {}
    for t in sorted(center.tenants, key=lambda t: t.prefecture):
        out[t.prefecture] = stack.enter_context(open_tenant(center, t, connections))
    return out
