"""A7 / Q2 (ADR 0028): ``jukinet migrate`` upgrades an installation in place without rewriting its
config, ``--check`` tells a pipeline whether anything is behind, ``serve`` refuses a database behind
its head, and ``init`` never overwrites an existing installation's config. SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select, text
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.seed import populate
from jukinet.store import migrate
from jukinet.store.engine import make_engine
from jukinet.store.registers import Registers
from jukinet.store.tables import juki_current

runner = CliRunner()


def _engine(config, store):
    return make_engine(config.database.url(store))


def _revisions(config) -> dict:
    out = {}
    for store in migrate.STORES:
        e = _engine(config, store)
        out[store] = migrate.current_revision(e)
        e.dispose()
    return out


def _downgrade(config, store, revision):
    e = _engine(config, store)
    migrate.downgrade(store, e, revision, data_dir=config.data_dir)
    e.dispose()


def _numbers(registers) -> dict:
    with registers.juki_uow(write=False) as uow:
        codes = [r[0] for r in uow.conn.execute(select(juki_current.c.juminhyo_code))]
        return {c: rec.kojin_bango for c in codes if (rec := uow.repo.get(c)).kojin_bango}


def test_q2_migrate_check_then_upgrade_in_place_without_touching_the_config(config):
    heads = _revisions(config)
    regs = Registers(config)
    populate(regs, 40, seed=3, batch_size=20)
    numbers = _numbers(regs)
    regs.dispose()
    assert numbers
    _downgrade(config, "juki", "juki_0006")       # an installation of the release before 個人番号 at rest
    _downgrade(config, "admin", "admin_0003")
    config_bytes, config_mtime = config.path.read_bytes(), config.path.stat().st_mtime_ns
    d = str(config.data_dir)

    r = runner.invoke(app, ["migrate", "--data-dir", d, "--check"])
    assert r.exit_code == 1, r.output                           # a deployment pipeline stops here
    assert "juki_0006" in r.output and heads["juki"] in r.output and "admin_0003" in r.output
    assert "jukinet backup" in r.output                          # the backup hint
    assert _revisions(config) == {"juki": "juki_0006", "fuhyo": heads["fuhyo"], "admin": "admin_0003"}

    r = runner.invoke(app, ["migrate", "--data-dir", d])
    assert r.exit_code == 0, r.output
    assert "juki juki_0006 → " + heads["juki"] in r.output
    assert _revisions(config) == heads
    assert config.path.read_bytes() == config_bytes and config.path.stat().st_mtime_ns == config_mtime
    regs = Registers(config)                 # juki_0007 sealed the numbers with the data directory's key
    try:
        assert _numbers(regs) == numbers
        with regs.juki_engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM juki_current WHERE kojin_bango_ct IS NOT NULL")).scalar() \
                == len(numbers)
    finally:
        regs.dispose()
    for n in numbers.values():
        assert n not in r.output

    r = runner.invoke(app, ["migrate", "--data-dir", d, "--check"])
    assert r.exit_code == 0 and "すべてのデータベースが最新の版です" in r.output
    r = runner.invoke(app, ["migrate", "--data-dir", d])          # again: nothing to do
    assert r.exit_code == 0 and "jukinet backup" not in r.output


def test_a7_serve_refuses_a_database_behind_its_head_and_names_the_command(config):
    _downgrade(config, "fuhyo", "fuhyo_0005")
    d = str(config.data_dir)
    r = runner.invoke(app, ["serve", "--data-dir", d])
    assert r.exit_code == 2
    assert "SCHEMA_BEHIND" in r.output and "fuhyo_0005" in r.output
    assert f"jukinet migrate --data-dir {d}" in r.output.replace("\n", "")
    assert runner.invoke(app, ["migrate", "--data-dir", d]).exit_code == 0
    from jukinet.store.upgrade import require_current

    require_current(config)                                        # serve would start now


def test_a7_a_database_written_by_a_newer_release_is_refused_by_migrate_and_serve(config):
    e = _engine(config, "admin")
    with e.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = 'admin_9999'"))
    e.dispose()
    d = str(config.data_dir)
    for args in (["migrate", "--data-dir", d], ["migrate", "--data-dir", d, "--check"], ["serve", "--data-dir", d]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and "SCHEMA_UNKNOWN_REVISION" in r.output, args
    assert _revisions(config)["admin"] == "admin_9999"             # nothing changed


def test_q2_init_on_an_existing_installation_refuses_and_keeps_its_config(config, backend):
    before = config.path.read_bytes()
    args = ["init", "--data-dir", str(config.data_dir), "--port-base", "9300"]
    if backend == "postgres":               # init would reset the roles' passwords: it must stop first
        from jukinet_testing import PG_URL

        args += ["--db-url", PG_URL]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert "INIT_ALREADY_INITIALISED" in r.output and "jukinet migrate" in r.output
    assert config.path.read_bytes() == before
    regs = Registers(config)                # the roles' passwords in the config still work
    with regs.juki_uow(write=False) as uow:
        assert uow.repo.count() == 0
    regs.dispose()
