"""A7 / A3: 個人番号 encrypted at rest in D1 (ADR 0025), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from jukinet import codes
from jukinet.cli import app
from jukinet.errors import JukinetError
from jukinet.provision import lookup
from jukinet.provision.items import parse_keys
from jukinet.security import atrest_rotation
from jukinet.store.atrest import KojinBangoKeys
from jukinet.seed import populate
from jukinet.store import migrate
from jukinet.store.registers import Registers
from jukinet.store.tables import juki_current, juki_history
from jukinet.store.tables_security import OPLOG
from jukinet_testing import every_value, sqlite_file_bytes, upgrade_that_seals

N = 120
_TOKEN_12 = re.compile(r"(?<![0-9A-Za-z])\d{12}(?![0-9A-Za-z])")   # not inside a hex digest


@pytest.fixture
def seeded(config):
    regs = Registers(config)
    populate(regs, N, seed=5, batch_size=50)
    yield regs
    regs.dispose()


def _numbers(registers) -> dict[str, str]:
    """住民票コード → 個人番号 of every current person that has one, read through the repository."""
    with registers.juki_uow(write=False) as uow:
        codes_ = [r[0] for r in uow.conn.execute(select(juki_current.c.juminhyo_code))]
        return {c: rec.kojin_bango for c in codes_ if (rec := uow.repo.get(c)).kojin_bango}


def _assert_no_plaintext(registers, numbers):
    found = []
    for table, col, value in every_value(registers.juki_engine):
        if isinstance(value, bytes):
            if any(n.encode() in value for n in numbers):
                found.append((table, col))
            continue
        for tok in _TOKEN_12.findall(value):
            # any valid 個人番号 in a text column (hex digests may look like one by chance: known numbers only)
            if tok in numbers or (codes.is_valid_kojin_bango(tok) and col != "kojin_bango_bi"):
                found.append((table, col))
    assert found == [], found
    if registers.juki_engine.dialect.name == "sqlite":       # not in free pages nor in the write-ahead log
        blobs = sqlite_file_bytes(registers.juki_engine)
        sample = list(numbers)[:40]
        assert not [n for n in sample if any(n.encode() in b for b in blobs)]


def test_a7_no_plaintext_kojin_bango_in_any_d1_column(seeded, config):
    key_file = KojinBangoKeys.file(config.data_dir)              # the keys: outside the database, 0600
    assert oct(key_file.stat().st_mode)[-3:] == "600" and not str(key_file).endswith(".sqlite3")
    numbers = _numbers(seeded)
    assert len(numbers) > N // 2
    assert "kojin_bango" not in juki_current.c and "kojin_bango" not in juki_history.c
    _assert_no_plaintext(seeded, set(numbers.values()))
    with seeded.juki_engine.connect() as c:                  # what is there instead: ciphertext + blind index
        ct, kid, bi = c.execute(select(juki_current.c.kojin_bango_ct, juki_current.c.kojin_bango_key,
                                       juki_current.c.kojin_bango_bi)
                                .where(juki_current.c.kojin_bango_ct.is_not(None)).limit(1)).one()
        assert len(bytes(ct)) == 40 and kid == 1 and len(bi) == 32
        hist = c.execute(select(juki_history.c.kojin_bango_ct).where(
            juki_history.c.kojin_bango_ct.is_not(None))).all()
    assert hist                                                     # history is sealed too


def test_a7_lookup_by_kojin_bango_goes_through_the_blind_index(seeded):
    numbers = _numbers(seeded)
    code, number = sorted(numbers.items())[3]
    with seeded.juki_uow(write=False) as uow:
        [rec] = uow.repo.by_kojin_bango(number)
        assert rec.juminhyo_code == code and rec.kojin_bango == number
        assert uow.repo.get(code).kojin_bango == number              # the detail shows the number
        [view] = lookup.find(uow.conn, "juki", parse_keys(kojin_bango=number))
        assert view["juminhyo_code"] == code and view["kojin_bango"] == number
        assert uow.repo.by_kojin_bango("000000000019") == []
        if seeded.juki_engine.dialect.name == "sqlite":
            q = "EXPLAIN QUERY PLAN SELECT * FROM juki_current WHERE kojin_bango_bi = 'x'"
        else:
            uow.conn.execute(text("SET LOCAL enable_seqscan = off"))
            q = "EXPLAIN SELECT * FROM juki_current WHERE kojin_bango_bi = 'x'"
        plan = " ".join(str(r) for r in uow.conn.execute(text(q)))
    assert "ix_juki_current_kojin_bango_bi" in plan


def test_q2_a7_ciphertext_moved_to_another_row_refuses_to_decrypt(seeded):
    numbers = _numbers(seeded)
    (a, na), (b, nb) = sorted(numbers.items())[:2]
    with seeded.juki_engine.begin() as c:
        src = c.execute(select(juki_current.c.kojin_bango_ct, juki_current.c.kojin_bango_key,
                               juki_current.c.kojin_bango_bi).where(juki_current.c.juminhyo_code == a)).one()
        c.execute(update(juki_current).where(juki_current.c.juminhyo_code == b).values(
            kojin_bango_ct=src[0], kojin_bango_key=src[1], kojin_bango_bi=src[2]))
    with seeded.juki_uow(write=False) as uow:
        with pytest.raises(JukinetError) as e:
            uow.repo.get(b)
        assert uow.repo.get(a).kojin_bango == na                    # the original row still opens
    assert e.value.code == "ATREST_DECRYPT_FAILED"
    assert na not in str(e.value) and nb not in str(e.value) and a not in str(e.value) and b not in str(e.value)


def test_q2_a7_missing_or_wrong_key_file_is_a_clear_error_at_startup(seeded, config, tmp_path):
    key_file = KojinBangoKeys.file(config.data_dir)
    saved = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(JukinetError) as e:
        Registers(config)
    assert e.value.code == "ATREST_KEY_MISSING"
    out = CliRunner().invoke(app, ["keys", "status", "--data-dir", str(config.data_dir)])
    assert out.exit_code == 2 and "ATREST_KEY_MISSING" in out.output
    other = KojinBangoKeys.load_or_create(tmp_path / "other")        # another installation's key file
    shutil.copy(other.path, key_file)
    with pytest.raises(JukinetError) as e:
        Registers(config)
    assert e.value.code == "ATREST_KEY_MISMATCH"
    key_file.write_text("{not json")
    with pytest.raises(JukinetError) as e:
        Registers(config)
    assert e.value.code == "ATREST_KEY_INVALID"
    key_file.write_bytes(saved)
    regs = Registers(config)
    assert len(_numbers(regs)) == len(_numbers(seeded))
    regs.dispose()


def test_a7_migration_encrypts_an_installation_that_had_plaintext(seeded, config):
    numbers = _numbers(seeded)
    engine = seeded.juki_engine
    migrate.downgrade("juki", engine, "juki_0006", data_dir=config.data_dir)    # back to a plaintext register
    with engine.connect() as c:
        plain = dict(c.execute(text("SELECT juminhyo_code, kojin_bango FROM juki_current "
                                    "WHERE kojin_bango IS NOT NULL")).all())
        hist_plain = c.execute(text("SELECT count(*) FROM juki_history WHERE kojin_bango IS NOT NULL")).scalar()
    assert plain == numbers and hist_plain > 0
    upgrade_that_seals("juki", engine, KojinBangoKeys.file(config.data_dir), config.data_dir, "juki_0006")
    engine.dispose()
    regs = Registers(config)
    try:
        assert _numbers(regs) == numbers
        _assert_no_plaintext(regs, set(numbers.values()))
        with regs.juki_engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM juki_history WHERE kojin_bango_ct IS NOT NULL")).scalar() \
                == hist_plain
    finally:
        regs.dispose()


def test_a7_rotation_reencrypts_every_row_resumes_after_a_kill_and_retires_the_old_key(seeded, config):
    numbers = _numbers(seeded)
    before = {s.key_id: s.rows for s in atrest_rotation.status(seeded)}
    total = sum(before[1].values())
    assert list(before) == [1] and total > len(numbers)
    running = Registers(config)                          # e.g. the server, started before the rotation
    # killed after the first 100 rows
    part = atrest_rotation.rotate(seeded, batch=40, wait=0, stop_after=100)
    assert part.to_key == 2 and 100 <= part.rows < total
    mid = {s.key_id: (s.state, sum(s.rows.values())) for s in atrest_rotation.status(seeded)}
    assert mid[1][0] == "decrypt-only" and mid[2][0] == "active" and mid[1][1] + mid[2][1] == total
    with running.juki_uow(write=False) as uow:           # lookups work during the rotation, both keys
        for code, number in numbers.items():
            [rec] = uow.repo.by_kojin_bango(number)
            assert rec.juminhyo_code == code and rec.kojin_bango == number
    running.dispose()
    restarted = Registers(config)                        # a restart mid-rotation reads both keys
    assert _numbers(restarted) == numbers
    done = atrest_rotation.rotate(restarted, batch=40, wait=0)
    assert done.resumed and done.from_keys == [1] and part.rows + done.rows == total
    after = {s.key_id: s for s in atrest_rotation.status(restarted)}
    assert after[1].state == "retired" and after[1].rows == {} and sum(after[2].rows.values()) == total
    keys = KojinBangoKeys.load(config.data_dir)
    assert keys.material(1) is None and keys.active == 2
    assert _numbers(restarted) == numbers and _numbers(Registers(config)) == numbers
    with restarted.admin_tx() as c:
        log = c.execute(select(OPLOG["admin"][0]).where(
            OPLOG["admin"][0].c.action == "kojin_bango_key_rotation")).all()
    assert len(log) == 1 and json.loads(log[0].detail)["retired"] == "1" and log[0].result_count == done.rows
    out = CliRunner().invoke(app, ["keys", "status", "--data-dir", str(config.data_dir)])
    assert out.exit_code == 0 and "廃止" in out.output and "使用中" in out.output
    assert not any(n in out.output for n in numbers.values())
    restarted.dispose()
    out = CliRunner().invoke(app, ["keys", "rotate-kojin-bango", "--data-dir", str(config.data_dir), "--batch", "100"])
    assert out.exit_code == 0 and "2 → 3" in out.output and f"{total} 行" in out.output
    regs = Registers(config)
    assert _numbers(regs) == numbers and KojinBangoKeys.load(config.data_dir).material(2) is None
    regs.dispose()
