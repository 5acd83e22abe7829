"""A7/Q3 — ``jukinet backup`` with a libpq multi-host URL takes its dump from the primary (ADR 0049).

The URL handling is checked without a database; the backup itself on the plain test PostgreSQL,
installed with ``--db-url postgresql://…@127.0.0.1:1,HOST:PORT/db?target_session_attrs=read-write``
(the first node is down, as after a failover): the snapshot connection and every ``pg_dump`` skip
it, and the restored installation matches the source. The same on a real Patroni cluster with the
standbys listed first: tests/ha/test_q3_backup_pitr.py.
"""

from __future__ import annotations

import shutil

import pytest
from jukinet_testing import PG_URL, PostgresDatabase, table_digests
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from jukinet.backup import snapshot
from jukinet.backup.keys import PASSPHRASE_ENV, PRIVATE_NAME, PUBLIC_NAME, generate_key_pair
from jukinet.cli import app
from jukinet.config import Config
from jukinet.security.checkpoints import genesis as genesis_checkpoints
from jukinet.seed import populate
from jukinet.store import provision
from jukinet.store.registers import Registers

runner = CliRunner()
PASSPHRASE = "県の管理責任者のパスフレーズ"


def test_a7_q3_libpq_keeps_every_host_and_asks_for_the_primary():
    conninfo, env = snapshot.libpq(
        "postgresql+psycopg://jukinet_juki:p%40ss@/jukinet?host=10.0.0.1:5432&host=10.0.0.2:5433"
        "&host=10.0.0.3:5434", primary=True)
    assert conninfo == ("postgresql://jukinet_juki@/jukinet?target_session_attrs=read-write"
                        "&host=10.0.0.1,10.0.0.2,10.0.0.3&port=5432,5433,5434")
    assert env["PGPASSWORD"] == "p@ss" and "p@ss" not in conninfo and "p%40ss" not in conninfo
    # the libpq form as an operator writes it; its own target_session_attrs=primary is kept
    conninfo, _ = snapshot.libpq("postgresql://u@h1:1,h2:2/db?target_session_attrs=primary&sslmode=require",
                                 primary=True)
    assert conninfo == "postgresql://u@/db?target_session_attrs=primary&sslmode=require&host=h1,h2&port=1,2"
    # "any" (or nothing) is not good enough for a backup: a standby may be behind
    conninfo, _ = snapshot.libpq("postgresql://u@h1:1,h2:2/db?target_session_attrs=any", primary=True)
    assert "target_session_attrs=read-write" in conninfo
    # pinned to the node that exported the snapshot
    conninfo, _ = snapshot.libpq("postgresql://u@h1:1,h2:2/db", primary=True, host=("h2", "2"))
    assert conninfo == "postgresql://u@/db?target_session_attrs=read-write&host=h2&port=2"
    # one host: unchanged meaning (no session attribute forced), a socket directory stays a host
    assert snapshot.libpq("postgresql://postgres@127.0.0.1:5432/postgres", primary=True)[0] == \
        "postgresql://postgres@/postgres?host=127.0.0.1&port=5432"
    assert snapshot.libpq("postgresql://postgres@/postgres?host=/var/run/postgresql")[0] == \
        "postgresql://postgres@/postgres?host=/var/run/postgresql"


def digests(config: Config) -> dict:
    return table_digests(config)


@pytest.fixture
def multihost_installation(tmp_path, request):
    if not PG_URL:
        pytest.skip("JUKINET_TEST_POSTGRES_URL is not set")
    pg = PostgresDatabase(PG_URL)
    request.addfinalizer(pg.drop)
    u = make_url(pg.url)
    user = f"{u.username}:{u.password}@" if u.password else f"{u.username}@"
    url = f"postgresql://{user}127.0.0.1:1,{u.host}:{u.port or 5432}/{pg.name}?target_session_attrs=read-write"
    data_dir = tmp_path / "data"
    db = provision.database_config(data_dir, url)
    provision.migrate_all(db, data_dir)
    config = Config(data_dir=data_dir, database=db)
    config.save()
    genesis_checkpoints(data_dir)
    keys = tmp_path / "prefecture-keys"
    generate_key_pair(keys, passphrase=PASSPHRASE)
    (data_dir / "keys").mkdir(exist_ok=True)
    shutil.copy(keys / PUBLIC_NAME, data_dir / "keys" / "backup-public.pem")
    registers = Registers(config)
    populate(registers, 20, seed=5)
    registers.dispose()
    return config, keys / PRIVATE_NAME


def test_a7_q3_backup_with_a_multi_host_url_skips_a_dead_node_and_restores(multihost_installation, tmp_path,
                                                                          monkeypatch, request):
    config, private = multihost_installation
    assert config.database.juki_url.count("host=") == 2
    with snapshot.pg_exported_snapshot(config.database.juki_url) as snap:
        assert snap.host == (make_url(PG_URL).host, str(make_url(PG_URL).port or 5432))
    source = digests(config)          # before: the backup's own log entry is written after its snapshot
    out = tmp_path / "b.jkb"
    r = runner.invoke(app, ["backup", "--data-dir", str(config.data_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    target_db = PostgresDatabase(PG_URL)
    request.addfinalizer(target_db.drop)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    r = runner.invoke(app, ["restore", str(out), "--key", str(private), "--data-dir", str(tmp_path / "restored"),
                            "--db-url", target_db.url])
    assert r.exit_code == 0, r.output
    restored = Config.load(tmp_path / "restored")
    copy = digests(restored)
    assert source.keys() == copy.keys()
    assert [k for k in source if source[k] != copy[k] and k[1] != "alembic_version"] == []
    assert source[("juki", "juki_current")][0] > 0


def test_a7_q3_backup_when_no_listed_node_is_writable_is_refused_with_a_code(multihost_installation, tmp_path):
    config, _ = multihost_installation
    for store in ("juki", "fuhyo", "admin"):
        u = make_url(config.database.url(store))
        setattr(config.database, f"{store}_url",
                u.set(query={**u.query, "host": ("127.0.0.1:1", "127.0.0.1:2")}).render_as_string(hide_password=False))
    config.save()
    r = runner.invoke(app, ["backup", "--data-dir", str(config.data_dir), "--out", str(tmp_path / "b.jkb")])
    assert r.exit_code != 0
    assert "BACKUP_DB_UNREACHABLE" in r.output
    assert not (tmp_path / "b.jkb").exists() and not (tmp_path / "b.jkb.part").exists()
