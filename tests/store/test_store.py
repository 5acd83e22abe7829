"""D1/D2 storage on SQLite and PostgreSQL: migrations, separation of the registers, history."""

from datetime import date
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from jukinet_testing import BACKENDS

from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki
from jukinet.store import migrate
from jukinet.store.engine import make_engine
from jukinet.store.schema import METADATA


def juki_person(code="52601815907", **kw) -> JukiRecord:
    base = dict(juminhyo_code=code, name="三重　髙太郎", name_kana="ミエ　タカタロウ", birth_date=date(1980, 4, 1),
                sex="1", address="三重県津市広明町13番地", kojin_bango="625276018957", reason="国内転入",
                change_date=date(2026, 11, 20), municipality_code="242012", oaza_code="0012")
    base.update(kw)
    return derive_juki(JukiRecord(**base))


def test_d1_d2_migrations_create_what_the_models_describe(registers):
    for register in migrate.STORES:
        engine = registers.engine(register)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), METADATA[register])
        # index opclass/ops differences are not reported; anything else is a drift
        assert diff == [], f"{register}: migrations and tables.py disagree: {diff}"


def test_d1_d2_migrations_up_down_up(registers):
    for register in migrate.STORES:
        engine = registers.engine(register)
        assert migrate.current_revision(engine) == migrate.head_revision(register, engine)
        migrate.downgrade(register, engine, "base")
        assert migrate.current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(register, engine)
        assert migrate.current_revision(engine) == migrate.head_revision(register, engine)


def test_d2_has_no_kojin_bango_column_anywhere(registers):
    insp = inspect(registers.fuhyo_engine)
    for table in insp.get_table_names():
        assert "kojin_bango" not in {c["name"] for c in insp.get_columns(table)}, table
    assert "kojin_bango" not in FuhyoRecord.__dataclass_fields__


def test_d1_d2_registers_are_separate_databases(registers, backend):
    j_tables = set(inspect(registers.juki_engine).get_table_names())
    f_tables = set(inspect(registers.fuhyo_engine).get_table_names())
    assert "juki_current" in j_tables and "juki_current" not in f_tables
    assert "fuhyo_current" in f_tables and "fuhyo_current" not in j_tables
    if backend == "sqlite":
        assert registers.juki_engine.url.database != registers.fuhyo_engine.url.database


# role separation is a PostgreSQL property: run on PostgreSQL only (not skipped on SQLite: not collected)
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgres"], indirect=True)
def test_d1_d2_postgres_roles_reach_only_their_own_schema(registers, backend):
    with registers.fuhyo_engine.connect() as conn:
        with pytest.raises(DBAPIError) as e:
            conn.execute(text("SELECT count(*) FROM juki.juki_current"))
        assert "permission denied" in str(e.value).lower()
    with registers.juki_engine.connect() as conn:
        with pytest.raises(DBAPIError):
            conn.execute(text("SELECT count(*) FROM fuhyo.fuhyo_current"))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_d1_sqlite_runs_wal_with_foreign_keys(registers, backend):
    with registers.juki_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_d1_apply_keeps_every_earlier_version_with_who_when_why(registers):
    with registers.juki_uow() as uow:
        first = uow.repo.apply(juki_person())
    with registers.juki_uow() as uow:
        cur = uow.repo.get(first.juminhyo_code)
        second = uow.repo.apply(cur.replace(address="三重県津市栄町1丁目1番", reason="転居"), previous=cur)
    with registers.juki_uow() as uow:
        cur = uow.repo.get(first.juminhyo_code)
        uow.repo.apply(cur.replace(reason="死亡", deleted=True, retention_flag=True), previous=cur)
    with registers.juki_uow(write=False) as uow:
        now = uow.repo.get(first.juminhyo_code)
        hist = uow.repo.history_of(first.juminhyo_code)
    assert now.deleted and now.reason == "死亡" and now.update_seq == 3
    assert [h.reason for h in hist] == ["国内転入", "転居"]
    assert [h.update_seq for h in hist] == [1, 2]
    assert hist[0].name == "三重　髙太郎" and hist[0].name_gaiji_count == 1  # kept exactly
    assert now.timestamp.tzinfo is not None and now.notified_date is not None
    with registers.juki_engine.connect() as conn:
        why = conn.execute(text("SELECT superseded_by_reason, superseded_by_seq FROM juki_history "
                                "ORDER BY update_seq")).all()
    assert [tuple(r) for r in why] == [("転居", 2), ("死亡", 3)]


def test_d1_failed_unit_of_work_changes_nothing(registers):
    with pytest.raises(RuntimeError):
        with registers.juki_uow() as uow:
            uow.repo.apply(juki_person())
            raise RuntimeError("boom")
    with registers.juki_uow(write=False) as uow:
        assert uow.repo.count() == 0


def test_d1_lookup_by_kojin_bango(registers):
    with registers.juki_uow() as uow:
        uow.repo.apply(juki_person())
    with registers.juki_uow(write=False) as uow:
        assert [r.juminhyo_code for r in uow.repo.by_kojin_bango("625276018957")] == ["52601815907"]


def test_d2_fuhyo_apply_roundtrip(registers):
    rec = derive_fuhyo(FuhyoRecord(juminhyo_code="52601815907", name="三重　太郎", name_kana="ミエ　タロウ",
                                   birth_date=date(1980, 4, 1), sex="1", address_municipality_code=None,
                                   address=None, last_address="三重県津市広明町13番地", change_date=date(2026, 1, 5),
                                   fuhyo_municipality_code="242012", reason="国外転出"))
    with registers.fuhyo_uow() as uow:
        uow.repo.apply(rec)
    with registers.fuhyo_uow(write=False) as uow:
        got = uow.repo.get("52601815907")
    assert got.address is None and got.last_address == "三重県津市広明町13番地" and got.update_seq == 1


def test_d1_notified_date_is_the_date_in_japan(registers):
    from datetime import datetime, timezone
    with registers.juki_uow() as uow:
        stored = uow.repo.apply(juki_person(), now=datetime(2026, 11, 25, 23, 30, tzinfo=timezone.utc))
    assert stored.notified_date == date(2026, 11, 26)  # 08:30 JST on the 26th
