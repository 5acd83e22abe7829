"""Backup, list, verify, restore, generations and the status file (A7; ADR 0024).

A backup is one file ``jukinet-backup-<JST time>JST-<id>.jkb`` (before ADR 0042: ``<UTC time>Z``) (container ``jukinet.backup/1``) in
``[backup].dir``; the directory is its own catalogue (``list`` reads the clear headers, no key and no
database needed). A restore reads the whole file into a staging directory next to the target,
authenticating every chunk and the manifest; only when all of it is intact are the databases loaded
and the staging directory renamed into place — a refused backup leaves nothing behind.

``DIR/ops/backup-status.json`` is rewritten atomically after every run (read by the metrics):
``{"last_success_at", "last_failure_at", "last_failure_code", "last_bytes", "last_seconds",
"last_file"}`` — the last four describe the last successful backup.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import create_engine, text

import jukinet
from jukinet import wareki
from jukinet.backup import snapshot as snap
from jukinet.backup.container import BackupReader, BackupWriter, check_file, corrupt, read_header
from jukinet.backup.keys import load_public_key, wrap_key
from jukinet.config import CONFIG_NAME, Config, DatabaseConfig
from jukinet.errors import JukinetError
from jukinet.store.engine import is_sqlite
from jukinet.store.migrate import STORES
from jukinet.store.repository import utcnow
from jukinet.keyring import KeyRing
from jukinet.security.oplog import Actor, OperationLog
from jukinet.store.engine import make_engine, postgres_url, writer
from jukinet.store.provision import postgres_roles

log = logging.getLogger("jukinet.ops")

NAME = re.compile(r"^jukinet-backup-(\d{8}T\d{6})(Z|JST)-[0-9a-f]{6}\.jkb$")
Progress = Callable[[str, int, Optional[int]], None]


@dataclass
class BackupResult:
    path: Path
    backup_id: str
    bytes: int
    seconds: float
    chunks: int
    files: list[dict] = field(default_factory=list)


def backup_dir(config: Config) -> Path:
    return config.resolve(config.backup.dir)


def engine_of(db: DatabaseConfig) -> str:
    return "sqlite" if is_sqlite(db.juki_url) else "postgresql"


def _noop(_stage: str, _done: int, _total: Optional[int]) -> None:
    return None


# --- backup -------------------------------------------------------------------------------------

def make_backup(config: Config, *, out: Optional[Path] = None, public_key: Optional[Path] = None,
                progress: Optional[Progress] = None, clock: Callable[[], datetime] = utcnow) -> BackupResult:
    """Write an encrypted, consistent backup of the installation; needs only the public key."""
    progress = progress or _noop
    cfg = config.backup
    pub_path = Path(public_key) if public_key else config.resolve(cfg.public_key)
    if not pub_path.is_file():
        raise JukinetError("BACKUP_NO_PUBLIC_KEY", "バックアップ用の公開鍵がありません。県が `jukinet backup keygen` で作成した"
                           "公開鍵を [backup].public_key の場所に置いてください。", field="public_key")
    pub = load_public_key(pub_path)
    started = time.monotonic()
    now = clock()
    backup_id = f"{wareki.japan_stamp(now, '%Y%m%dT%H%M%S')}JST-{secrets.token_hex(3)}"   # the time in Japan (ADR 0042)
    if out is None:
        out = backup_dir(config) / f"jukinet-backup-{backup_id}.jkb"
    out = Path(out).absolute()
    if out.exists():
        raise JukinetError("BACKUP_OUT_EXISTS", "出力先のファイルが既にあります。", field="out")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    files = snap.data_files(config.data_dir)          # before the databases: checkpoints ⊆ snapshot
    engine = engine_of(config.database)
    data_key = secrets.token_bytes(32)
    meta = {"backup_id": backup_id, "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "engine": engine,
            "prefecture_code": config.prefecture_code, "schema_heads": snap.schema_heads(config),
            "producer": f"jukinet {jukinet.__version__}"}
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            w = BackupWriter(fh, meta, wrap_key(pub, data_key), data_key, chunk_size=cfg.chunk_size,
                             compress_level=cfg.compress_level)
            del data_key
            total = sum(len(c) for _, c, _ in files)
            done = 0
            for path, content, mode in files:
                w.add_bytes(path, "file", content, mode=mode)
                done += len(content)
                progress("files", done, total)
            if engine == "sqlite":
                _sqlite_into(config, w, progress)
            else:
                _postgres_into(config, w, progress)
            manifest = w.close(finished_at=clock().strftime("%Y-%m-%dT%H:%M:%SZ"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return BackupResult(out, backup_id, out.stat().st_size, time.monotonic() - started, manifest["chunks"],
                        manifest["files"])


def _stream_file(w: BackupWriter, src: Path, stage: str, progress: Progress, chunk: int = 1 << 20) -> None:
    total = src.stat().st_size
    done = 0
    with open(src, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            w.write(b)
            done += len(b)
            progress(stage, done, total)


def _sqlite_into(config: Config, w: BackupWriter, progress: Progress) -> None:
    paths = {s: snap.sqlite_path(config.database.url(s)) for s in STORES}
    with snap.private_tmp(config.resolve(config.backup.tmp_dir)) as tmp:
        with snap.pinned_sqlite(paths) as readers:
            for s in STORES:
                snap.copy_sqlite(readers[s], tmp / f"{s}.sqlite3",
                                 lambda d, t, s=s: progress(f"snapshot:{s}", d, t))
        for s in STORES:
            w.begin_file(f"db/{s}.sqlite3", "sqlite", store=s)
            _stream_file(w, tmp / f"{s}.sqlite3", f"encrypt:{s}", progress)
            w.end_file()
            (tmp / f"{s}.sqlite3").unlink()


def _postgres_into(config: Config, w: BackupWriter, progress: Progress) -> None:
    with snap.pg_exported_snapshot(config.database.juki_url) as snapshot:
        for s in STORES:
            w.begin_file(f"db/{s}.dump", "pg_dump", store=s, compress=False)
            snap.pg_dump(config.database.url(s), s, snapshot, w.write, compress_level=config.backup.compress_level,
                         progress=lambda d, s=s: progress(f"dump:{s}", d, None))
            w.end_file()


# --- status file, generations, the daily run ------------------------------------------------------

def status_path(config: Config) -> Path:
    """Where the status file is written: the same setting the operations status and metrics read."""
    return config.resolve(config.observability.backup_status_file)


def read_status(config: Config) -> dict:
    blank = {"last_success_at": None, "last_failure_at": None, "last_failure_code": None, "last_bytes": None,
             "last_seconds": None, "last_file": None}
    try:
        return {**blank, **json.loads(status_path(config).read_text())}
    except (OSError, ValueError):
        return blank


def write_status(config: Config, *, at: datetime, result: Optional[BackupResult] = None,
                 failure_code: Optional[str] = None) -> dict:
    st = read_status(config)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if result is not None:
        st.update(last_success_at=stamp, last_bytes=result.bytes, last_seconds=round(result.seconds, 3),
                  last_file=str(result.path))
    else:
        st.update(last_failure_at=stamp, last_failure_code=failure_code)
    path = status_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(st, ensure_ascii=False, indent=1) + "\n")
    os.replace(tmp, path)
    return st


def _taken_at(p: Path) -> datetime:
    """When a backup was taken, from its name: ``…T083000JST-…`` (JST) or, before ADR 0042, ``…T233000Z-…`` (UTC)."""
    stamp, zone = NAME.match(p.name).groups()
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=wareki.JST if zone == "JST" else timezone.utc)


def prune(directory: Path, keep: int) -> list[Path]:
    """Erase all but the newest ``keep`` backups of ``directory`` (only files named as ours)."""
    ours = sorted((p for p in Path(directory).glob("jukinet-backup-*.jkb") if NAME.match(p.name)), key=_taken_at)
    gone = ours[:-keep] if keep > 0 else []
    gone += [p for p in Path(directory).glob("jukinet-backup-*.jkb.part")   # left by a killed run
             if NAME.match(p.name[:-5]) and p.stat().st_mtime < time.time() - snap.STALE_SECONDS]
    for p in gone:
        p.unlink()
    return gone


def _oplog(config: Config, actor: str, outcome: str, detail: dict, at: datetime) -> None:
    """The run in the admin operation log (after the snapshot: it is in the next backup). A log
    failure does not undo a written backup; it is reported by code."""
    engine = make_engine(config.database.admin_url, synchronous=config.database.sqlite_synchronous)
    try:
        with writer(engine).begin() as conn:
            OperationLog(KeyRing(config.data_dir), config.data_dir).append(
                conn, "admin", actor=Actor(actor, None), action="backup_write", outcome=outcome, detail=detail, now=at)
    except Exception as e:  # noqa: BLE001
        log.error("backup not recorded in the operation log: %s", getattr(e, "code", type(e).__name__))
    finally:
        engine.dispose()


def run_and_record(config: Config, *, out: Optional[Path] = None, public_key: Optional[Path] = None,
                   progress: Optional[Progress] = None, clock: Callable[[], datetime] = utcnow,
                   actor: str = "cli") -> BackupResult:
    """A backup as an operation: the status file is written and the admin operation log records it
    whatever happens; old generations are pruned after a success into the configured directory.
    Raises the failure."""
    try:
        result = make_backup(config, out=out, public_key=public_key, progress=progress, clock=clock)
    except Exception as e:
        code = getattr(e, "code", "BACKUP_WRITE_FAILED" if isinstance(e, OSError) else "BACKUP_FAILED")
        write_status(config, at=clock(), failure_code=code)
        _oplog(config, actor, "failed", {"code": code}, clock())
        if isinstance(e, OSError):
            raise JukinetError("BACKUP_WRITE_FAILED", "バックアップを書き込めませんでした (容量・権限を確認してください)。") from e
        raise
    write_status(config, at=clock(), result=result)
    _oplog(config, actor, "granted", {"backup_id": result.backup_id, "file": result.path.name, "bytes": result.bytes},
           clock())
    if out is None:
        for p in prune(backup_dir(config), config.backup.generations):
            log.info("backup generation removed: %s", p.name)
    return result


def scheduled_backup(config: Config, clock: Callable[[], datetime] = utcnow) -> Optional[BackupResult]:
    """The daily run of ``jukinet serve``: never raises; failures are logged by code."""
    if not config.resolve(config.backup.public_key).is_file():
        log.warning("daily backup skipped: BACKUP_NO_PUBLIC_KEY")
        return None
    try:
        result = run_and_record(config, clock=clock, actor="scheduler")
    except Exception as e:  # noqa: BLE001 - reported by code, tried again tomorrow
        log.error("daily backup failed: %s", getattr(e, "code", type(e).__name__))
        return None
    log.info("daily backup written: %s bytes=%d seconds=%.1f", result.path.name, result.bytes, result.seconds)
    return result


# --- list, verify -------------------------------------------------------------------------------

def list_backups(directory: Path, *, check: bool = False) -> list[dict]:
    """The catalogue of a backup directory from the clear headers (``check``: also the framing and
    trailer hash of every file — no key needed)."""
    rows = []
    for p in sorted(Path(directory).glob("*.jkb")):
        row = {"file": p.name, "bytes": p.stat().st_size}
        try:
            with open(p, "rb") as f:
                if check:
                    header = check_file(f)["header"]
                    row["status"] = "ok"
                else:
                    header = read_header(f)[0]
                    row["status"] = "unchecked"
        except JukinetError as e:
            row.update(status=e.code)
            rows.append(row)
            continue
        row.update(backup_id=header.get("backup_id"), created_at=header.get("created_at"),
                   engine=header.get("engine"), key_id=(header.get("key") or {}).get("key_id"))
        rows.append(row)
    return rows


def _open(path: Path):
    try:
        return open(path, "rb")
    except OSError:
        raise JukinetError("BACKUP_NOT_FOUND", "バックアップファイルが見つかりません。", field="file") from None


def verify_backup(path: Path, provider, progress: Optional[Progress] = None) -> dict:
    """Authenticate every chunk and the manifest; write nothing. Returns header and manifest."""
    progress = progress or _noop
    total = Path(path).stat().st_size if Path(path).exists() else None
    with _open(path) as f:
        reader = BackupReader(f, provider)
        for kind, value in reader.events():
            if kind == "data":
                progress("verify", f.tell(), total)
            elif kind == "manifest":
                progress("verify", f.tell(), total)
                return {"header": reader.header, "manifest": value}
    raise corrupt()  # pragma: no cover - events() ends with the manifest or raises


# --- restore ------------------------------------------------------------------------------------

@dataclass
class RestoreResult:
    data_dir: Path
    engine: str
    files: int
    bytes: int
    seconds: float
    backup_id: str


def _target_empty(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise JukinetError("BACKUP_TARGET_NOT_EMPTY", "復元先のデータディレクトリが空ではありません。新しいディレクトリを指定してください。",
                           field="data_dir")


def _safe(rel: str) -> Path:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise corrupt()
    return p


def _pg_schemas_used(admin_url: str) -> bool:
    engine = create_engine(postgres_url(admin_url))
    try:
        with engine.connect() as c:
            return bool(c.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname IN ('juki', 'fuhyo', 'admin')"))
                        .scalar())
    except Exception:  # noqa: BLE001 - unreachable database: reported by code, URL not echoed
        raise JukinetError("BACKUP_DB_UNREACHABLE", "復元先のデータベースに接続できません。", field="db_url") from None
    finally:
        engine.dispose()


def _pg_drop(admin_url: str) -> None:
    engine = create_engine(postgres_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        for s in STORES:
            c.execute(text(f"DROP SCHEMA IF EXISTS {s} CASCADE"))
    engine.dispose()


def restore(path: Path, provider, target: Path, *, db_url: Optional[str] = None,
            progress: Optional[Progress] = None) -> RestoreResult:
    """Restore a backup into a new, empty data directory (and, for PostgreSQL, the empty database
    of ``db_url``, an administrator URL as for ``init``). Nothing is written unless the whole backup
    is intact."""
    progress = progress or _noop
    started = time.monotonic()
    target = Path(target).absolute()
    _target_empty(target)
    with _open(path) as f:
        total = os.fstat(f.fileno()).st_size
        reader = BackupReader(f, provider)
        engine = reader.header.get("engine")
        if engine == "postgresql" and not (db_url and db_url.startswith("postgresql")):
            raise JukinetError("BACKUP_DB_URL_REQUIRED", "PostgreSQL のバックアップです。--db-url に復元先の空のデータベースを指定してください。",
                               field="db_url")
        if engine == "sqlite" and db_url and not is_sqlite(db_url):
            raise JukinetError("BACKUP_ENGINE_MISMATCH", "SQLite のバックアップは SQLite にのみ復元できます。", field="db_url")
        if engine == "postgresql" and _pg_schemas_used(db_url):
            raise JukinetError("BACKUP_TARGET_NOT_EMPTY", "復元先のデータベースに juki・fuhyo・admin のいずれかのスキーマが既にあります。",
                               field="db_url")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.restoring-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)
        try:
            manifest = _unpack(reader, staging, progress, f, total)
            if engine == "sqlite":
                db = DatabaseConfig(**{f"{s}_url": f"sqlite:///{target / f'{s}.sqlite3'}" for s in STORES})
            else:
                db = postgres_roles(db_url)
                try:
                    for s in STORES:
                        progress(f"load:{s}", 0, None)
                        snap.pg_restore(db.url(s), staging / ".pgdump" / f"{s}.dump")
                except BaseException:
                    _pg_drop(db_url)
                    raise
                shutil.rmtree(staging / ".pgdump")
            restored = Config.load(staging)
            db.sqlite_synchronous = restored.database.sqlite_synchronous
            restored.database = db
            restored.save()
            if target.exists():
                target.rmdir()
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return RestoreResult(target, engine, len(manifest["files"]), sum(x["size"] for x in manifest["files"]),
                         time.monotonic() - started, reader.header.get("backup_id"))


def _unpack(reader: BackupReader, staging: Path, progress: Progress, f, total: int) -> dict:
    out = None
    try:
        for kind, value in reader.events():
            if kind == "file":
                if out is not None:
                    out.close()
                entry = value
                if entry.get("kind") == "sqlite" and entry.get("store") in STORES:
                    dest = staging / f"{entry['store']}.sqlite3"
                elif entry.get("kind") == "pg_dump" and entry.get("store") in STORES:
                    dest = staging / ".pgdump" / f"{entry['store']}.dump"
                elif entry.get("kind") == "file":
                    dest = staging / _safe(str(entry.get("path", "")))
                else:
                    raise corrupt()
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                mode = int(entry.get("mode", 0o600)) & 0o777
                out = os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb", buffering=1 << 20)
            elif kind == "data":
                out.write(value)
                progress("decrypt", f.tell(), total)
            else:
                progress("decrypt", f.tell(), total)
                if out is not None:
                    out.close()
                    out = None
                if not (staging / CONFIG_NAME).is_file():
                    raise corrupt()
                return value
    finally:
        if out is not None:
            out.close()
    raise corrupt()  # pragma: no cover
