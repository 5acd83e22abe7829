"""The operator side on a full PostgreSQL disk (A4, P2, Q2; issue 17, ADR 0051 — ADR 0038 did SQLite's
full disk and the read-only database).

Made real: the installation's database lives in a tablespace on a small tmpfs (:mod:`jukinet_small_disk`)
filled to the last page by a filler file; a probe write gets SQLSTATE 53100 "could not extend file".

* The operation log fails closed: a search whose log entry cannot be written shows nothing and is
  answered 503 ``STORAGE_UNAVAILABLE`` (coded, Japanese, ``Retry-After``) — not the results, not 500,
  and not 400 ``OPLOG_UNAVAILABLE`` as before ADR 0051 (a fault of the disk is not the request's);
  the search screen says 一時的に処理できません with the same message (503), not 入力内容を確認してください.
* A provision request (the terminal API) is refused the same way and changes nothing: no 提供記録,
  no operation-log entry, in any chain.
* Space returns (the file system remounted bigger, the filler still there): the same search and the
  same provision succeed, without a restart.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text as sql

from intake.helpers import jcode
from jukinet.store.faults import RETRY_AFTER_SECONDS, StorageUnavailable
from jukinet.store.tables_security import OPLOG
import jukinet_small_disk as disk
from jukinet_small_disk import admin_url_of, until_refused, write_refusal
from operator_site import add_operator, juki, make_site, seed_people

backend, config, small_disk, drill_server = disk.backend, disk.config, disk.small_disk, disk.drill_server    # fixtures: PostgreSQL on the small disk

pytestmark = pytest.mark.xdist_group("postgres_full_disk")
SEARCH = {"purpose_code": "inquiry", "name": "ヤマダ", "name_match": "prefix", "case_ref": "c-1"}
NUMBERED = juki(jcode(9001), "鈴鹿　美咲", "スズカ　ミサキ", date(1975, 8, 9), sex="2", address="三重県津市大門7番15号")
PROVIDE = {"requester_code": "SOMU", "affair_code": "SOMU-KENZEI", "juminhyo_code": NUMBERED.juminhyo_code}


@pytest.fixture
def site(config, registers):
    """The operator app with the shipped provision catalogue and an operator for 事務2 (PROV)."""
    from jukinet.cli.provision import load_default_catalogue

    load_default_catalogue(config)
    s = make_site(config, registers)
    seed_people(registers)
    with registers.juki_uow() as uow:
        uow.repo.apply(NUMBERED)
    add_operator(s, "prov", "PROV", roles=["operator"], registers=["juki"], affairs=["provision"])
    return s


def written(registers) -> dict:
    """What a search or a provision writes: every operation-log chain and its head, the 提供記録."""
    out = {}
    for chain, (log, head) in OPLOG.items():
        with registers.engine(chain).connect() as c:
            out[chain] = [tuple(r) for r in c.execute(select(log).order_by(log.c.seq))]
            out[chain + "_head"] = [tuple(r) for r in c.execute(select(head))]
    for register in ("juki", "fuhyo"):
        with registers.engine(register).connect() as c:
            out[register + "_provision"] = [tuple(r) for r in c.execute(sql(
                "SELECT * FROM provision_records ORDER BY record_id"))]
    return out


def assert_storage_unavailable(r) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.json() == {"error": StorageUnavailable().as_dict()}
    assert int(r.headers["retry-after"]) == RETRY_AFTER_SECONDS
    assert "山田" not in r.text and "鈴鹿" not in r.text and NUMBERED.juminhyo_code not in r.text


def test_a4_p2_q2_postgres_full_disk_search_fails_closed_provision_refused_and_both_resume(small_disk, site):
    search = site.api("operator_both")
    prov = site.api("prov")
    ok = search.post("/api/v1/search", json=SEARCH)
    assert ok.status_code == 200 and ok.json()["total"] > 0, ok.text[:300]
    p = prov.post("/api/v1/provision", json=PROVIDE)
    assert p.status_code == 200 and p.json()["outcome"] == "provided", p.text[:300]

    small_disk.fill()
    state, message = write_refusal(admin_url_of(site.registers.engine("juki")))
    assert state == "53100" and "could not extend file" in message, (state, message)

    # the operation log fails closed: no entry, no results
    r, before = until_refused(lambda: written(site.registers), lambda: search.post("/api/v1/search", json=SEARCH))
    assert_storage_unavailable(r)
    assert "total" not in r.json()
    ui = site.client("operator_both").post("/search", data={**SEARCH, "registers": ["juki"],
                                                            "csrf_token": site.csrf("operator_both")},
                                           follow_redirects=True)
    assert ui.status_code == 503 and int(ui.headers["retry-after"]) == RETRY_AFTER_SECONDS   # the screen too
    assert 'data-code="STORAGE_UNAVAILABLE"' in ui.text and StorageUnavailable.message in ui.text
    assert "一時的に処理できません" in ui.text and "入力内容を確認してください" not in ui.text and "山田" not in ui.text
    assert written(site.registers) == before

    # a provision request: a coded refusal, nothing recorded anywhere
    r, before = until_refused(lambda: written(site.registers), lambda: prov.post("/api/v1/provision", json=PROVIDE))
    assert_storage_unavailable(r)
    assert written(site.registers) == before

    small_disk.grow(small_disk.size_mb * 2)                    # space returns; nothing restarted
    again = search.post("/api/v1/search", json=SEARCH)
    assert again.status_code == 200 and again.json()["total"] == ok.json()["total"], again.text[:300]
    p = prov.post("/api/v1/provision", json=PROVIDE)
    assert p.status_code == 200 and p.json()["outcome"] == "provided", p.text[:300]
    after = written(site.registers)
    assert len(after["juki_provision"]) == len(before["juki_provision"]) + 1
