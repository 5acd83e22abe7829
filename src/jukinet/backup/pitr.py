"""Point-in-time recovery of an installation, not only of its cluster (Q3, PIA III.7; ADR 0049).

:meth:`jukinet.cluster.local.LocalCluster.restore_from` builds a new cluster as the source was at a
time T (ADR 0044). This module makes the *installation* on it:

1. the restored installation's directory gets the source's files (``jukinet.toml``, ``keys/``,
   ``pki/``, ``audit/checkpoints.jsonl`` — the same set a backup carries), its three register URLs
   pointing at the new cluster's nodes (libpq multi-host, ``target_session_attrs=read-write``) and its
   ``[cluster]`` section at the new cluster's Patroni and pgBackRest;
2. checkpoints of the operation log that lie **after** the restored heads (written after T: the
   restore has rolled them back, deliberately) are set aside into
   ``audit/checkpoints.before-pitr-<time>.jsonl`` — kept, not deleted; a checkpoint that does not
   match the restored chain at its own seq stays (it is a finding, not a rollback);
3. every operation-log chain of the restored registers is verified (entries, anchors, the kept
   checkpoints); a chain that does not verify refuses the restore (``PITR_CHAIN_BROKEN``) — the new
   cluster is left for inspection, the installation is not opened;
4. the restore is written into the restored installation's own ``admin`` chain (``pitr_restore``:
   who, when, target time, source cluster and installation, timeline, checkpoints set aside), and the
   new heads are checkpointed.

The source is never touched. Refused before anything is created: an installation on SQLite
(``PITR_NOT_POSTGRES``: its recovery is the encrypted backup, ADR 0024) and a restored-installation
directory that is not empty (``PITR_TARGET_IN_USE``).
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sqlalchemy import select

from jukinet.backup.snapshot import data_files
from jukinet.cluster.local import LocalCluster
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.security.checkpoints import CheckpointFile
from jukinet.security.oplog import CHAINS, CHECKPOINTS, Actor, OperationLog, verify_all
from jukinet.store.engine import is_sqlite, make_engine, postgres_url, writer
from jukinet.store.tables_security import OPLOG


def cluster_url(url: str, hosts: list[str]) -> str:
    """The register URL ``url`` (its role, password, database) on the nodes ``hosts`` (``h:p``), as a
    multi-host URL that connects to the primary."""
    u = postgres_url(url)
    query = {k: v for k, v in u.query.items() if k not in ("host", "port")}
    query["host"] = tuple(hosts)
    query["target_session_attrs"] = "read-write"
    return u.set(host=None, port=None, query=query).render_as_string(hide_password=False)


def set_aside_checkpoints(data_dir: Path, heads: dict[str, int], label: str) -> dict[str, int]:
    """Move the checkpoints beyond ``heads`` (chain → seq the registers now end at) out of the
    checkpoint file into ``audit/checkpoints.<label>.jsonl``; returns how many per chain. Used after a
    deliberate rollback (a PITR, an aborted tenant move), never to hide a finding: a checkpoint at or
    below the head stays, so a changed entry is still reported."""
    path = Path(data_dir) / CHECKPOINTS
    if not path.exists():
        return {}
    keep, aside, counts = [], [], {}
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    for line, cp in zip(lines, CheckpointFile(KeyRing(data_dir), data_dir).read()):
        if cp.valid and cp.chain in heads and cp.seq > heads[cp.chain]:
            aside.append(line)
            counts[cp.chain] = counts.get(cp.chain, 0) + 1
        else:
            keep.append(line)
    if aside:
        (path.parent / f"checkpoints.{label}.jsonl").write_text("\n".join(aside) + "\n", encoding="utf-8")
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(x + "\n" for x in keep), encoding="utf-8")
        os.replace(tmp, path)
    return counts


def _restored_heads(engines: dict) -> dict[str, int]:
    heads = {}
    for chain in CHAINS:
        _log, head = OPLOG[chain]
        with engines[chain].connect() as conn:
            heads[chain] = int(conn.execute(select(head.c.seq).where(head.c.chain == chain)).scalar() or 0)
    return heads


def restore_installation(source: LocalCluster, target: LocalCluster, to_time: datetime, *, data_dir: Path,
                         restored_dir: Path, operator_id: str = "cli", timeout: float = 600.0,
                         backup: bool = True) -> dict:
    """Restore the cluster ``source`` into ``target`` as it was at ``to_time`` and make the
    installation of ``data_dir`` on it in ``restored_dir``; returns the record written to its log."""
    config = Config.load(data_dir)
    if is_sqlite(config.database.juki_url):
        raise JukinetError("PITR_NOT_POSTGRES", "SQLite の設置は時点復旧できません。暗号化バックアップから復元してください"
                                               " (jukinet restore)。")
    restored_dir = Path(restored_dir).absolute()
    if restored_dir.exists() and any(restored_dir.iterdir()):
        raise JukinetError("PITR_TARGET_IN_USE", "復旧後の設置ディレクトリが空ではありません。", field="restored_data_dir")
    record = target.restore_from(source, to_time, timeout=timeout, backup=backup)

    restored_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for rel, content, mode in data_files(config.data_dir):
        p = restored_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        p.write_bytes(content)
        p.chmod(mode)
    new = Config.load(restored_dir)
    hosts = [f"127.0.0.1:{target.pg_port(n)}" for n in target.names()]
    for store in CHAINS:
        setattr(new.database, f"{store}_url", cluster_url(new.database.url(store), hosts))
    new.cluster.patroni_urls = target.patroni_urls()
    new.cluster.pgbackrest_config = str(target.pgbackrest_conf)
    new.save()

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    engines = {s: make_engine(new.database.url(s)) for s in CHAINS}
    try:
        set_aside = set_aside_checkpoints(new.data_dir, _restored_heads(engines), f"before-pitr-{stamp}")
        log = OperationLog(KeyRing(new.data_dir), new.data_dir)
        broken = [r.chain for r in verify_all(log, engines) if not r.ok]
        if broken:
            raise JukinetError("PITR_CHAIN_BROKEN", "復旧したデータベースの操作ログのハッシュ連鎖が検証できません: "
                               + ", ".join(broken) + "。復旧先のクラスタは調査のため残しています。")
        detail = {"to_time": record["to_time"], "source_cluster": record["restored_from"],
                  "source_data_dir": str(config.data_dir), "cluster_dir": str(target.dir),
                  "timeline": record["timeline"], "started_at": record["started_at"],
                  "finished_at": record["finished_at"], "os_user": _os_user(),
                  "checkpoints_set_aside": set_aside}
        with writer(engines["admin"]).begin() as conn:
            log.append(conn, "admin", actor=Actor(operator_id, None), action="pitr_restore", detail=detail)
        reports = verify_all(log, engines, checkpoint=True)
        if not all(r.ok for r in reports):
            raise JukinetError("PITR_CHAIN_BROKEN", "時点復旧の記録後に操作ログが検証できません。")
        heads = {r.chain: r.head_seq for r in reports}
    finally:
        for e in engines.values():
            e.dispose()
    out = {**record, "data_dir": str(restored_dir), "operator_id": operator_id, "heads": heads,
           "checkpoints_set_aside": set_aside}
    (restored_dir / "audit" / "pitr.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    return out


def _os_user() -> Optional[str]:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid
        return None
