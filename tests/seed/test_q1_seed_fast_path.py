"""Q1 (issue 16): the seed's fast path (COPY / the driver's executemany, indexes after the load) stores
the same rows as the slow path; a seed killed with ``kill -9`` resumes without duplicates; a
completed seed or another prefecture's data is refused. On every configured engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from jukinet_testing import make_installation
from sqlalchemy import inspect, select, update

from jukinet import geo
from jukinet.domain.records import JukiRecord
from jukinet.errors import JukinetError
from jukinet.seed import populate
from jukinet.seed.generator import Generator
from jukinet.store.atrest import COLUMNS
from jukinet.store.registers import Registers
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, fuhyo_seed_progress, juki_counters,
                                  juki_current, juki_history, juki_seed_progress)

N = 3000
SEED = 5


def _dump(registers: Registers) -> dict:
    """Every row of every seeded table, in key order; D1's 個人番号 opened, its blind index checked
    against the installation's own index key (each installation has its own keys)."""
    cipher = registers.kojin_bango_cipher
    out = {}
    for register, engine, tables in (("juki", registers.juki_engine, (juki_current, juki_history, juki_counters, juki_seed_progress)),
                           ("fuhyo", registers.fuhyo_engine, (fuhyo_current, fuhyo_history, fuhyo_counters,
                                                     fuhyo_seed_progress))):
        with engine.connect() as c:
            for t in tables:
                rows = []
                for r in c.execute(select(t).order_by(*t.primary_key.columns)):
                    m = dict(r._mapping)
                    if "kojin_bango_ct" in m:
                        bi = m["kojin_bango_bi"]
                        m = cipher.open_row(m)
                        assert bi == (cipher.blind_index(m["kojin_bango"]) if m["kojin_bango"] else None)
                        assert not set(COLUMNS) & set(m)
                    rows.append(m)
                key = t.name if t.name.startswith(register) else f"{register}_{t.name}"
                out[key] = rows
                out[key + "/indexes"] = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                                  for i in inspect(c).get_indexes(t.name))
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert len(a[k]) == len(b[k]), k
        for x, y in zip(a[k], b[k]):
            assert x == y, k


def _registers(tmp_path, name, backend, request) -> Registers:
    regs = Registers(make_installation(tmp_path / name, backend, request))
    request.addfinalizer(regs.dispose)
    return regs


def _apply_one(regs: Registers) -> int:
    """After the seed the engine's own history ids continue above the seed's (PostgreSQL's sequence)."""
    with regs.juki_uow() as uow:
        code = uow.conn.execute(select(juki_current.c.juminhyo_code).where(juki_current.c.deleted.is_(False))
                                .order_by(juki_current.c.juminhyo_code).limit(1)).scalar_one()
        prev: JukiRecord = uow.repo.get(code)
        uow.repo.apply(prev.replace(address=prev.address + "1", reason="転居"), previous=prev)
        return uow.conn.execute(select(juki_history.c.history_id).where(juki_history.c.juminhyo_code == code)
                                .order_by(juki_history.c.history_id.desc()).limit(1)).scalar_one()


def test_q1_seed_fast_path_identical_to_slow_path(tmp_path, backend, request):
    fast = _registers(tmp_path, "fast", backend, request)
    slow = _registers(tmp_path, "slow", backend, request)
    r_fast = populate(fast, N, seed=SEED, batch_size=700)
    r_slow = populate(slow, N, seed=SEED, batch_size=700, fast=False)
    assert (r_fast.juki_rows, r_fast.fuhyo_rows) == (r_slow.juki_rows, r_slow.fuhyo_rows)
    a, b = _dump(fast), _dump(slow)
    assert len(a["juki_current"]) == r_fast.residents + r_fast.removed
    assert len(a["juki_history"]) == r_fast.history > 0 and len(a["fuhyo_history"]) == r_fast.fuhyo_history > 0
    assert [r["history_id"] for r in a["juki_history"]] == list(range(1, r_fast.history + 1))
    assert a["juki_seed_progress"][0]["complete"] and a["fuhyo_seed_progress"][0]["complete"]
    assert len(a["juki_current/indexes"]) == len(juki_current.indexes)       # built again after the load
    _assert_same(a, b)
    assert _apply_one(fast) == _apply_one(slow) == r_fast.history + 1


def _progress(regs: Registers):
    out = []
    for engine, t in ((regs.juki_engine, juki_seed_progress), (regs.fuhyo_engine, fuhyo_seed_progress)):
        with engine.connect() as c:
            out.append(c.execute(select(t.c.batches_done, t.c.complete)).first())
    return out


def test_q1_seed_resumes_after_kill_without_duplicates(tmp_path, backend, request):
    killed = _registers(tmp_path, "killed", backend, request)
    data_dir = killed.config.data_dir
    n, batch = 2000, 100
    cmd = [sys.executable, "-m", "jukinet.cli", "seed", "--data-dir", str(data_dir), "--residents", str(n),
           "--seed", str(SEED), "--batch-size", str(batch)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            juki, _ = _progress(killed)
            if juki is not None and juki.batches_done >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    juki, fuhyo = _progress(killed)
    batches = -(-round(n * 1.25) // batch) + -(-round(n * 0.15) // batch)
    assert 3 <= juki.batches_done < batches and not juki.complete and not fuhyo.complete   # half-written, not complete
    with pytest.raises(JukinetError) as e:                  # another population cannot continue it
        populate(killed, n + 1, seed=SEED, batch_size=batch)
    assert e.value.code == "SEED_RESUME_MISMATCH"
    populate(killed, n, seed=SEED, batch_size=batch)        # run again: continues where it stopped

    whole = _registers(tmp_path, "whole", backend, request)
    populate(whole, n, seed=SEED, batch_size=batch)
    _assert_same(_dump(killed), _dump(whole))


def test_q1_seed_refuses_a_completed_seed_and_another_prefecture(tmp_path, backend, request):
    regs = _registers(tmp_path, "done", backend, request)
    populate(regs, 50, seed=1)
    with pytest.raises(JukinetError) as e:
        populate(regs, 50, seed=1)
    assert e.value.code == "SEED_ALREADY_DONE" and "投入済み" in e.value.message

    # the same database, now configured for 東京都 (e.g. `init --db-url` onto a database that holds 三重県)
    regs.config.prefecture_code = geo.prefecture("13").code
    with pytest.raises(JukinetError) as e:
        populate(regs, 50, seed=1)
    assert e.value.code == "SEED_OTHER_PREFECTURE" and "三重県" in e.value.message
    for engine, t in ((regs.juki_engine, juki_seed_progress), (regs.fuhyo_engine, fuhyo_seed_progress)):
        with engine.begin() as c:                           # data without a seed record: judged by its codes
            c.execute(t.delete())
    with pytest.raises(JukinetError) as e:
        populate(regs, 50, seed=1)
    assert e.value.code == "SEED_OTHER_PREFECTURE"
    regs.config.prefecture_code = geo.prefecture("24").code
    with pytest.raises(JukinetError) as e:
        populate(regs, 50, seed=1)
    assert e.value.code == "SEED_NOT_EMPTY"


def test_q1_seed_workers_give_the_same_rows(tmp_path, backend, request):
    """ADR 0057: the batches generated in 0 (a thread of the seed), 1 or 2 worker processes, and cut into
    batches that start inside a block of persons (130) or not (500), are the same rows."""
    n = 1000
    runs = {}
    for name, workers, batch in (("inline", 0, 130), ("one", 1, 500), ("two", 2, 130)):
        regs = _registers(tmp_path, name, backend, request)
        report = populate(regs, n, seed=SEED, batch_size=batch, workers=workers)
        runs[name] = (report.juki_rows, report.fuhyo_rows, report.history), _dump(regs)
    (counts, inline), (counts_one, one), (counts_two, two) = runs["inline"], runs["one"], runs["two"]
    assert counts == counts_one == counts_two and counts[2] > 0
    for d in (one, two):
        for k in inline:
            if k.endswith("seed_progress"):   # the batch size and count differ with the batch size
                continue
            assert len(inline[k]) == len(d[k]), k
            assert inline[k] == d[k], k


def test_q1_seed_in_progress_of_another_population_is_not_resumed(tmp_path, backend, request):
    """A seed in progress whose persons are not the ones generated again (e.g. started by a version before
    ADR 0057, whose random streams differed) is refused, not continued into a mixed population."""
    regs = _registers(tmp_path, "mixed", backend, request)
    populate(regs, 300, seed=SEED, batch_size=100)
    first = Generator(300, SEED).juminhyo_code(0)
    for engine, t in ((regs.juki_engine, juki_seed_progress), (regs.fuhyo_engine, fuhyo_seed_progress)):
        with engine.begin() as c:                           # as if killed after two batches
            c.execute(update(t).values(batches_done=2, complete=False))
    with regs.juki_engine.begin() as c:                     # person 0 is someone else in the stored population
        c.execute(update(juki_current).where(juki_current.c.juminhyo_code == first).values(address="別の住所"))
    with pytest.raises(JukinetError) as e:
        populate(regs, 300, seed=SEED, batch_size=100)
    assert e.value.code == "SEED_RESUME_MISMATCH"
    with regs.juki_engine.connect() as c:
        assert not c.execute(select(juki_seed_progress.c.complete)).scalar_one()     # still a seed in progress
