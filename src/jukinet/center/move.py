"""Moving a tenant to another database cluster (Q1, issue 14; ADR 0049).

``jukinet center move --prefecture N --db-url postgresql://admin@new-cluster/jukinet_23`` copies the tenant's three registers (D1 住民基本台帳, D2 附票, the admin register:
operators, terminals, catalogue, provision records, operation log) from where they are (SQLite files,
or a PostgreSQL database on another cluster) into a new PostgreSQL database with the tenant's own
three roles (``jukinet.store.provision``), then verifies, **before** anything is switched:

* every table has exactly the rows of the source (counts compared in this process, never logged);
* every operation-log chain of the copy verifies against the tenant's own keys and checkpoints, and
  its head is the source's head (same seq, same hash).

Only then the tenant's ``jukinet.toml`` is switched (the previous one kept as
``jukinet.toml.pre-move-<time>``), a ``center_move`` entry goes into the tenant's own admin chain and
the center log, and ``move-pending.json`` records the move. The source stays as it was: ``center
move --prefecture N --abort`` switches back (the copy stays for the DBA to drop); ``--confirm`` makes
the move final — the kept configuration is renamed ``jukinet.toml.moved-<time>`` and SQLite source
files are moved under ``CENTER/detached/``; a PostgreSQL source database is left to its DBA to drop
(the center holds no administrator login of the old cluster). Nothing is ever deleted here.

**While the center serves** (ADR 0055): the move asks the running center (its control door, loopback
and the control token) to *pause* that tenant — its doors answer 503 ``TENANT_MOVING`` (a CS resends),
its requests in flight finish, its worker, CRL watcher and scheduler stop, its connections close —
copies, verifies and switches as above, then asks it to *resume*: the center opens the tenant again
from its ``jukinet.toml`` (the new database) and serves it; the other tenants are never paused. A
failed copy resumes the tenant on its untouched source. ``--abort`` pauses the same way; ``--confirm``
needs no pause. If the mover dies, the center resumes the tenant itself after the pause's lease
(from whatever ``jukinet.toml`` names: the source, or the verified copy).

Refusals (coded, nothing changed, in the center log): ``TENANT_UNKNOWN``, ``CENTER_PAUSE_FAILED``
(something answers on the center's port but would not pause the tenant), ``CENTER_MOVE_TARGET_NOT_POSTGRES``,
``CENTER_MOVE_SAME_DB``, ``CENTER_DB_SHARED`` (another tenant's database), ``CENTER_MOVE_TARGET_IN_USE``
(the target already has register schemas), ``CENTER_MOVE_TARGET_UNREACHABLE``, ``CENTER_MOVE_PENDING``
(confirm or abort the previous move first), ``CENTER_MOVE_NOT_PENDING``, ``CENTER_MOVE_CHAIN_BROKEN``
(the source's chains do not verify), ``SCHEMA_BEHIND``; a copy that does not verify
(``CENTER_MOVE_VERIFY_FAILED``) removes the schemas it created in the target and switches nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

import httpx
from sqlalchemy import DateTime, MetaData, create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from jukinet import geo
from jukinet.backup.pitr import set_aside_checkpoints
from jukinet.center.registry import Center
from jukinet.center.tenants import CENTER_ACTOR, TENANT_MAX_OVERFLOW, TENANT_POOL_SIZE, _ensure_pg_database, _pg_key
from jukinet.config import CONFIG_NAME, Config
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.security.oplog import CHAINS, OperationLog
from jukinet.store import provision
from jukinet.store.engine import is_sqlite, make_engine, postgres_url, writer
from jukinet.store.upgrade import require_current

PENDING = "move-pending.json"
BATCH = 1000


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _where(url: str) -> str:
    """Where a register lives, for logs: engine, hosts and database name — no role, no password."""
    if is_sqlite(url):
        return "sqlite"
    hosts, db = _pg_key(url)
    return f"postgresql://{','.join(hosts)}/{db}"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "")


def _center_running(center: Center) -> bool:
    try:
        with socket.create_connection((center.host or "127.0.0.1", center.port), timeout=0.5):
            return True
    except OSError:
        return False


def control(center: Center, prefecture: int, action: str, *, lease: float = 600.0, timeout: float = 120.0) -> dict:
    """Ask the running center to ``pause`` or ``resume`` one tenant (its control door: loopback and
    the control token). Raises ``CENTER_PAUSE_FAILED`` / ``CENTER_RESUME_FAILED`` with the center's code."""
    token = center.control_token()
    code = "CENTER_PAUSE_FAILED" if action == "pause" else "CENTER_RESUME_FAILED"
    what = "一時停止" if action == "pause" else "再開"
    if center.host in LOOPBACK_HOSTS:
        url, verify = f"http://127.0.0.1:{center.port}", False
    else:                                  # answered only when that address is this machine's loopback
        url, verify = f"https://{center.host}:{center.port}", str(center.ca_cert)
    try:
        with httpx.Client(base_url=url, verify=verify, timeout=timeout) as http:
            r = http.post(f"/center/api/tenants/{prefecture:02d}/{action}", params={"lease": lease} if action == "pause" else None,
                          headers={"X-Jukinet-Center-Control": token or ""})
    except httpx.HTTPError:
        raise JukinetError(code, f"稼働中の集約センターに{what}を依頼できません (接続できません)。") from None
    if r.status_code != 200:
        try:
            detail = (r.json().get("error") or {}).get("code") or f"HTTP_{r.status_code}"
        except ValueError:
            detail = f"HTTP_{r.status_code}"
        raise JukinetError(code, f"稼働中の集約センターが{what}を受け付けませんでした ({detail})。")
    return r.json()


@contextmanager
def paused(center: Center, prefecture: int, refuse) -> Iterator[bool]:
    """The tenant paused in the running center for the block (nothing when the center is stopped),
    resumed afterwards whatever happened — from the configuration as the block left it."""
    if not _center_running(center):
        yield False
        return
    try:
        control(center, prefecture, "pause")
    except JukinetError as e:
        raise refuse(e.code, e.message) from None
    center.log_event("tenant_move_paused", prefecture=prefecture)
    failed = True
    try:
        yield True
        failed = False
    finally:
        try:
            control(center, prefecture, "resume")
        except JukinetError as e:
            center.log_event("tenant_move_resume_failed", code=e.code, prefecture=prefecture)
            if not failed:          # do not hide the block's own error
                raise


def _row_counts(engine: Engine) -> dict[str, int]:
    md = MetaData()
    md.reflect(engine)
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in md.sorted_tables if t.name != "alembic_version"}


def _heads(data_dir: Path, engines: dict[str, Engine]) -> dict[str, tuple]:
    log = OperationLog(KeyRing(data_dir), data_dir)
    out = {}
    for chain in CHAINS:
        engine = engines[chain]
        if engine.dialect.name == "postgresql":     # one snapshot: a serving center may append meanwhile
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with engine.connect() as conn:
            rep = log.verify(conn, chain)
        out[chain] = (rep.ok, rep.head_seq, rep.head_hash)
    return out


def _fingerprint(data_dir: Path, config: Config) -> str:
    """A digest of the row count of every table and the chain heads: whether anything was written
    to the registers since (the counts themselves are not kept)."""
    engines = {s: make_engine(config.database.url(s)) for s in CHAINS}
    try:
        state = {s: _row_counts(engines[s]) for s in CHAINS}
        state["heads"] = {c: [h[1], h[2]] for c, h in _heads(data_dir, engines).items()}
    finally:
        for e in engines.values():
            e.dispose()
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def _copy_store(src: Engine, dst: Engine) -> None:
    """Every row of every table of one register, in foreign-key order, in one target transaction;
    the source read in one (repeatable-read) transaction."""
    smd, dmd = MetaData(), MetaData()
    smd.reflect(src)
    dmd.reflect(dst)
    tables = [t for t in dmd.sorted_tables if t.name != "alembic_version"]
    missing = [t.name for t in tables if t.name not in smd.tables]
    if missing:
        raise JukinetError("CENTER_MOVE_VERIFY_FAILED", "移行元と移行先のテーブル構成が一致しません。")
    with src.connect() as s, dst.begin() as d:
        if src.dialect.name == "postgresql":
            s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        for t in reversed(tables):          # rows a migration put in (counters, defaults) make way
            d.execute(t.delete())
        for t in tables:
            st = smd.tables[t.name]
            cols = [c.name for c in t.columns if c.name in st.columns]
            utc_cols = [c for c in cols if isinstance(t.columns[c].type, DateTime) and t.columns[c].type.timezone]
            result = s.execution_options(stream_results=True).execute(select(*(st.c[c] for c in cols)))
            while True:
                rows = result.fetchmany(BATCH)
                if not rows:
                    break
                batch = []
                for r in rows:
                    m = dict(zip(cols, r))
                    for c in utc_cols:       # SQLite keeps UTC without its zone
                        v = m[c]
                        if isinstance(v, datetime) and v.tzinfo is None:
                            m[c] = v.replace(tzinfo=timezone.utc)
                    batch.append(m)
                d.execute(t.insert(), batch)
        for t in tables:                    # identity / serial columns continue after the copied rows
            for c in t.primary_key.columns:
                seq = d.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": t.name, "c": c.name}).scalar()
                if seq:
                    d.execute(text(f'SELECT setval(:s, COALESCE((SELECT max("{c.name}") FROM "{t.name}"), 0) + 1, false)'),
                              {"s": seq})


def _target_in_use(admin_url: str) -> bool:
    engine = create_engine(postgres_url(admin_url))
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name IN ('juki', 'fuhyo', 'admin')"
            )).scalar())
    except OperationalError:
        raise JukinetError("CENTER_MOVE_TARGET_UNREACHABLE", "移行先のデータベースに接続できません。") from None
    finally:
        engine.dispose()


def _drop_created(admin_url: str) -> None:
    engine = create_engine(postgres_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for schema in CHAINS:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        engine.dispose()


def move_tenant(center: Center, prefecture: str | int, db_url: str) -> dict:
    """Copy, verify and switch; the source stays until :func:`confirm_move`. Returns the record."""
    pref = geo.prefecture(prefecture)

    def refuse(code: str, message: str) -> JukinetError:
        center.log_event("tenant_move_refused", code=code, prefecture=pref.number)
        return JukinetError(code, message)

    t = center.tenant(pref.number)
    if t is None:
        raise refuse("TENANT_UNKNOWN", f"{pref.name} はこのセンターに収容されていません。")
    data_dir = center.tenant_dir(t)
    if (data_dir / PENDING).exists():
        raise refuse("CENTER_MOVE_PENDING", "前回の移行が確定していません。`--confirm` で確定するか `--abort` で戻してください。")
    if not (db_url or "").startswith("postgresql"):
        raise refuse("CENTER_MOVE_TARGET_NOT_POSTGRES", "移行先は PostgreSQL のデータベース URL を指定してください。")
    config = Config.load(data_dir)
    old = config.database
    if not is_sqlite(old.juki_url) and _pg_key(old.juki_url) == _pg_key(db_url):
        raise refuse("CENTER_MOVE_SAME_DB", "移行先が現在のデータベースと同じです。")
    for other in center.tenants:
        if other.prefecture != pref.number:
            url = Config.load(center.tenant_dir(other)).database.juki_url
            if not is_sqlite(url) and _pg_key(url) == _pg_key(db_url):
                raise refuse("CENTER_DB_SHARED", "このデータベースは他の都道府県が使用しています。")
    try:
        require_current(config, str(data_dir))
    except JukinetError as e:
        raise refuse(e.code, e.message) from None
    try:
        _ensure_pg_database(db_url)
    except OperationalError:
        raise refuse("CENTER_MOVE_TARGET_UNREACHABLE", "移行先のデータベースに接続できません。") from None
    try:
        in_use = _target_in_use(db_url)
    except JukinetError as e:
        raise refuse(e.code, e.message) from None
    if in_use:
        raise refuse("CENTER_MOVE_TARGET_IN_USE", "移行先のデータベースには既に台帳のスキーマがあります。空のデータベースを指定してください。")
    with paused(center, pref.number, refuse):      # a running center: that tenant waits, the others serve
        return _copy_verify_switch(center, pref, data_dir, config, db_url, refuse)


def _copy_verify_switch(center: Center, pref, data_dir: Path, config: Config, db_url: str, refuse) -> dict:
    old = config.database
    src = {s: make_engine(old.url(s)) for s in CHAINS}
    try:
        before_heads = _heads(data_dir, src)
        broken = sorted(c for c, (ok, _s, _h) in before_heads.items() if not ok)
        if broken:
            raise refuse("CENTER_MOVE_CHAIN_BROKEN", f"移行元の操作ログの連鎖に不整合があります ({', '.join(broken)})。"
                         "`jukinet audit verify` で確認してください (何も変更していません)。")

        new = provision.postgres_roles(db_url)
        new.pool_size, new.max_overflow = TENANT_POOL_SIZE, TENANT_MAX_OVERFLOW
        dst: dict[str, Engine] = {}
        try:
            provision.migrate_all(new, data_dir)
            dst = {s: make_engine(new.url(s)) for s in CHAINS}
            for s in CHAINS:
                _copy_store(src[s], dst[s])
            counts_ok = all(_row_counts(src[s]) == _row_counts(dst[s]) for s in CHAINS)
            after_heads = _heads(data_dir, dst)
            if not counts_ok or after_heads != before_heads:
                raise JukinetError("CENTER_MOVE_VERIFY_FAILED",
                                   "移行先の検証 (行数・操作ログの連鎖) に失敗しました。設定は切り替えていません。")
        except BaseException as e:
            for eng in dst.values():
                eng.dispose()
            dst = {}
            _drop_created(db_url)
            if isinstance(e, JukinetError):
                center.log_event("tenant_move_failed", code=e.code, prefecture=pref.number)
            raise
        finally:
            for eng in dst.values():
                eng.dispose()
    finally:
        for eng in src.values():
            eng.dispose()

    stamp = _stamp()
    kept = f"{CONFIG_NAME}.pre-move-{stamp}"
    shutil.copyfile(config.path, data_dir / kept)
    config.database = new
    config.save()
    record = {"at": datetime.now(timezone.utc).isoformat(), "prefecture": pref.number, "from": _where(old.juki_url),
              "to": _where(new.juki_url), "kept_config": kept,
              "sqlite_files": [str(Path(old.url(s).split("///", 1)[1])) for s in CHAINS] if is_sqlite(old.juki_url) else [],
              "heads": {c: h[1] for c, h in before_heads.items()}}
    engine = make_engine(new.admin_url)
    try:
        with writer(engine).begin() as conn:
            OperationLog(KeyRing(data_dir), data_dir).append(
                conn, "admin", actor=CENTER_ACTOR, action="center_move",
                detail={"target": pref.code, "from": record["from"], "to": record["to"], "stage": "switched"})
    finally:
        engine.dispose()
    record["fingerprint"] = _fingerprint(data_dir, config)     # the copy as switched to
    (data_dir / PENDING).write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    center.log_event("tenant_move", prefecture=pref.number, source=record["from"], target=record["to"])
    return record


def _pending(center: Center, prefecture: str | int, event: str) -> tuple:
    pref = geo.prefecture(prefecture)
    t = center.tenant(pref.number)
    if t is None:
        center.log_event(event, code="TENANT_UNKNOWN", prefecture=pref.number)
        raise JukinetError("TENANT_UNKNOWN", f"{pref.name} はこのセンターに収容されていません。")
    data_dir = center.tenant_dir(t)
    if not (data_dir / PENDING).exists():
        center.log_event(event, code="CENTER_MOVE_NOT_PENDING", prefecture=pref.number)
        raise JukinetError("CENTER_MOVE_NOT_PENDING", f"{pref.name} に確定待ちの移行はありません。")
    return pref, data_dir, json.loads((data_dir / PENDING).read_text(encoding="utf-8"))


def _log_tenant(data_dir: Path, config: Config, pref_code: str, stage: str, record: dict) -> None:
    engine = make_engine(config.database.admin_url)
    try:
        with writer(engine).begin() as conn:
            OperationLog(KeyRing(data_dir), data_dir).append(
                conn, "admin", actor=CENTER_ACTOR, action="center_move",
                detail={"target": pref_code, "from": record["from"], "to": record["to"], "stage": stage})
    finally:
        engine.dispose()


def confirm_move(center: Center, prefecture: str | int) -> dict:
    """Make a pending move final: the copy is verified again (its chains), the kept configuration
    renamed, SQLite source files moved under ``CENTER/detached/``."""
    pref, data_dir, record = _pending(center, prefecture, "tenant_move_confirm_refused")
    config = Config.load(data_dir)
    engines = {s: make_engine(config.database.url(s)) for s in CHAINS}
    try:
        if not all(ok for ok, _s, _h in _heads(data_dir, engines).values()):
            center.log_event("tenant_move_confirm_refused", code="CENTER_MOVE_CHAIN_BROKEN", prefecture=pref.number)
            raise JukinetError("CENTER_MOVE_CHAIN_BROKEN", "移行先の操作ログの連鎖が検証できません。確定していません。")
    finally:
        for e in engines.values():
            e.dispose()
    stamp = _stamp()
    moved: Optional[Path] = None
    files = [Path(p) for p in record.get("sqlite_files", [])]
    if files:
        moved = center.dir / "detached" / f"{pref.number:02d}-pre-move-{stamp}"
        moved.mkdir(parents=True, exist_ok=True, mode=0o700)
        for f in files:
            for part in (f, f.with_name(f.name + "-wal"), f.with_name(f.name + "-shm")):
                if part.exists():
                    shutil.move(str(part), str(moved / part.name))
    kept = data_dir / record["kept_config"]
    if kept.exists():
        kept.rename(data_dir / f"{CONFIG_NAME}.moved-{stamp}")
    _log_tenant(data_dir, config, pref.code, "confirmed", record)
    (data_dir / PENDING).rename(data_dir / f"move-{stamp}.json")
    center.log_event("tenant_move_confirm", prefecture=pref.number, source=record["from"], target=record["to"])
    return {**record, "confirmed_at": datetime.now(timezone.utc).isoformat(),
            "detached": str(moved) if moved else None}


def abort_move(center: Center, prefecture: str | int) -> dict:
    """Switch a pending move back to the source (which was not touched); the copy stays for the DBA.
    Refused (``CENTER_MOVE_DIVERGED``) when anything was written to the copy since the move: going
    back would lose it. A running center pauses the tenant meanwhile and serves the source after."""
    pref, data_dir, record = _pending(center, prefecture, "tenant_move_abort_refused")

    def refuse(code: str, message: str) -> JukinetError:
        center.log_event("tenant_move_abort_refused", code=code, prefecture=pref.number)
        return JukinetError(code, message)

    with paused(center, pref.number, refuse):
        return _switch_back(center, pref, data_dir, record)


def _switch_back(center: Center, pref, data_dir: Path, record: dict) -> dict:
    if _fingerprint(data_dir, Config.load(data_dir)) != record["fingerprint"]:
        center.log_event("tenant_move_abort_refused", code="CENTER_MOVE_DIVERGED", prefecture=pref.number)
        raise JukinetError("CENTER_MOVE_DIVERGED", "移行後に移行先で更新が行われています。戻すとその更新が失われるため、"
                           "取り消せません (--confirm で確定してください)。")
    stamp = _stamp()
    shutil.copyfile(data_dir / CONFIG_NAME, data_dir / f"{CONFIG_NAME}.aborted-move-{stamp}")
    shutil.copyfile(data_dir / record["kept_config"], data_dir / CONFIG_NAME)
    (data_dir / record["kept_config"]).unlink()
    # checkpoints taken of the copy (its center_move entry) are not the source's: set aside, kept
    set_aside_checkpoints(data_dir, record["heads"], f"aborted-move-{stamp}")
    _log_tenant(data_dir, Config.load(data_dir), pref.code, "aborted", record)
    (data_dir / PENDING).rename(data_dir / f"move-aborted-{stamp}.json")
    center.log_event("tenant_move_abort", prefecture=pref.number, source=record["from"], target=record["to"])
    return record
