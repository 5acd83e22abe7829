"""Configuration: everything but ``--data-dir`` lives in ``DIR/jukinet.toml``, written by ``init``.

The file holds database URLs and ports, never personal data. It is written with mode 0600
because a PostgreSQL URL may carry role passwords.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomli_w

from jukinet.errors import JukinetError

CONFIG_NAME = "jukinet.toml"
DEFAULT_DATA_DIR = Path("./jukinet-data")
DEFAULT_PORT_BASE = 8700


class ConfigError(JukinetError):
    pass


@dataclass
class DatabaseConfig:
    juki_url: str
    fuhyo_url: str
    admin_url: str
    #: SQLite synchronous mode: FULL keeps every acknowledged commit through a power loss (ADR 0002)
    sqlite_synchronous: str = "FULL"
    #: PostgreSQL connection pool per register (SQLAlchemy's defaults: 5 kept + 10 on demand). A
    #: consolidated center writes small pools into each tenant (ADR 0036): connections are opened
    #: lazily, so an idle tenant holds at most what it once needed, up to ``pool_size``.
    pool_size: int = 5
    max_overflow: int = 10

    def url(self, store: str) -> str:
        return {"juki": self.juki_url, "fuhyo": self.fuhyo_url, "admin": self.admin_url}[store]


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT_BASE


@dataclass
class NationalConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT_BASE + 1
    fuhyo_port: int = DEFAULT_PORT_BASE + 2


@dataclass
class TlsConfig:
    """Certificates of the mutually authenticated channels (ADR 0005). Relative paths are under the
    data directory. ``jukinet init`` creates a development CA and these files; production points
    them at the prefecture's own certificates and leaves ``ca_key`` empty (nothing is generated)."""

    enabled: bool = True
    ca_cert: str = "pki/ca.pem"
    ca_key: str = "pki/ca.key"
    server_cert: str = "pki/prefecture.pem"
    server_key: str = "pki/prefecture.key"
    national_cert: str = "pki/national.pem"
    national_key: str = "pki/national.key"
    national_fuhyo_cert: str = "pki/national-fuhyo.pem"
    national_fuhyo_key: str = "pki/national-fuhyo.key"
    #: the municipal CS certificates (``{code}.pem`` / ``{code}.key``) used by ``jukinet sim cs``
    cs_dir: str = "pki/cs"
    #: certificate revocation lists signed by the CA (ADR 0030): the dev CA writes ``crl_file``;
    #: production names the prefecture's CA CRL(s) here; re-read on change every ``crl_check_interval`` s
    crl_file: str = "pki/crl.pem"
    crl_files: list = field(default_factory=list)
    crl_check_interval: float = 2.0


@dataclass
class IntakeConfig:
    """事務1: intake from the CS and the outbox to the national servers (ADR 0007)."""

    max_batch: int = 1000
    #: run the outbox worker inside ``jukinet serve``
    outbox_worker: bool = True
    outbox_batch: int = 1000
    outbox_backoff_initial: float = 0.5
    outbox_backoff_max: float = 30.0


@dataclass
class SecurityConfig:
    """Operator terminals (A1, A3, A6; ADR 0008): WebAuthn relying party, sessions, lockout, search caps.

    ``origins`` empty means ``http://localhost:<server.port>`` (WebAuthn needs a domain, not an IP).
    """

    rp_id: str = "localhost"
    rp_name: str = "jukinet 都道府県サーバ"
    origins: list = field(default_factory=list)
    #: minutes without a request after which the screen locks and the session is refused (A6)
    idle_minutes: float = 5.0
    #: absolute session lifetime in minutes
    session_max_minutes: int = 480
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    enrollment_hours: int = 24
    #: every cookie gets the Secure attribute on a request that came over TLS, whatever this says, and
    #: responses over TLS carry HSTS; plain HTTP is served on a loopback address only (development),
    #: where cookies go without Secure and a warning is logged. ``false`` is accepted for old
    #: configuration files and logged as a warning: it can no longer turn Secure off over TLS
    secure_cookies: bool = True
    search_page_size: int = 20
    #: more matches than this are not listed: the operator must narrow the conditions (A3)
    search_cap: int = 200
    #: IPAmj明朝 (Debian fonts-ipamj-mincho), served as a web font for 外字 (D4)
    font_path: str = "/usr/share/fonts/truetype/ipamj/ipamjm.ttf"
    #: G1 (PIA IV.2; ADR 0034): no activation and no sign-in without a security training record of
    #: the current 年度. Only the test suite's installations turn this off (their own G1 tests on)
    training_required: bool = True
    #: days the bootstrap administrator may work before their training is recorded (ADR 0034)
    bootstrap_training_grace_days: int = 30


@dataclass
class ReconcileConfig:
    """事務6 — consistency checks with the 市町村CS (C1; ADR 0012)."""

    #: a municipality is due for a check when its last completed one is older than this
    interval_days: int = 30
    #: the list of differing persons of a check is erased after this many days (the counts stay)
    detail_retention_days: int = 365


@dataclass
class RetentionConfig:
    """Automatic erasure past the retention periods (A8; ADR 0013)."""

    #: run the retention job inside ``jukinet serve``, once a day at ``daily_at`` (JST, HH:MM)
    enabled: bool = True
    daily_at: str = "02:30"
    #: rows erased per transaction, and the pause between transactions (lets intake in)
    batch_size: int = 5000
    pause_seconds: float = 0.02
    #: 住基法施行令 第30条の6: 履歴 and 消除者 are kept 150 years (the 附票 the same, ADR 0013)
    register_years: int = 150


@dataclass
class ProvisionConfig:
    """事務2/事務4 — provision and transfer to other bodies, batch provision, national queries
    (P1–P6, N1; ADR 0015–0018)."""

    #: ask the national server (事務4) about persons not in the prefecture (P3)
    national_fallback: bool = True
    national_timeout: float = 10.0
    #: a batch of more rows than this needs a manager's prior approval (A5)
    batch_approval_threshold: int = 1000
    #: no batch may have more rows than this, approved or not
    batch_max_rows: int = 1_000_000
    #: rows per transaction (and per operation-log entry) of a batch
    batch_chunk_rows: int = 1000
    #: an approval is valid this many days after the decision (at most)
    approval_max_days: int = 30
    #: encrypted result files of batch provisions (relative: under the data directory)
    media_dir: str = "media"
    #: the server's copy of a result file is erased this many days after it was written
    media_retention_days: int = 30
    #: 附票 provision with 個人番号 (P6): the temporary area outside D2, and its delivery window
    #: in days (erased automatically afterwards; must be under a year)
    kojin_bango_temp_dir: str = "tmp-kojin-bango"
    kojin_bango_temp_days: int = 14
    #: the key store of the temporary area (P8; ADR 0034): one random key per entry, destroyed at
    #: erasure. Kept apart from the entries and out of the backups; may be a tmpfs (e.g.
    #: ``/run/jukinet/kojin-bango-keys``) so that no disk ever holds a key
    kojin_bango_key_dir: str = "tmp-kojin-bango-keys"
    #: 提供・移転の記録 are kept this many years (PIA III.5 R1: 7)
    record_years: int = 7


@dataclass
class BackupConfig:
    """Daily encrypted backups (A7; ADR 0024): the machine holds only the prefecture's public key."""

    #: run the backup inside ``jukinet serve`` once a day at ``daily_at`` (JST, HH:MM) when the public key exists
    enabled: bool = True
    daily_at: str = "03:30"
    #: the prefecture's public key (PEM, from ``jukinet backup keygen``); relative: under the data directory
    public_key: str = "keys/backup-public.pem"
    #: where backups are written (their own catalogue; best on another disk) and how many are kept
    dir: str = "backups"
    generations: int = 7
    #: private (0700) area for the plaintext SQLite snapshots while they are encrypted, on the server's disk
    tmp_dir: str = "tmp-backup"
    chunk_size: int = 1 << 20
    #: zlib level before encryption (0: none; pg_dump compresses itself at this level)
    compress_level: int = 1


@dataclass
class MediaConfig:
    """The media register and the virus check of media (G2, G3; ADR 0040)."""

    #: the ClamAV scanner: ``clamd`` (clamdscan, the daemon's loaded signatures), ``clamscan`` (loads the
    #: signatures on each run) or ``auto`` (clamd when its socket exists, else clamscan). Never "off":
    #: a missing or failing scanner refuses the file (``MEDIA_SCANNER_MISSING`` / ``MEDIA_SCAN_FAILED``).
    scanner: str = "auto"
    clamscan_path: str = "clamscan"
    clamdscan_path: str = "clamdscan"
    clamd_socket: str = "/var/run/clamav/clamd.ctl"
    #: clamscan ``-d``: a signature directory or file; "" = ClamAV's own (/var/lib/clamav, freshclam)
    database: str = ""
    timeout_seconds: float = 300.0
    #: files up to this size are scanned whole; a larger one is refused, never passed unscanned
    max_file_mb: int = 2000
    #: the register is checked against the vault at least this often (PIA III.4 週次); older = overdue
    check_interval_days: int = 7
    #: the 保管場所 offered on the screen (free text is accepted too)
    locations: list = field(default_factory=lambda: ["データ保管庫", "サーバ室 保管庫", "遠隔地保管庫"])


@dataclass
class AuditConfig:
    """Monthly access-log analysis (A4; ADR 0022) and the annual roster inventory (A2; ADR 0023)."""

    #: office hours (JST, HH:MM); lookups outside them, on weekends, Japanese public holidays
    #: (jpholiday) and the closed days below are flagged (c)
    office_start: str = "08:30"
    office_end: str = "17:30"
    #: 年末年始 (MM-DD) on which the offices are closed
    closed_days: list = field(default_factory=lambda: ["12-29", "12-30", "12-31", "01-02", "01-03"])
    #: (b) more lookups of one person by one operator in the month than this are flagged
    repeat_lookups: int = 3
    #: (e) an operator-day with more lookups, or more persons in results, than these is flagged
    mass_lookups_per_day: int = 100
    mass_results_per_day: int = 2000
    #: (e) batch outputs (provision_batch) of at least this many persons in one day are flagged
    mass_batch_rows: int = 1000
    #: (f) refusal codes that only mean "the screen locked / log in again" are not flagged
    refusal_ignore: list = field(default_factory=lambda: ["SESSION_IDLE", "SESSION_EXPIRED", "AUTH_REQUIRED",
                                                          "SESSION_INVALID"])
    #: entries listed per flag in the PDF (the CSV lists them all)
    pdf_entries_per_flag: int = 30
    #: flags listed in the PDF (a pathological month lists the rest in the CSV only)
    pdf_flags_max: int = 200
    #: inventory: an account without login for this many days is "unused"
    unused_days: int = 90
    #: inventory: the period whose use is compared with the rights held
    inventory_months: int = 12
    #: warn when the last confirmed inventory is older than this many days
    inventory_max_age_days: int = 365
    #: ``jukinet serve`` generates last month's report on the 1st at this time (JST), or at its first
    #: start after that, unless the month has one (ADR 0028); the manager reviews and signs off
    monthly_report: bool = True
    monthly_report_at: str = "05:00"
    #: ``jukinet serve`` records a MAC'd checkpoint of every operation-log chain at its start and
    #: daily at this time (JST), in ``DIR/audit/checkpoints.jsonl`` (ADR 0031)
    checkpoint_at: str = "00:10"


@dataclass
class ObservabilityConfig:
    """Operations contractor's view (A7; ADR 0026, 0027): metrics, structured logs, status.

    ``/metrics`` answers requests from a loopback address when ``metrics_loopback`` is on, and any
    request carrying ``Authorization: Bearer <token>`` whose SHA-256 (hex) is
    ``metrics_token_sha256`` (empty: no token accepted). Behind a reverse proxy on the same host
    every request looks local: turn ``metrics_loopback`` off there and use a token.
    """

    #: ``jukinet serve`` log lines: "json" (one object per line) or "text"
    log_format: str = "json"
    log_level: str = "info"
    metrics_loopback: bool = True
    metrics_token_sha256: str = ""
    #: the backup job writes its status here, /ops and /metrics read it (relative: under the data directory)
    backup_status_file: str = "ops/backup-status.json"


@dataclass
class ClusterConfig:
    """The replicated PostgreSQL the registers live on (Q3; ADR 0037, 0044), as the operations view
    reads it. Empty ``patroni_urls``: not a cluster, ``/ops`` shows no replication section.

    Patroni's REST API answers ``GET`` without authentication (only changes need its password), so
    no secret is kept here. ``pgbackrest_config``: the pgBackRest configuration whose repository
    ``/ops`` reads the last backup from (``pgbackrest info``; empty: not shown) — the user running
    ``jukinet serve`` must be able to read it (on a repo host: through pgBackRest's own SSH).
    """

    #: Patroni REST API of every node, e.g. ["http://db1:8008", "http://db2:8008", "http://db3:8008"]
    patroni_urls: list = field(default_factory=list)
    #: members the topology has (3): fewer registered in the DCS is shown as a fault
    expected_members: int = 3
    #: a standby further behind than this (bytes or seconds) is shown as a fault
    max_lag_bytes: int = 16 << 20
    max_lag_seconds: float = 30.0
    #: a Patroni that has not reached etcd for this long is shown as a fault (the DCS lost its majority)
    max_dcs_age_seconds: float = 20.0
    rest_timeout: float = 2.0
    pgbackrest_config: str = ""
    pgbackrest_stanza: str = "jukinet"
    #: the last backup older than this is shown as a fault (daily differential + margin)
    max_backup_age_hours: float = 26.0


@dataclass
class Config:
    data_dir: Path
    database: DatabaseConfig
    prefecture_code: str = "240001"
    prefecture_name: str = "三重県"
    server: ServerConfig = field(default_factory=ServerConfig)
    national: NationalConfig = field(default_factory=NationalConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    provision: ProvisionConfig = field(default_factory=ProvisionConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def resolve(self, path: str | Path) -> Path:
        """A path from the config: relative paths are under the data directory."""
        p = Path(path)
        return p if p.is_absolute() else self.data_dir / p

    @property
    def path(self) -> Path:
        return self.data_dir / CONFIG_NAME

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("data_dir")
        return d

    def save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            tomli_w.dump(self.to_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, data_dir: Path | str) -> "Config":
        data_dir = Path(data_dir)
        path = data_dir / CONFIG_NAME
        if not path.exists():
            raise ConfigError("CONFIG_MISSING",
                              f"設定ファイルがありません。先に `jukinet init --data-dir {data_dir}` を実行してください。")
        with open(path, "rb") as f:
            d = tomllib.load(f)
        return cls(
            data_dir=data_dir,
            database=DatabaseConfig(**d["database"]),
            prefecture_code=d.get("prefecture_code", "240001"),
            prefecture_name=d.get("prefecture_name", "三重県"),
            server=ServerConfig(**d.get("server", {})),
            national=NationalConfig(**d.get("national", {})),
            tls=TlsConfig(**d.get("tls", {})),
            intake=IntakeConfig(**d.get("intake", {})),
            security=SecurityConfig(**d.get("security", {})),
            reconcile=ReconcileConfig(**d.get("reconcile", {})),
            retention=RetentionConfig(**d.get("retention", {})),
            provision=ProvisionConfig(**d.get("provision", {})),
            backup=BackupConfig(**d.get("backup", {})),
            audit=AuditConfig(**d.get("audit", {})),
            media=MediaConfig(**d.get("media", {})),
            observability=ObservabilityConfig(**d.get("observability", {})),
            cluster=ClusterConfig(**d.get("cluster", {})),
        )
