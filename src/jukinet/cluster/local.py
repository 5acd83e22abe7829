"""The local cluster: etcd, three PostgreSQL 15 nodes under Patroni, pgBackRest — in one directory.

Layout of a cluster directory ``DIR`` (owned by the ``postgres`` user, mode 0700)::

    DIR/cluster.json              ports, generated passwords, process ids (mode 0600)
    DIR/etcd/e1/                  etcd data (one member by default, ``etcd_members=3`` for three)
    DIR/pg1/patroni.yml, data/    Patroni node pg1 and its PostgreSQL data directory (pg2, pg3 alike)
    DIR/pgbackrest/pgbackrest.conf, repo/   pgBackRest configuration and repository (stanza ``jukinet``)
    DIR/run/                      the PostgreSQL sockets
    DIR/log/                      one log file per process

Ports, from ``base_port`` B (everything bound to 127.0.0.1, checked free before anything starts):
etcd member i client B+2i and peer B+2i+1 (i = 0, 1, 2), PostgreSQL node i B+10+i, Patroni REST
API node i B+20+i. The default B = 25400 keeps clear of 5432, 8700–8702 and etcd's 2379/2380.

PostgreSQL refuses to run as root: when we are root every process is started as ``postgres``
(``subprocess.Popen(user=…)``, the same as ``runuser -u postgres --`` but the process id we record is
the program's own, so that ``failover`` can ``kill -9`` exactly Patroni and the postmaster).

Patroni runs with ``synchronous_mode`` (one synchronous standby; ``synchronous_commit = on``): a
commit returns only once the synchronous standby has flushed it, so an acknowledged notification
survives the loss of the primary (ADR 0037). ``synchronous_mode_strict`` is on: without any
standby, writes wait rather than degrade to asynchronous. A one-node cluster (``nodes=1``: a restore
drill, development) has neither: it has no standby to wait for, and strict mode would block its
every commit (ADR 0049).

Status comes from Patroni's REST API (``GET /cluster``), never from parsing ``patronictl``.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import httpx
import psycopg

from jukinet.errors import JukinetError

DEFAULT_BASE_PORT = 25400
SCOPE = "jukinet"
STANZA = "jukinet"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"
STATE = "cluster.json"
#: Patroni timing of the local cluster: the leader key lives TTL s; loop_wait + 2·retry_timeout ≤ ttl
TTL, LOOP_WAIT, RETRY_TIMEOUT = 12, 2, 5
PROGRAMS = {"etcd": "etcd", "patroni": "patroni", "pgbackrest": "pgbackrest"}


def missing_programs() -> list[str]:
    """Debian packages whose program is not installed (``etcd-server``, ``patroni``, ``pgbackrest``)."""
    pkgs = {"etcd": "etcd-server", "patroni": "patroni", "pgbackrest": "pgbackrest"}
    out = [pkgs[p] for p in PROGRAMS if shutil.which(p) is None]
    if not (PG_BIN / "postgres").exists():
        out.append("postgresql-15")
    return out


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: Optional[int], needle: str = "") -> bool:
    """The process exists, is not a zombie, and (if given) its command line contains ``needle``."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        if needle:
            return needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        return True
    except (OSError, IndexError):
        return False


@dataclass
class Member:
    name: str
    role: str          # leader, sync_standby, replica
    state: str         # running, streaming, stopped, starting …
    host: str
    port: int
    timeline: Optional[int]
    lag: Optional[int]  # bytes behind the leader (None: the leader, or unknown)


@dataclass
class Status:
    leader: Optional[str]
    members: list[Member] = field(default_factory=list)

    @property
    def sync_standby(self) -> Optional[str]:
        return next((m.name for m in self.members if m.role == "sync_standby"), None)

    def as_dict(self) -> dict:
        return {"leader": self.leader, "sync_standby": self.sync_standby,
                "members": [m.__dict__ for m in self.members]}


class LocalCluster:
    """One local cluster in ``directory``. ``up()`` creates and starts it, ``down()`` stops all."""

    def __init__(self, directory: Path | str, *, base_port: int = DEFAULT_BASE_PORT, nodes: int = 3,
                 etcd_members: int = 1):
        self.dir = Path(directory).resolve()
        self.base_port = base_port
        self.nodes = nodes
        self.etcd_members = etcd_members
        self.state: dict = {}
        self._procs: dict[str, subprocess.Popen] = {}
        if (self.dir / STATE).exists():
            self.state = json.loads((self.dir / STATE).read_text())
            self.base_port = self.state["base_port"]
            self.nodes = self.state["nodes"]
            self.etcd_members = self.state["etcd_members"]

    # ---- layout -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [f"pg{i + 1}" for i in range(self.nodes)]

    def pg_port(self, name: str) -> int:
        return self.base_port + 10 + self.names().index(name)

    def rest_port(self, name: str) -> int:
        return self.base_port + 20 + self.names().index(name)

    def etcd_ports(self, i: int) -> tuple[int, int]:
        return self.base_port + 2 * i, self.base_port + 2 * i + 1

    def ports(self) -> list[int]:
        ps = [p for i in range(self.etcd_members) for p in self.etcd_ports(i)]
        return ps + [self.pg_port(n) for n in self.names()] + [self.rest_port(n) for n in self.names()]

    def data_dir(self, name: str) -> Path:
        return self.dir / name / "data"

    @property
    def pgbackrest_conf(self) -> Path:
        return self.dir / "pgbackrest" / "pgbackrest.conf"

    def admin_url(self, database: str = "postgres") -> str:
        """The superuser's multi-host URL (libpq form): it reaches whichever node is the primary."""
        hosts = ",".join(f"127.0.0.1:{self.pg_port(n)}" for n in self.names())
        pw = self.state.get("superuser_password", "")
        return f"postgresql://postgres:{pw}@{hosts}/{database}?target_session_attrs=read-write&connect_timeout=3"

    def node_url(self, name: str, database: str = "postgres") -> str:
        pw = self.state.get("superuser_password", "")
        return f"postgresql://postgres:{pw}@127.0.0.1:{self.pg_port(name)}/{database}?connect_timeout=3"

    # ---- processes ----------------------------------------------------------------------------

    def _user(self):
        return pwd.getpwnam(RUN_AS) if os.geteuid() == 0 else None

    def _env(self) -> dict:
        return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                "HOME": str(self.dir), "PGPASSFILE": str(self.dir / "pgpass")}

    def _spawn(self, name: str, argv: list[str]) -> int:
        log = open(self.dir / "log" / f"{name}.log", "ab")
        kw: dict = {}
        user = self._user()
        if user is not None:
            kw = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 cwd=self.dir, env=self._env(), start_new_session=True, close_fds=True, **kw)
        finally:
            log.close()
        self._procs[name] = p
        self.state.setdefault("pids", {})[name] = p.pid
        self._save()
        return p.pid

    def _run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        kw: dict = {}
        user = self._user()
        if user is not None:
            kw = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        return subprocess.run(argv, capture_output=True, text=True, cwd=self.dir, env=self._env(),
                              timeout=timeout, **kw)

    def _reap(self) -> None:
        for p in self._procs.values():
            p.poll()

    def pid(self, name: str) -> Optional[int]:
        return (self.state.get("pids") or {}).get(name)

    def postmaster_pid(self, name: str) -> Optional[int]:
        try:
            return int((self.data_dir(name) / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def running(self) -> dict[str, bool]:
        self._reap()
        out = {f"e{i + 1}": _alive(self.pid(f"e{i + 1}"), "etcd") for i in range(self.etcd_members)}
        for n in self.names():
            out[n] = _alive(self.pid(n), "patroni")
            out[f"{n}-postgres"] = _alive(self.postmaster_pid(n), "postgres")
        return out

    def _save(self) -> None:
        path = self.dir / STATE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.chmod(0o600)
        self._chown(tmp)
        tmp.replace(path)

    def _chown(self, path: Path) -> None:
        user = self._user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    # ---- configuration ------------------------------------------------------------------------

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)

    def _pgbackrest(self, name: str) -> str:
        return (f"pgbackrest --config={self.pgbackrest_conf} --stanza={STANZA} "
                f"--pg1-path={self.data_dir(name)}")

    def _patroni_config(self, name: str) -> dict:
        st = self.state
        etcd_hosts = [f"127.0.0.1:{self.etcd_ports(i)[0]}" for i in range(self.etcd_members)]
        rest = f"127.0.0.1:{self.rest_port(name)}"
        pg = f"127.0.0.1:{self.pg_port(name)}"
        return {
            "scope": SCOPE, "namespace": "/jukinet/", "name": name,
            "log": {"level": "INFO"},
            "restapi": {"listen": rest, "connect_address": rest,
                        "authentication": {"username": "patroni", "password": st["rest_password"]}},
            "etcd3": {"hosts": etcd_hosts},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 1048576,
                    # one node has no standby to wait for: strict mode would block every commit (a
                    # single-node restore drill, development); from two nodes on, strict (ADR 0037)
                    "synchronous_mode": self.nodes > 1, "synchronous_mode_strict": self.nodes > 1,
                    "synchronous_node_count": 1,
                    "postgresql": {
                        "use_pg_rewind": True, "use_slots": True,
                        "parameters": {
                            "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                            "max_connections": 100, "max_wal_senders": 10, "max_replication_slots": 10,
                            "wal_keep_size": "128MB", "shared_buffers": "64MB",
                            "synchronous_commit": "on", "archive_mode": "on", "archive_timeout": 60,
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
                "pg_hba": [
                    "local all all peer",
                    "host replication replicator 127.0.0.1/32 scram-sha-256",
                    "host all all 127.0.0.1/32 scram-sha-256",
                ],
            },
            "postgresql": {
                "listen": pg, "connect_address": pg,
                "data_dir": str(self.data_dir(name)), "bin_dir": str(PG_BIN),
                "pgpass": str(self.dir / name / "pgpass"),
                "use_unix_socket": True,
                "authentication": {
                    "superuser": {"username": "postgres", "password": st["superuser_password"]},
                    "replication": {"username": "replicator", "password": st["replication_password"]},
                    "rewind": {"username": "postgres", "password": st["superuser_password"]},
                },
                "parameters": {
                    "unix_socket_directories": str(self.dir / "run"),
                    "archive_command": f"{self._pgbackrest(name)} archive-push %p",
                    "password_encryption": "scram-sha-256",
                },
                "recovery_conf": {"restore_command": f'{self._pgbackrest(name)} archive-get %f "%p"'},
                "create_replica_methods": ["basebackup"],
                "basebackup": [{"checkpoint": "fast"}],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def _pgbackrest_config(self) -> str:
        first = self.names()[0]
        return "\n".join([
            "[global]",
            f"repo1-path={self.dir / 'pgbackrest' / 'repo'}",
            "repo1-retention-full=2",
            # production: repo1-cipher-type=aes-256-cbc and repo1-cipher-pass from the prefecture's
            # backup key (ADR 0037); the local development repository is not encrypted
            f"log-path={self.dir / 'pgbackrest' / 'log'}",
            f"lock-path={self.dir / 'pgbackrest' / 'lock'}",
            f"spool-path={self.dir / 'pgbackrest' / 'spool'}",
            "log-level-console=warn", "log-level-file=info",
            "start-fast=y", "compress-type=lz4", "process-max=1", "archive-timeout=60",
            "",
            f"[{STANZA}]",
            f"pg1-path={self.data_dir(first)}",
            f"pg1-port={self.pg_port(first)}",
            f"pg1-socket-path={self.dir / 'run'}",
            "",
        ])

    def _check_reachable(self) -> None:
        """The ``postgres`` user must be able to reach the directory (every parent searchable by it)."""
        user = self._user()
        if user is None:
            return
        for parent in self.dir.parents:
            try:
                st = parent.stat()
            except OSError:
                continue                        # created below by us (root), then given to postgres
            if st.st_uid != user.pw_uid and not st.st_mode & 0o001:
                raise JukinetError("CLUSTER_DIR_UNREACHABLE",
                                   f"{RUN_AS} ユーザが {parent} を通れません (モード {st.st_mode & 0o777:o})。"
                                   "/tmp などの下にクラスタのディレクトリを作ってください。")

    def _prepare(self, passwords: Optional[dict] = None, bootstrap: Optional[dict] = None) -> None:
        """The directory, the state and the configuration files. ``passwords``: the roles' passwords
        (a restored cluster keeps its source's: they are in the restored catalogue); ``bootstrap``:
        a custom bootstrap method for the first node (the PITR restore)."""
        self._check_reachable()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        for sub in ("log", "run", "pgbackrest/repo", "pgbackrest/log", "pgbackrest/lock", "pgbackrest/spool",
                    *[f"etcd/e{i + 1}" for i in range(self.etcd_members)], *self.names()):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.state = {"base_port": self.base_port, "nodes": self.nodes, "etcd_members": self.etcd_members,
                      "superuser_password": secrets.token_urlsafe(18),
                      "replication_password": secrets.token_urlsafe(18),
                      "rest_password": secrets.token_urlsafe(18), "pids": {}}
        self.state.update(passwords or {})
        if bootstrap:       # pgBackRest restores into an existing, empty data directory
            self.data_dir(self.names()[0]).mkdir(mode=0o700, exist_ok=True)
        for n in self.names():
            conf = self._patroni_config(n)
            if bootstrap and n == self.names()[0]:
                conf["bootstrap"].update(bootstrap)
            # JSON is YAML: Patroni reads it as its configuration file
            self._write(self.dir / n / "patroni.yml", json.dumps(conf, indent=1))
        self._write(self.pgbackrest_conf, self._pgbackrest_config())
        self._save()
        user = self._user()
        if user is not None:
            for root, dirs, files in os.walk(self.dir):
                os.chown(root, user.pw_uid, user.pw_gid)
                for f in files:
                    os.chown(os.path.join(root, f), user.pw_uid, user.pw_gid)
        (self.dir / "etcd").chmod(0o700)
        for i in range(self.etcd_members):
            (self.dir / "etcd" / f"e{i + 1}").chmod(0o700)

    # ---- REST ---------------------------------------------------------------------------------

    def _http(self, timeout: float = 3.0) -> httpx.Client:
        auth = ("patroni", self.state["rest_password"]) if self.state.get("rest_password") else None
        return httpx.Client(timeout=timeout, trust_env=False, auth=auth)

    def _get(self, url: str) -> Optional[httpx.Response]:
        try:
            with self._http() as c:
                return c.get(url)
        except httpx.HTTPError:
            return None

    def status(self) -> Status:
        """Leader, members, roles, lag (bytes) and timeline from the first Patroni that answers."""
        for n in self.names():
            r = self._get(f"http://127.0.0.1:{self.rest_port(n)}/cluster")
            if r is None or r.status_code != 200:
                continue
            d = r.json()
            members = [Member(name=m["name"], role=m.get("role", ""), state=m.get("state", ""),
                              host=m.get("host", ""), port=int(m.get("port") or 0), timeline=m.get("timeline"),
                              lag=m["lag"] if isinstance(m.get("lag"), int) else None)
                       for m in d.get("members", [])]
            leader = next((m.name for m in members if m.role == "leader"), None)
            return Status(leader=leader, members=members)
        raise JukinetError("CLUSTER_UNREACHABLE", "クラスタのどのノードの Patroni REST API にも接続できません。")

    def try_status(self) -> Optional[Status]:
        try:
            return self.status()
        except JukinetError:
            return None

    def healthy(self, status: Optional[Status] = None, *, members: Optional[int] = None) -> bool:
        """A leader that runs, exactly one synchronous standby, every expected member streaming."""
        s = status or self.try_status()
        if s is None or s.leader is None:
            return False
        want = self.nodes if members is None else members
        ok = [m for m in s.members if m.state in ("running", "streaming")]
        tl = next(m.timeline for m in s.members if m.role == "leader")
        return (len(ok) == want == len(s.members) and s.sync_standby is not None
                and all(m.lag is not None and m.timeline == tl for m in s.members if m.role != "leader"))

    def wait(self, predicate, timeout: float, what: str, poll: float = 0.2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = predicate()
            if got:
                return got
            time.sleep(poll)
        raise JukinetError("CLUSTER_TIMEOUT", f"クラスタが時間内に所定の状態になりませんでした ({what})。"
                           f"ログ: {self.dir / 'log'}")

    # ---- up / down ----------------------------------------------------------------------------

    def up(self, timeout: float = 240.0, *, backup: bool = True) -> Status:
        """Start etcd, the Patroni nodes (pg1 first, then the standbys), the stanza and a full backup."""
        missing = missing_programs()
        if missing:
            raise JukinetError("CLUSTER_PACKAGES_MISSING",
                               "必要なパッケージがありません: " + ", ".join(missing) + " (apt-get install)。")
        if self.state and any(self.running().values()):
            raise JukinetError("CLUSTER_ALREADY_RUNNING", "このディレクトリのクラスタは既に起動しています。")
        busy = [p for p in self.ports() if not port_free(p)]
        if busy:
            raise JukinetError("CLUSTER_PORT_BUSY", f"ポートが使用中です: {busy} (--base-port で変更)。")
        t0 = time.monotonic()
        left = lambda: max(5.0, timeout - (time.monotonic() - t0))  # noqa: E731
        self._prepare()
        try:
            self._start_etcd()
            self.wait(self._etcd_healthy, left(), "etcd")
            self.start_node(self.names()[0])
            self.wait(lambda: (s := self.try_status()) and s.leader == self.names()[0]
                      and self._primary_ok(self.names()[0]), left(), "pg1 leader")
            self._check(self._run(["pgbackrest", f"--config={self.pgbackrest_conf}", f"--stanza={STANZA}",
                                   "stanza-create"]), "PGBACKREST_STANZA")
            for n in self.names()[1:]:
                self.start_node(n)
            self.wait(self.healthy, left(), "standbys streaming, one synchronous")
            if backup:
                self.backup("full")
        except BaseException:
            self.down()
            raise
        return self.status()

    def _check(self, run: subprocess.CompletedProcess, code: str) -> subprocess.CompletedProcess:
        if run.returncode != 0:
            tail = (run.stderr or run.stdout or "").strip().splitlines()[-3:]
            raise JukinetError(code, f"pgBackRest が失敗しました (終了コード {run.returncode}): " + " / ".join(tail))
        return run

    def _primary_ok(self, name: str) -> bool:
        r = self._get(f"http://127.0.0.1:{self.rest_port(name)}/primary")
        return r is not None and r.status_code == 200

    def _etcd_healthy(self) -> bool:
        for i in range(self.etcd_members):
            r = self._get(f"http://127.0.0.1:{self.etcd_ports(i)[0]}/health")
            if r is None or r.status_code != 200 or r.json().get("health") != "true":
                return False
        return True

    def _start_etcd(self) -> None:
        self.state["etcd_token"] = f"jukinet-{secrets.token_hex(4)}"
        for i in range(self.etcd_members):
            self.start_etcd_member(i)

    def start_etcd_member(self, i: int) -> int:
        """Start (or restart: its data directory decides, the initial-cluster flags are then ignored)
        etcd member ``e{i+1}``."""
        peers = ",".join(f"e{k + 1}=http://127.0.0.1:{self.etcd_ports(k)[1]}" for k in range(self.etcd_members))
        client, peer = self.etcd_ports(i)
        return self._spawn(f"e{i + 1}", [
            "etcd", "--name", f"e{i + 1}", "--data-dir", str(self.dir / "etcd" / f"e{i + 1}"),
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", peers, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.state.get("etcd_token", "jukinet"), "--enable-v2=false",
            "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1h",
            "--logger", "zap", "--log-level", "warn"])

    def kill_etcd_member(self, i: int) -> None:
        """kill -9 etcd member ``e{i+1}`` (the loss of that DCS host)."""
        pid = self.pid(f"e{i + 1}")
        if _alive(pid, "etcd"):
            os.kill(pid, signal.SIGKILL)
        self._reap()

    def start_node(self, name: str) -> int:
        """Start (or restart) the Patroni of one node; it starts its PostgreSQL and rejoins."""
        return self._spawn(name, ["patroni", str(self.dir / name / "patroni.yml")])

    def create_database(self, name: str) -> None:
        """An empty database on the primary (for ``jukinet init --db-url``); no-op if it exists."""
        if not name.replace("_", "").isalnum() or not name[0].isalpha() or name != name.lower():
            raise JukinetError("DB_NAME_INVALID", "データベース名は英小文字・数字・_ で指定してください。")
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')

    def start_stopped(self) -> list[str]:
        """Start the Patroni of every node that is not running (after a drill); returns their names."""
        self._reap()
        down = [n for n in self.names() if not _alive(self.pid(n), "patroni")]
        for n in down:
            self.start_node(n)
        return down

    def backup(self, kind: str = "full") -> None:
        """A pgBackRest backup (full or diff) taken from the current primary."""
        leader = self.status().leader
        if leader is None:
            raise JukinetError("CLUSTER_NO_LEADER", "プライマリがないためバックアップを取得できません。")
        self._check(self._run(["pgbackrest", f"--config={self.pgbackrest_conf}", f"--stanza={STANZA}",
                               f"--pg1-path={self.data_dir(leader)}", f"--pg1-port={self.pg_port(leader)}",
                               "backup", f"--type={kind}"], timeout=600), "PGBACKREST_BACKUP")

    def archive_now(self, timeout: float = 60.0) -> str:
        """Close the current WAL segment on the primary and wait until it is archived (so that every
        commit so far is in the repository); returns the segment's name."""
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            seg = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]

            def archived():
                last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
                return last is not None and last[8:] >= seg[8:]   # the same or a later segment (any timeline)
            self.wait(archived, timeout, f"WAL {seg} archived")
        return seg

    def backup_info(self) -> dict:
        run = self._run(["pgbackrest", f"--config={self.pgbackrest_conf}", f"--stanza={STANZA}",
                         "info", "--output=json"])
        self._check(run, "PGBACKREST_INFO")
        return json.loads(run.stdout)[0]

    def down(self, timeout: float = 60.0, *, remove: bool = False) -> list[str]:
        """Stop every process of the cluster (Patroni stops its PostgreSQL); return what had to be killed."""
        killed: list[str] = []
        pids = dict(self.state.get("pids") or {})
        nodes = [n for n in self.names() if n in pids]
        for n in nodes:
            if _alive(pids[n], "patroni"):
                os.kill(pids[n], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
                _alive(pids[n], "patroni") or _alive(self.postmaster_pid(n), "postgres") for n in nodes):
            self._reap()
            time.sleep(0.2)
        for n in self.names():
            for pid, needle, label in ((pids.get(n), "patroni", n), (self.postmaster_pid(n), "postgres", f"{n}-postgres")):
                if _alive(pid, needle):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(label)
        etcd = [f"e{i + 1}" for i in range(self.etcd_members)]
        for e in etcd:
            if _alive(pids.get(e), "etcd"):
                os.kill(pids[e], signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pids.get(e), "etcd") for e in etcd):
            self._reap()
            time.sleep(0.1)
        for e in etcd:
            if _alive(pids.get(e), "etcd"):
                os.kill(pids[e], signal.SIGKILL)
                killed.append(e)
        self._wait_gone(pids)
        if remove and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.state and (self.dir / STATE).exists():
            self.state["pids"] = {}
            self._save()
        return killed

    def _wait_gone(self, pids: dict) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self._reap()
            if not any(_alive(p) and _alive(p, needle) for p, needle in
                       [(pids.get(k), "etcd" if k.startswith("e") else "patroni") for k in pids]):
                return
            time.sleep(0.1)

    # ---- point-in-time recovery ---------------------------------------------------------------

    def restore_from(self, source: "LocalCluster", to_time: datetime, *, timeout: float = 300.0,
                     backup: bool = True, now: Optional[datetime] = None) -> dict:
        """Create this cluster (a fresh directory and ports) as ``source`` was at ``to_time``: the first
        node is bootstrapped by ``pgbackrest restore --type=time`` from the source's repository and
        replays the archived WAL up to ``to_time`` (every transaction committed at or before it, none
        after), then is promoted on a new timeline; the other nodes are cloned from it. The source
        is not touched (it may be running, or lost). Refused with a code: a time without a zone, in
        the future, or before the end of the first backup (nothing to restore from)."""
        if to_time.tzinfo is None:
            raise JukinetError("PITR_TIME_NO_ZONE", "復旧時点にはタイムゾーンを付けてください (例: 2026-12-07T21:30:00+09:00)。")
        now = now or datetime.now(timezone.utc)
        if to_time > now:
            raise JukinetError("PITR_TIME_IN_FUTURE", "復旧時点が未来です。現在より前の時刻を指定してください。")
        info = source.backup_info()
        stops = [datetime.fromtimestamp(int(b["timestamp"]["stop"]), timezone.utc) for b in info.get("backup", [])]
        if not stops:
            raise JukinetError("PITR_NO_BACKUP", "復旧の元になるバックアップがありません (pgBackRest のリポジトリが空です)。")
        if to_time < min(stops):
            raise JukinetError("PITR_BEFORE_FIRST_BACKUP",
                               f"復旧時点が最初のバックアップの完了 ({min(stops).isoformat()}) より前です。"
                               "その時点へは復旧できません。")
        if self.state and any(self.running().values()):
            raise JukinetError("CLUSTER_ALREADY_RUNNING", "復旧先のディレクトリのクラスタが起動しています。")
        self._check_reachable()
        busy = [p for p in self.ports() if not port_free(p)]
        if busy:
            raise JukinetError("CLUSTER_PORT_BUSY", f"ポートが使用中です: {busy} (--base-port で変更)。")
        if source.try_status() is not None and source.status().leader is not None:
            source.archive_now()            # what was committed up to now is in the repository
        target = to_time.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        src = (f"pgbackrest --config={source.pgbackrest_conf} --stanza={STANZA} "
               f"--lock-path={self.dir / 'pgbackrest' / 'lock'} --log-path={self.dir / 'pgbackrest' / 'log'}")
        first = self.names()[0]
        method = {
            "command": f"{src} --pg1-path={self.data_dir(first)} --type=time \"--target={target}\" "
                       f"--target-action=promote --target-timeline=latest restore",
            "no_params": True,
            "recovery_conf": {"restore_command": f'{src} --pg1-path={self.data_dir(first)} archive-get %f "%p"',
                              "recovery_target_time": target,
                              "recovery_target_action": "promote", "recovery_target_timeline": "latest"},
        }
        started = datetime.now(timezone.utc)
        t0 = time.monotonic()
        left = lambda: max(5.0, timeout - (time.monotonic() - t0))  # noqa: E731
        self._prepare(passwords={k: source.state[k] for k in ("superuser_password", "replication_password")},
                      bootstrap={"method": "pitr", "pitr": method})
        try:
            self._start_etcd()
            self.wait(self._etcd_healthy, left(), "etcd")
            self.start_node(first)

            def promoted():
                if not _alive(self.pid(first), "patroni"):     # Patroni gives up on a failed bootstrap
                    raise JukinetError("PITR_FAILED", "時点復旧に失敗しました (pgBackRest の復元または WAL の再生)。"
                                       f"ログ: {self.dir / 'log' / (first + '.log')}")
                return (s := self.try_status()) and s.leader == first and self._primary_ok(first)
            self.wait(promoted, left(), "restored node promoted")
            self._check(self._run(["pgbackrest", f"--config={self.pgbackrest_conf}", f"--stanza={STANZA}",
                                   "stanza-create"]), "PGBACKREST_STANZA")
            for n in self.names()[1:]:
                self.start_node(n)
            if self.nodes > 1:
                self.wait(self.healthy, left(), "standbys of the restored cluster streaming")
            if backup:
                self.backup("full")
        except BaseException:
            self.down()
            raise
        record = {"restored_from": str(source.dir), "to_time": to_time.astimezone(timezone.utc).isoformat(),
                  "started_at": started.isoformat(), "finished_at": datetime.now(timezone.utc).isoformat(),
                  "seconds": round(time.monotonic() - t0, 1), "timeline": self.status().members[0].timeline,
                  "backups_in_source": len(stops)}
        self.state["restored"] = record
        self._save()
        return record

    # ---- failover and switchover --------------------------------------------------------------

    def kill_leader(self) -> tuple[str, float]:
        """kill -9 the leader's Patroni and its postmaster (an unplanned loss of the primary host).

        Returns (the killed node, ``time.monotonic()`` of the kill)."""
        s = self.status()
        if s.leader is None:
            raise JukinetError("CLUSTER_NO_LEADER", "プライマリがありません。")
        name = s.leader
        patroni_pid, pm_pid = self.pid(name), self.postmaster_pid(name)
        t = time.monotonic()
        for pid, needle in ((patroni_pid, "patroni"), (pm_pid, "postgres")):
            if _alive(pid, needle):
                os.kill(pid, signal.SIGKILL)
        self._reap()
        return name, t

    def kill_node(self, name: str) -> float:
        """kill -9 one node's Patroni and postmaster (the loss of that host); ``time.monotonic()`` of it."""
        patroni_pid, pm_pid = self.pid(name), self.postmaster_pid(name)
        t = time.monotonic()
        for pid, needle in ((patroni_pid, "patroni"), (pm_pid, "postgres")):
            if _alive(pid, needle):
                os.kill(pid, signal.SIGKILL)
        self._reap()
        return t

    def patroni_urls(self) -> list[str]:
        """The REST API of every node (``[cluster] patroni_urls`` of the installation's configuration)."""
        return [f"http://127.0.0.1:{self.rest_port(n)}" for n in self.names()]

    def wait_new_leader(self, old: str, timeout: float = 90.0) -> str:
        """The name of a leader other than ``old`` that accepts writes (``GET /primary`` 200)."""
        def found():
            s = self.try_status()
            return s.leader if s and s.leader and s.leader != old and self._primary_ok(s.leader) else None
        return self.wait(found, timeout, "new leader")

    def failover(self, timeout: float = 120.0, *, rejoin: bool = True) -> dict:
        """The drill: kill -9 the primary's Patroni and postmaster, wait for the synchronous standby to
        be promoted, restart the killed node (it rejoins as a standby). Times in seconds."""
        before = self.status()
        if not self.healthy(before):
            raise JukinetError("CLUSTER_NOT_HEALTHY", "同期スタンバイのある健全な状態ではないため、切替訓練を行いません。")
        old, t = self.kill_leader()
        new = self.wait_new_leader(old, timeout)
        promoted = time.monotonic() - t
        out = {"killed": old, "expected": before.sync_standby, "new_leader": new, "promoted_after_s": round(promoted, 2)}
        if rejoin:
            self.start_node(old)
            self.wait(self.healthy, timeout, "killed node rejoined")
            out["healthy_after_s"] = round(time.monotonic() - t, 2)
        return out

    def heal(self, timeout: float = 180.0, grace: float = 30.0) -> list[str]:
        """Wait for the cluster to be whole; a standby still on an old timeline after ``grace`` seconds
        is re-cloned from the leader (Patroni REST ``POST /reinitialize``, what ``patronictl reinit``
        does). Seen after repeated kill -9 drills: an asynchronous standby had received WAL of the
        killed primary that the synchronous standby had not flushed yet (WAL in flight, never
        acknowledged to a client), so it is ahead of the new timeline's fork point; PostgreSQL refuses to
        follow ("forked from timeline N … before current recovery point") and Patroni 3.0.2 rewinds only
        a node it (re)starts. Returns the re-cloned nodes."""
        self.start_stopped()
        try:
            self.wait(self.healthy, grace, "healthy")
            return []
        except JukinetError:
            pass
        s = self.status()
        tl = next((m.timeline for m in s.members if m.role == "leader"), None)
        stuck = [m.name for m in s.members if m.role != "leader" and m.timeline != tl]
        for name in stuck:
            with self._http(timeout=30) as c:
                c.post(f"http://127.0.0.1:{self.rest_port(name)}/reinitialize", json={"force": True})
        self.wait(self.healthy, timeout, "healthy after re-cloning " + ", ".join(stuck))
        return stuck

    def switchover(self, candidate: Optional[str] = None, timeout: float = 120.0) -> dict:
        """A planned switchover through Patroni's REST API: the primary stops cleanly, the synchronous
        standby (or ``candidate``) takes over, the old primary rejoins as a standby."""
        s = self.status()
        if not self.healthy(s):
            raise JukinetError("CLUSTER_NOT_HEALTHY", "同期スタンバイのある健全な状態ではないため、切替を行いません。")
        body = {"leader": s.leader}
        if candidate:
            body["candidate"] = candidate
        t = time.monotonic()
        try:
            with self._http(timeout=timeout) as c:
                r = c.post(f"http://127.0.0.1:{self.rest_port(s.leader)}/switchover", json=body)
        except httpx.HTTPError:
            raise JukinetError("CLUSTER_UNREACHABLE", "プライマリの Patroni REST API に接続できません。") from None
        if r.status_code != 200:
            raise JukinetError("CLUSTER_SWITCHOVER_REFUSED",
                               f"Patroni が切替を拒否しました (HTTP {r.status_code}): {r.text[:200]}")
        new = self.wait_new_leader(s.leader, timeout)
        switched = time.monotonic() - t
        self.wait(self.healthy, timeout, "old primary rejoined")
        return {"old_leader": s.leader, "new_leader": new, "switched_after_s": round(switched, 2),
                "healthy_after_s": round(time.monotonic() - t, 2)}
