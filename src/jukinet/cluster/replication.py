"""The replication state of a Patroni cluster as the operations view shows it (issue 15, ADR 0044).

:func:`read` asks Patroni's REST API — never ``patronictl`` — for:

* ``GET /cluster`` (from the first node that answers): the members, their role (``leader``,
  ``sync_standby``, ``replica``), state, timeline and lag in bytes as Patroni records it in the DCS;
* ``GET /patroni`` of every member (its ``api_url``): whether the member itself answers, the leader's
  WAL position, each standby's received / replayed position and the time of the last transaction it
  replayed. The lag in seconds of a standby is 0 when it has replayed everything the leader wrote,
  otherwise the age of the last transaction it replayed (the definition of postgres_exporter's
  ``pg_replication_lag``).

:func:`pgbackrest_info` summarises ``pgbackrest info --output=json`` (last full / differential
backup, WAL range in the repository).

Both are read-only, never raise (a failure is a code in the result) and carry no personal data:
node names, roles, states, positions, times, codes.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Optional

import httpx

#: states in which a member is up (Patroni's words)
UP_STATES = ("running", "streaming")


@dataclass
class MemberState:
    name: str
    role: str
    state: str
    host: str = ""
    port: int = 0
    timeline: Optional[int] = None
    lag_bytes: Optional[int] = None         # None for the leader, or when Patroni says "unknown"
    lag_seconds: Optional[float] = None
    api_reachable: bool = False             # its own GET /patroni answered
    replayed_at: Optional[datetime] = None  # last transaction replayed (a standby)
    own_role: Optional[str] = None          # what its PostgreSQL is by its own account (master/primary, replica)
    dcs_age_seconds: Optional[float] = None  # since this member's Patroni last reached the DCS (etcd)

    @property
    def up(self) -> bool:
        return self.api_reachable and self.state in UP_STATES


@dataclass
class Problem:
    code: str
    message: str
    member: Optional[str] = None


@dataclass
class Replication:
    reachable: bool = False
    leader: Optional[str] = None
    sync_standby: Optional[str] = None
    timeline: Optional[int] = None
    paused: bool = False
    members: list[MemberState] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    expected_members: int = 0

    @property
    def healthy(self) -> bool:
        return self.reachable and not self.problems

    def as_dict(self) -> dict:
        d = asdict(self)
        for m in d["members"]:
            if m["replayed_at"] is not None:
                m["replayed_at"] = m["replayed_at"].astimezone(timezone.utc).isoformat()
        d["healthy"] = self.healthy
        return d


def _get_json(client: httpx.Client, url: str):
    try:
        r = client.get(url)
    except httpx.HTTPError:
        return None
    if r.status_code not in (200, 503):       # /patroni answers 503 on a node whose PostgreSQL is down
        return None
    try:
        return r.json()
    except ValueError:
        return None


def _ts(v) -> Optional[datetime]:
    if not v:
        return None
    try:
        t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def read(urls: list[str], *, expected_members: int = 0, max_lag_bytes: int = 16 << 20,
         max_lag_seconds: float = 30.0, max_dcs_age_seconds: float = 20.0, timeout: float = 2.0,
         now: Optional[datetime] = None) -> Replication:
    """The replication state from the Patroni REST APIs at ``urls`` (``http://host:8008``)."""
    rep = Replication(expected_members=expected_members)
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        cluster = None
        for base in urls:
            cluster = _get_json(client, base.rstrip("/") + "/cluster")
            if isinstance(cluster, dict) and isinstance(cluster.get("members"), list):
                break
            cluster = None
        if cluster is None:
            rep.problems.append(Problem("CLUSTER_UNREACHABLE",
                                        "どのノードの Patroni REST API にも接続できません。冗長構成の状態が不明です。"))
            return rep
        rep.reachable = True
        rep.paused = bool(cluster.get("pause"))
        own: dict[str, dict] = {}
        for m in cluster["members"]:
            lag = m.get("lag")
            st = MemberState(name=str(m.get("name", "")), role=str(m.get("role", "")), state=str(m.get("state", "")),
                             host=str(m.get("host", "")), port=int(m.get("port") or 0),
                             timeline=m.get("timeline") if isinstance(m.get("timeline"), int) else None,
                             lag_bytes=lag if isinstance(lag, int) else None)
            rep.members.append(st)
            api = m.get("api_url")
            got = _get_json(client, api) if isinstance(api, str) and api.startswith("http") else None
            if isinstance(got, dict):
                st.api_reachable = True
                own[st.name] = got
    now = now or datetime.now(timezone.utc)
    leader = next((m for m in rep.members if m.role in ("leader", "standby_leader")), None)
    rep.leader = leader.name if leader else None
    rep.sync_standby = next((m.name for m in rep.members if m.role == "sync_standby"), None)
    rep.timeline = leader.timeline if leader else None
    leader_lsn = ((own.get(rep.leader) or {}).get("xlog") or {}).get("location") if leader else None
    wall = time.time()
    for m in rep.members:
        mine = own.get(m.name) or {}
        m.own_role = mine.get("role") if isinstance(mine.get("role"), str) else None
        if isinstance(mine.get("dcs_last_seen"), (int, float)) and mine["dcs_last_seen"] > 0:
            m.dcs_age_seconds = round(max(0.0, wall - mine["dcs_last_seen"]), 1)
        if m is leader:
            m.lag_seconds = 0.0 if m.api_reachable else None
            continue
        xlog = (own.get(m.name) or {}).get("xlog") or {}
        m.replayed_at = _ts(xlog.get("replayed_timestamp"))
        replayed = xlog.get("replayed_location")
        if isinstance(replayed, int) and isinstance(leader_lsn, int):
            if replayed >= leader_lsn:
                m.lag_seconds = 0.0
            elif m.replayed_at is not None:
                m.lag_seconds = max(0.0, round((now - m.replayed_at).total_seconds(), 3))
    _judge(rep, max_lag_bytes, max_lag_seconds, max_dcs_age_seconds)
    return rep


def _judge(rep: Replication, max_lag_bytes: int, max_lag_seconds: float, max_dcs_age_seconds: float) -> None:
    p = rep.problems.append
    leader = next((m for m in rep.members if m.name == rep.leader), None)
    if leader is None:
        p(Problem("CLUSTER_NO_LEADER", "プライマリ (リーダー) がいません。書込みはできません (切替中または障害)。"))
    elif not leader.up:
        p(Problem("CLUSTER_LEADER_DOWN", "リーダーの Patroni または PostgreSQL が応答しません。", rep.leader))
    elif leader.own_role not in (None, "master", "primary", "standby_leader"):
        # the DCS still names it, but it has demoted itself (it lost the DCS): nobody accepts writes
        p(Problem("CLUSTER_LEADER_DEMOTED", f"リーダーとして登録された {leader.name} がプライマリとして動作していません "
                  "(DCS との接続を失い降格)。書込みはできません。", rep.leader))
    stale = sorted(m.name for m in rep.members if m.dcs_age_seconds is not None
                   and m.dcs_age_seconds > max_dcs_age_seconds)
    if stale:
        p(Problem("CLUSTER_DCS_UNREACHABLE", f"Patroni が DCS (etcd) に接続できていません ({', '.join(stale)})。"
                  "etcd の過半数が停止している可能性があります。プライマリは降格し、書込みは止まります。"))
    if rep.leader is not None and rep.sync_standby is None:
        p(Problem("CLUSTER_NO_SYNC_STANDBY",
                  "同期スタンバイがいません。確定 (COMMIT) はスタンバイの復帰まで待機します "
                  "(synchronous_mode_strict; ADR 0037)。"))
    if rep.paused:
        p(Problem("CLUSTER_PAUSED", "Patroni が保守モード (pause) です。自動切替は行われません。"))
    for m in rep.members:
        if m.name == rep.leader:
            continue
        if not m.up:
            p(Problem("CLUSTER_MEMBER_DOWN", f"スタンバイ {m.name} が稼働していません (状態: {m.state or '不明'}"
                      f"{'' if m.api_reachable else '・REST API 応答なし'})。", m.name))
        elif rep.timeline is not None and m.timeline is not None and m.timeline != rep.timeline:
            p(Problem("CLUSTER_TIMELINE_BEHIND", f"スタンバイ {m.name} のタイムライン {m.timeline} が"
                      f"リーダーの {rep.timeline} と異なります (再同期中。続く場合は patronictl reinit で"
                      "再作成)。", m.name))
        elif (m.lag_bytes is not None and m.lag_bytes > max_lag_bytes) or \
                (m.lag_seconds is not None and m.lag_seconds > max_lag_seconds):
            p(Problem("CLUSTER_LAG_HIGH", f"スタンバイ {m.name} の遅延が閾値を超えています "
                      f"({m.lag_bytes} バイト・{m.lag_seconds} 秒)。", m.name))
    if rep.expected_members and len(rep.members) < rep.expected_members:
        p(Problem("CLUSTER_MEMBER_MISSING", f"構成ノード {rep.expected_members} 台のうち "
                  f"{len(rep.members)} 台しか登録されていません。"))


# ---- pgBackRest -------------------------------------------------------------------------------------

@dataclass
class BackupRepo:
    present: bool = False
    status_code: Optional[int] = None       # pgBackRest's stanza status (0 = ok)
    status_message: Optional[str] = None
    backups: int = 0
    last_full_at: Optional[datetime] = None
    last_backup_at: Optional[datetime] = None
    last_backup_type: Optional[str] = None
    first_backup_at: Optional[datetime] = None
    wal_min: Optional[str] = None
    wal_max: Optional[str] = None
    error_code: Optional[str] = None


_INFO_CACHE: dict[tuple, tuple[float, BackupRepo]] = {}


def pgbackrest_info(config_path: str, stanza: str, *, timeout: float = 15.0, cache_seconds: float = 30.0,
                    runner=None) -> BackupRepo:
    """``pgbackrest info --output=json`` summarised (cached ``cache_seconds``: a scrape every few
    seconds must not start a process each time)."""
    key = (config_path, stanza)
    hit = _INFO_CACHE.get(key)
    if hit is not None and time.monotonic() - hit[0] < cache_seconds:
        return hit[1]
    out = BackupRepo()
    argv = ["pgbackrest", f"--config={config_path}", f"--stanza={stanza}", "--log-level-console=off",
            "--log-level-file=off", "info", "--output=json"]
    try:
        run = (runner or subprocess.run)(argv, capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0:
            out.error_code = "PGBACKREST_INFO_FAILED"
        else:
            _parse_info(json.loads(run.stdout)[0], out)
    except (OSError, subprocess.SubprocessError):
        out.error_code = "PGBACKREST_UNAVAILABLE"
    except (ValueError, LookupError, TypeError):
        out.error_code = "PGBACKREST_INFO_UNREADABLE"
    _INFO_CACHE[key] = (time.monotonic(), out)
    return out


def _parse_info(d: dict, out: BackupRepo) -> None:
    out.status_code = int(d["status"]["code"])
    out.status_message = str(d["status"].get("message", ""))[:100]
    backups = d.get("backup") or []
    out.present = bool(backups)
    out.backups = len(backups)

    def stop(b):
        return datetime.fromtimestamp(int(b["timestamp"]["stop"]), timezone.utc)
    if backups:
        out.first_backup_at = min(stop(b) for b in backups)
        last = max(backups, key=lambda b: b["timestamp"]["stop"])
        out.last_backup_at, out.last_backup_type = stop(last), str(last.get("type"))
        fulls = [b for b in backups if b.get("type") == "full"]
        out.last_full_at = max((stop(b) for b in fulls), default=None)
    archive = (d.get("archive") or [{}])[-1]
    out.wal_min, out.wal_max = archive.get("min"), archive.get("max")
