"""A7 — encrypted daily backups the operations role can make but not read; restore drills; Q2 refusals.

Every test runs on SQLite and PostgreSQL (``backend`` fixture). The prefecture's key pair is made
once per module; the installation only ever gets the public key.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyotp
import pytest
from jukinet_testing import PG_URL, PostgresDatabase, table_digests
from sqlalchemy import func, select
from typer.testing import CliRunner

from jukinet.backup import service
from jukinet.backup.container import END, MAGIC
from jukinet.backup.keys import PASSPHRASE_ENV, PRIVATE_NAME, PUBLIC_NAME, PrivateKeyFile, generate_key_pair
from jukinet.cli import app
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.scheduler import OpsScheduler
from jukinet.security.oplog import Actor, verify_all
from jukinet.security.service import Security
from jukinet.seed import populate
from jukinet.store.engine import make_engine
from jukinet.store.registers import Registers
from jukinet.store.repository import JST
from jukinet.store.tables import juki_current

runner = CliRunner()
PASSPHRASE = "県の管理責任者のパスフレーズ"
STORES = ("juki", "fuhyo", "admin")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """The prefecture's key pair (made on the prefecture's side, not in the data directory)."""
    d = tmp_path_factory.mktemp("prefecture-keys")
    generate_key_pair(d, passphrase=PASSPHRASE)
    other = tmp_path_factory.mktemp("other-keys")
    generate_key_pair(other, passphrase=PASSPHRASE)
    return {"private": d / PRIVATE_NAME, "public": d / PUBLIC_NAME, "other_private": other / PRIVATE_NAME}


def _activity(config: Config, registers: Registers) -> None:
    """Operators, terminals, operation-log entries in all three chains and a checkpoint."""
    sec = Security(config, registers)
    sec.bootstrap_admin(display_name="管理　太郎", operator_id="admin01")
    sec.add_terminal(Actor("admin01", None), "代表端末1", terminal_id="T001")
    for chain in ("juki", "fuhyo"):
        with registers.uow(chain) as uow:
            sec.oplog.append(uow.conn, chain, actor=Actor("admin01", "T001"), action="search",
                             keys={"name": "三重"}, result_count=1)
    assert all(r.ok for r in verify_all(sec.oplog, {c: registers.engine(c) for c in STORES}, checkpoint=True))


@pytest.fixture
def installation(config, keys):
    """A seeded installation with activity, the public key in place, small chunks (many of them)."""
    (config.data_dir / "keys").mkdir(exist_ok=True)
    shutil.copy(keys["public"], config.data_dir / "keys" / "backup-public.pem")
    config.backup.chunk_size = 16 * 1024
    config.save()
    registers = Registers(config)
    populate(registers, 40, seed=3)
    _activity(config, registers)
    registers.dispose()
    return config


@pytest.fixture
def new_target(tmp_path, backend, request):
    """Where a restore goes: a new data directory, and for PostgreSQL a new empty database."""
    db_url = None
    if backend == "postgres":
        pg = PostgresDatabase(PG_URL)
        request.addfinalizer(pg.drop)
        db_url = pg.url
    return tmp_path / "restored", db_url


def _backup(config, tmp_path, name="b.jkb") -> Path:
    r = runner.invoke(app, ["backup", "--data-dir", str(config.data_dir), "--out", str(tmp_path / name)])
    assert r.exit_code == 0, r.output
    return tmp_path / name


def _restore_args(file, key, target, db_url):
    return (["restore", str(file), "--key", str(key), "--data-dir", str(target)]
            + (["--db-url", db_url] if db_url else []))


def test_a7_restore_drill_matches_source(installation, keys, new_target, tmp_path):
    """Back up with the machine's public key, restore with the prefecture's private key into a new
    directory (and database), and compare every table of the three databases row by row; the
    restored operation-log chains verify."""
    source = table_digests(installation)
    assert source[("juki", "juki_current")][0] > 0 and source[("admin", "operators")][0] == 1
    assert source[("juki", "oplog")][0] == 1 and source[("admin", "oplog")][0] >= 2
    file = _backup(installation, tmp_path)
    target, db_url = new_target
    r = runner.invoke(app, _restore_args(file, keys["private"], target, db_url), env={PASSPHRASE_ENV: PASSPHRASE})
    assert r.exit_code == 0, r.output
    restored = Config.load(target)
    assert restored.database.juki_url != installation.database.juki_url
    assert table_digests(restored) == source
    for rel in ("keys/oplog.key", "keys/backup-public.pem", "audit/checkpoints.jsonl", "pki/ca.pem"):
        if (installation.data_dir / rel).exists():
            assert (target / rel).read_bytes() == (installation.data_dir / rel).read_bytes(), rel
    assert (target / "keys/oplog.key").read_bytes() == (installation.data_dir / "keys/oplog.key").read_bytes()
    assert (target / "audit/checkpoints.jsonl").exists()
    v = runner.invoke(app, ["audit", "verify", "--data-dir", str(target), "--no-checkpoint"])
    assert v.exit_code == 0, v.output
    assert "admin: 正常" in v.output and "juki: 正常 (1 件" in v.output
    # the restored installation works: a new entry chains on
    regs = Registers(restored)
    try:
        Security(restored, regs).add_terminal(Actor("admin01", None), "復元後の端末")
    finally:
        regs.dispose()
    assert runner.invoke(app, ["audit", "verify", "--data-dir", str(target)]).exit_code == 0


def test_a1_a7_restored_installation_opens_the_sealed_totp_secrets(installation, keys, new_target, tmp_path):
    """The TOTP key file (DIR/keys/totp.json, ADR 0029) travels with the backup: after a restore the
    password+TOTP fallback still logs in."""
    regs = Registers(installation)
    try:
        sec = Security(installation, regs)
        sec.update_operator(Actor("bootstrap", None), "admin01", roles=["admin"], registers=[], affairs=[],
                            password_allowed=True)
        grant = sec.grant_password(Actor("bootstrap", None), "admin01")
    finally:
        regs.dispose()
    file = _backup(installation, tmp_path)
    target, db_url = new_target
    r = runner.invoke(app, _restore_args(file, keys["private"], target, db_url), env={PASSPHRASE_ENV: PASSPHRASE})
    assert r.exit_code == 0, r.output
    assert (target / "keys/totp.json").read_bytes() == (installation.data_dir / "keys/totp.json").read_bytes()
    restored = Config.load(target)
    regs = Registers(restored)
    try:
        res = Security(restored, regs).password_login("admin01", grant.password,
                                                      pyotp.TOTP(grant.totp_secret).now(), "T001")
        assert res.operator.operator_id == "admin01"
    finally:
        regs.dispose()


def _writer(config: Config, stop: threading.Event, counts: dict) -> None:
    """One writer, in order: an entry on juki, then fuhyo, then admin — each its own commit."""
    regs = Registers(config)
    sec = Security(config, regs)
    try:
        i = 0
        while not stop.is_set():
            i += 1
            for chain in STORES:
                with (regs.admin_tx() if chain == "admin" else regs.uow(chain)) as tx:
                    conn = tx if chain == "admin" else tx.conn
                    sec.oplog.append(conn, chain, actor=Actor("admin01", "T001"), action="backup_probe",
                                     detail={"i": i})
            counts["written"] = i
    finally:
        regs.dispose()


def _probes(config: Config) -> dict:
    from jukinet.store.tables_security import OPLOG

    out = {}
    for store in STORES:
        log, _ = OPLOG[store]
        engine = make_engine(config.database.url(store))
        with engine.connect() as c:
            out[store] = c.execute(select(func.count()).select_from(log).where(log.c.action == "backup_probe")).scalar()
        engine.dispose()
    return out


def test_a7_backup_while_writing_is_one_consistent_instant(installation, keys, new_target, tmp_path):
    """A writer commits juki, fuhyo, admin in turn while the backup runs: the restored copy holds
    the three databases of one instant (juki ≥ fuhyo ≥ admin ≥ juki − 1) and every chain verifies."""
    stop, counts = threading.Event(), {"written": 0}
    t = threading.Thread(target=_writer, args=(installation, stop, counts))
    t.start()
    try:
        deadline = time.monotonic() + 30
        while counts["written"] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        file = _backup(installation, tmp_path)
        during = counts["written"]
    finally:
        stop.set()
        t.join(30)
    assert during >= 5
    target, db_url = new_target
    r = runner.invoke(app, _restore_args(file, keys["private"], target, db_url), env={PASSPHRASE_ENV: PASSPHRASE})
    assert r.exit_code == 0, r.output
    n = _probes(Config.load(target))
    assert n["juki"] >= n["fuhyo"] >= n["admin"] >= n["juki"] - 1, n
    assert n["admin"] >= 5
    v = runner.invoke(app, ["audit", "verify", "--data-dir", str(target), "--no-checkpoint"])
    assert v.exit_code == 0, v.output


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset, length incl. the 4-byte length) of every chunk of a backup file."""
    (hl,) = struct.unpack(">I", data[9:13])
    pos, out = 13 + hl, []
    while data[pos:pos + 4] != END[:4]:
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((pos, 4 + n))
        pos += 4 + n
    return out


def _damaged(data: bytes) -> dict[str, tuple[bytes, str]]:
    chunks = _chunks(data)
    mid = chunks[len(chunks) // 2]
    flipped = bytearray(data)
    flipped[mid[0] + 40] ^= 0x01
    same = [(a, b) for a, b in zip(chunks, chunks[1:]) if a[1] == b[1]]
    (a, la), (b, lb) = same[0]
    swapped = data[:a] + data[b:b + lb] + data[a:a + la] + data[b + lb:]
    header = bytearray(data)
    at = data.index(b'"created_at":"') + len(b'"created_at":"')
    header[at + 3] = ord("9") if data[at + 3] != ord("9") else ord("8")   # the year, in the clear header
    manifest = bytearray(data)
    last = chunks[-1]
    manifest[last[0] + last[1] - 20] ^= 0x40                             # inside the encrypted manifest
    return {
        "corrupted byte": (bytes(flipped), "BACKUP_CORRUPT"),
        "truncated mid-chunk": (data[:mid[0] + 100], "BACKUP_TRUNCATED"),
        "truncated at a chunk boundary": (data[:mid[0]], "BACKUP_TRUNCATED"),
        "trailer cut off": (data[:-10], "BACKUP_TRUNCATED"),
        "swapped chunks": (swapped, "BACKUP_CORRUPT"),
        "altered header": (bytes(header), "BACKUP_CORRUPT"),
        "altered manifest": (bytes(manifest), "BACKUP_CORRUPT"),
        "appended bytes": (data + b"\0", "BACKUP_CORRUPT"),
        "not a backup": (b"PK\x03\x04" + data[4:], "BACKUP_FORMAT"),
    }


def test_a7_damaged_or_foreign_backups_are_refused_and_nothing_is_written(installation, keys, new_target, tmp_path):
    installation.backup.compress_level = 0      # many full chunks of the same size to swap
    installation.save()
    file = _backup(installation, tmp_path)
    data = file.read_bytes()
    assert data.startswith(MAGIC) and len(_chunks(data)) > 20
    target, db_url = new_target
    private = PrivateKeyFile(keys["private"], PASSPHRASE)
    for what, (bad, code) in _damaged(data).items():
        f = tmp_path / "bad.jkb"
        f.write_bytes(bad)
        with pytest.raises(JukinetError) as e:
            service.verify_backup(f, private)
        assert e.value.code == code, what
        with pytest.raises(JukinetError) as e:
            service.restore(f, private, target, db_url=db_url)
        assert e.value.code == code, what
        assert not target.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], what
        r = runner.invoke(app, ["backup", "verify", str(f), "--key", str(keys["private"])],
                          env={PASSPHRASE_ENV: PASSPHRASE})
        assert r.exit_code == 2 and code in r.output, what
    # the wrong private key, and a wrong passphrase
    other = PrivateKeyFile(keys["other_private"], PASSPHRASE)
    with pytest.raises(JukinetError) as e:
        service.restore(file, other, target, db_url=db_url)
    assert e.value.code == "BACKUP_KEY_MISMATCH"
    r = runner.invoke(app, _restore_args(file, keys["private"], target, db_url), env={PASSPHRASE_ENV: "違う"})
    assert r.exit_code == 2 and "BACKUP_KEY_PASSPHRASE" in r.output
    assert not target.exists()
    if db_url:   # nothing reached the target database either
        assert service._pg_schemas_used(db_url) is False
    # the intact file still restores
    service.restore(file, private, target, db_url=db_url)
    assert (target / "jukinet.toml").exists()


def test_a7_backup_file_holds_no_plaintext_personal_data(installation, tmp_path):
    """Even without compression, no seeded name, 住民票コード or address is in the file."""
    installation.backup.compress_level = 0
    installation.save()
    registers = Registers(installation)
    with registers.juki_uow(write=False) as uow:
        people = uow.conn.execute(select(juki_current.c.juminhyo_code, juki_current.c.name,
                                         juki_current.c.address).limit(5)).all()
    registers.dispose()
    file = _backup(installation, tmp_path)
    data = file.read_bytes()
    assert len(data) > sum((installation.data_dir / f"{s}.sqlite3").stat().st_size for s in STORES) // 4 \
        if installation.database.juki_url.startswith("sqlite") else len(data) > 10_000
    for code, name, address in people:
        for value in (code, name, address, name.replace("\u3000", " ")):
            for enc in ("utf-8", "utf-16-le", "cp932"):
                try:
                    needle = value.encode(enc)
                except UnicodeEncodeError:
                    continue
                assert needle not in data, "personal data in clear"
    header = json.loads(data[13:13 + struct.unpack(">I", data[9:13])[0]])
    assert set(header) >= {"backup_id", "created_at", "engine", "schema_heads", "key", "format"}


def test_a7_machine_backs_up_without_the_private_key_and_cannot_restore(installation, keys, new_target, tmp_path):
    """The installation holds only the public key: it writes backups; nothing on it opens them."""
    private_pem = keys["private"].read_bytes()
    for p in installation.data_dir.rglob("*"):
        if p.is_file():
            assert private_pem not in p.read_bytes() and b"ENCRYPTED PRIVATE KEY" not in p.read_bytes(), p
    file = _backup(installation, tmp_path)
    target, db_url = new_target
    r = runner.invoke(app, _restore_args(file, installation.data_dir / "keys" / "backup-public.pem", target, db_url))
    assert r.exit_code == 2 and "BACKUP_KEY_PASSPHRASE" in r.output
    no_key = ["restore", str(file), "--data-dir", str(target)] + (["--db-url", db_url] if db_url else [])
    r = runner.invoke(app, no_key)
    assert r.exit_code == 2 and "BACKUP_KEY_REQUIRED" in r.output
    tls_key = installation.data_dir / "pki" / "prefecture.key"
    if tls_key.exists():
        with pytest.raises(JukinetError) as e:
            service.restore(file, PrivateKeyFile(tls_key), target, db_url=db_url)
        assert e.value.code in ("BACKUP_KEY_MISMATCH", "BACKUP_KEY_PASSPHRASE")
    assert not target.exists()
    # without any key, the operations role can still list and check the files (no database either)
    r = runner.invoke(app, ["backup", "list", "--data-dir", str(installation.data_dir), "--check"])
    assert r.exit_code == 0


def test_a7_restore_with_a_kms_command_openssl(installation, keys, new_target, tmp_path):
    """The key-provider slot for a KMS/HSM: any RSA-OAEP-SHA256 decryptor on stdin/stdout."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    file = _backup(installation, tmp_path)
    target, db_url = new_target
    cmd = (f"openssl pkeyutl -decrypt -inkey {keys['private']} -passin env:{PASSPHRASE_ENV} "
           "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256")
    args = ["restore", str(file), "--key-command", cmd, "--public-key", str(keys["public"]),
            "--data-dir", str(target)] + (["--db-url", db_url] if db_url else [])
    os.environ[PASSPHRASE_ENV] = PASSPHRASE
    try:
        r = runner.invoke(app, args)
    finally:
        os.environ.pop(PASSPHRASE_ENV)
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["audit", "verify", "--data-dir", str(target), "--no-checkpoint"]).exit_code == 0


def test_a7_restore_refuses_a_target_in_use(installation, keys, new_target, tmp_path):
    """Q2: a non-empty data directory (or a database with the schemas) is refused; nothing changes."""
    file = _backup(installation, tmp_path)
    target, db_url = new_target
    target.mkdir()
    (target / "note.txt").write_text("keep")
    r = runner.invoke(app, _restore_args(file, keys["private"], target, db_url), env={PASSPHRASE_ENV: PASSPHRASE})
    assert r.exit_code == 2 and "BACKUP_TARGET_NOT_EMPTY" in r.output
    assert [p.name for p in target.iterdir()] == ["note.txt"]
    private = PrivateKeyFile(keys["private"], PASSPHRASE)
    if db_url:
        service.restore(file, private, tmp_path / "first", db_url=db_url)
        before = table_digests(Config.load(tmp_path / "first"))
        with pytest.raises(JukinetError) as e:
            service.restore(file, private, tmp_path / "second", db_url=db_url)
        assert e.value.code == "BACKUP_TARGET_NOT_EMPTY" and not (tmp_path / "second").exists()
        assert table_digests(Config.load(tmp_path / "first")) == before
        with pytest.raises(JukinetError) as e:   # a PostgreSQL backup needs a database to go to
            service.restore(file, private, tmp_path / "third")
        assert e.value.code == "BACKUP_DB_URL_REQUIRED"
    elif PG_URL:
        with pytest.raises(JukinetError) as e:
            service.restore(file, private, tmp_path / "third", db_url=PG_URL)
        assert e.value.code == "BACKUP_ENGINE_MISMATCH"
    r = runner.invoke(app, ["backup", "--data-dir", str(installation.data_dir), "--out", str(file)])
    assert r.exit_code == 2 and "BACKUP_OUT_EXISTS" in r.output


def _clock_from(start: datetime):
    t0 = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - t0)


def test_a7_scheduler_runs_the_due_backup_and_writes_the_status_file(installation):
    installation.retention.enabled = False
    installation.backup.daily_at = "03:30"
    start = datetime(2026, 11, 27, 3, 29, 59, 500000, tzinfo=JST).astimezone(timezone.utc)
    ops = OpsScheduler(installation, clock=_clock_from(start)).start()
    try:
        deadline = time.monotonic() + 60
        while ops.backup_runs == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        ops.stop()
    assert ops.backup_runs == 1
    files = list((installation.data_dir / "backups").glob("jukinet-backup-20261127T0330*JST-*.jkb"))   # the time in Japan
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    status = json.loads((installation.data_dir / "ops" / "backup-status.json").read_text())
    assert set(status) == {"last_success_at", "last_failure_at", "last_failure_code", "last_bytes", "last_seconds",
                           "last_file"}
    assert status["last_success_at"].startswith("2026-11-26T18:30:0") and status["last_failure_at"] is None
    assert status["last_bytes"] == files[0].stat().st_size and status["last_file"] == str(files[0])
    assert status["last_seconds"] > 0
    # a failing run (the backup directory is not writable as a directory) is recorded by code
    installation.backup.dir = "not-a-dir"
    (installation.data_dir / "not-a-dir").write_text("")
    assert service.scheduled_backup(installation, clock=lambda: start + timedelta(days=1)) is None
    status2 = json.loads((installation.data_dir / "ops" / "backup-status.json").read_text())
    assert status2["last_failure_code"] == "BACKUP_WRITE_FAILED"
    assert status2["last_failure_at"].startswith("2026-11-27T18:29:59")
    assert status2["last_success_at"] == status["last_success_at"] and status2["last_file"] == status["last_file"]
    assert not list(installation.data_dir.glob("tmp-backup/snapshot-*"))
    # both runs are in the admin operation log (who, outcome, code — no personal data); the chain holds
    from jukinet.store.tables_security import OPLOG

    log, _ = OPLOG["admin"]
    engine = make_engine(installation.database.admin_url)
    with engine.connect() as c:
        runs = c.execute(select(log.c.operator_id, log.c.outcome, log.c.detail).where(log.c.action == "backup_write")
                         .order_by(log.c.seq)).all()
    engine.dispose()
    assert [(r.operator_id, r.outcome) for r in runs] == [("scheduler", "granted"), ("scheduler", "failed")]
    assert json.loads(runs[1].detail) == {"code": "BACKUP_WRITE_FAILED"}
    v = runner.invoke(app, ["audit", "verify", "--data-dir", str(installation.data_dir), "--no-checkpoint"])
    assert v.exit_code == 0, v.output


def test_a7_d3_backup_file_name_carries_the_time_in_japan(installation):
    """23:30 UTC on 26 November is 08:30 on 27 November in Japan (ADR 0042)."""
    late = datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc)
    res = service.run_and_record(installation, clock=lambda: late)
    assert res.path.name.startswith("jukinet-backup-20261127T083000JST-"), res.path.name
    assert service.NAME.match(res.path.name)
    # a file named before the change (UTC, "Z") is still ours and ordered by its instant
    old = res.path.with_name("jukinet-backup-20261126T233500Z-abcdef.jkb")      # 5 minutes later than res
    old.write_bytes(res.path.read_bytes())
    gone = service.prune(res.path.parent, 1)
    assert gone == [res.path] and old.exists()


def test_a7_old_generations_are_pruned(installation):
    installation.backup.generations = 2
    base = datetime(2026, 11, 1, 18, 30, tzinfo=timezone.utc)
    made = [service.run_and_record(installation, clock=lambda d=d: base + timedelta(days=d)).path for d in range(4)]
    left = sorted((installation.data_dir / "backups").glob("*.jkb"))
    assert left == made[2:]
    foreign = installation.data_dir / "backups" / "keep-me.jkb"
    foreign.write_bytes(b"x")
    killed = installation.data_dir / "backups" / "jukinet-backup-20261001T183000Z-abcdef.jkb.part"
    killed.write_bytes(b"x")
    stale_snapshot = installation.data_dir / "tmp-backup" / "snapshot-killed"
    stale_snapshot.mkdir(parents=True)
    (stale_snapshot / "juki.sqlite3").write_bytes(b"x")
    for p in (killed, stale_snapshot):
        os.utime(p, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    service.run_and_record(installation, clock=lambda: base + timedelta(days=9))
    assert foreign.exists() and len(list((installation.data_dir / "backups").glob("jukinet-backup-*.jkb"))) == 2
    assert not killed.exists()
    if installation.database.juki_url.startswith("sqlite"):
        assert not stale_snapshot.exists()


def test_a7_keygen_makes_a_protected_pair_and_never_overwrites(tmp_path):
    """The prefecture's pair: private key encrypted with the passphrase, mode 0600; Q2: no overwrite."""
    out = tmp_path / "prefecture"
    r = runner.invoke(app, ["backup", "keygen", "--out", str(out)], env={PASSPHRASE_ENV: PASSPHRASE})
    assert r.exit_code == 0, r.output
    priv, pub = out / PRIVATE_NAME, out / PUBLIC_NAME
    assert priv.stat().st_mode & 0o777 == 0o600 and b"ENCRYPTED PRIVATE KEY" in priv.read_bytes()
    assert b"PUBLIC KEY" in pub.read_bytes() and "鍵ID" in r.output and "backup-public.pem" in r.output
    assert PrivateKeyFile(priv, PASSPHRASE).key_id in r.output
    before = priv.read_bytes()
    r = runner.invoke(app, ["backup", "keygen", "--out", str(out)], env={PASSPHRASE_ENV: PASSPHRASE})
    assert r.exit_code == 2 and "BACKUP_KEY_EXISTS" in r.output and priv.read_bytes() == before


def test_a7_backup_without_a_usable_public_key_is_refused_and_recorded(installation, tmp_path):
    """Q2: no public key, or a file that is not one → a code, no backup file, the status file says so."""
    pub = installation.data_dir / "keys" / "backup-public.pem"
    pub.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    r = runner.invoke(app, ["backup", "--data-dir", str(installation.data_dir)])
    assert r.exit_code == 2 and "BACKUP_PUBLIC_KEY_INVALID" in r.output
    pub.unlink()
    r = runner.invoke(app, ["backup", "--data-dir", str(installation.data_dir)])
    assert r.exit_code == 2 and "BACKUP_NO_PUBLIC_KEY" in r.output
    assert not list(installation.data_dir.glob("backups/*"))
    status = json.loads((installation.data_dir / "ops" / "backup-status.json").read_text())
    assert status["last_failure_code"] == "BACKUP_NO_PUBLIC_KEY" and status["last_success_at"] is None
