"""A3 (least privilege) for the 個人番号 on the operator screens (issue 19): masked by default
(●●●●●●●●9018) whatever the stated purpose; shown in full only through 「個人番号を表示」, a POST that is
offered, allowed and logged only for a purpose that needs the number, and refused and logged otherwise."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select

from jukinet.store.tables_security import OPLOG
from operator_site import juki, site  # noqa: F401  (fixture)

NUMBER = "123456789018"           # a valid 個人番号 (check digit 8)
CODE = "10000000011"


def _seed_person_with_number(site):
    with site.registers.juki_uow() as uow:
        uow.repo.apply(juki(CODE, "番号　花子", "バンゴウ　ハナコ", date(1975, 6, 1), sex="2")
                       .replace(kojin_bango=NUMBER))


def _last(site, chain="juki"):
    log, _ = OPLOG[chain]
    with site.registers.engine(chain).connect() as conn:
        return conn.execute(select(log).order_by(log.c.seq.desc())).first()


def _detail(site, purpose, persona="operator_juki"):
    c = site.client(persona)
    return c.post("/detail", data={"csrf_token": site.csrf(persona), "register": "juki", "juminhyo_code": CODE,
                                   "purpose_code": purpose})


def _reveal(site, purpose, persona="operator_juki"):
    c = site.client(persona)
    return c.post("/detail/kojin-bango", data={"csrf_token": site.csrf(persona), "juminhyo_code": CODE,
                                               "purpose_code": purpose})


def test_a3_detail_page_never_shows_the_full_kojin_bango_by_default(site):
    _seed_person_with_number(site)
    for purpose in ("inquiry", "correction", "verify", "audit"):
        r = _detail(site, purpose)
        assert r.status_code == 200 and "番号　花子" in r.text
        assert NUMBER not in r.text, purpose
        assert "●●●●●●●●9018" in r.text
    # the reveal is offered only where the stated purpose needs the number
    assert "個人番号を表示" not in _detail(site, "inquiry").text
    assert "個人番号を表示" not in _detail(site, "audit").text
    assert "個人番号を表示" in _detail(site, "correction").text


def test_a3_kojin_bango_reveal_is_refused_and_logged_for_a_purpose_that_does_not_need_it(site):
    _seed_person_with_number(site)
    r = _reveal(site, "inquiry")        # 「住民・本人からの問合せへの対応」
    assert r.status_code == 403
    assert NUMBER not in r.text
    assert "個人番号を表示できません" in r.text and "KOJIN_BANGO_NOT_NEEDED" in r.text
    e = _last(site)
    assert (e.action, e.outcome, e.operator_id, e.purpose_code) == ("kojin_bango_reveal", "refused", "OPERATOR-JUKI",
                                                                     "inquiry")
    assert json.loads(e.detail)["code"] == "KOJIN_BANGO_NOT_NEEDED"
    # an operator without the search affair is refused before anything is read
    r = _reveal(site, "correction", persona="operator_noaffair")
    assert r.status_code == 403 and NUMBER not in r.text


def test_a3_kojin_bango_reveal_is_allowed_and_logged_for_a_purpose_that_needs_it(site):
    _seed_person_with_number(site)
    r = _reveal(site, "correction")     # 「訂正等の申出の調査」
    assert r.status_code == 200
    assert NUMBER in r.text and "操作ログに記録しました" in r.text
    e = _last(site)
    assert (e.action, e.outcome, e.operator_id, e.purpose_code, e.result_count) == (
        "kojin_bango_reveal", "granted", "OPERATOR-JUKI", "correction", 1)
    # the log holds the keyed digest of the 住民票コード, never the number or the code
    assert NUMBER not in (e.keys + e.detail) and CODE not in (e.keys + e.detail)
    assert set(json.loads(e.keys)) == {"juminhyo_code"}


# ---- the terminal API (ADR 0042): the same rule as the screen --------------------------------------

def _api_detail(site, purpose, persona="operator_juki", **extra):
    return site.api(persona).post("/api/v1/persons/detail", json={"purpose_code": purpose, "register": "juki",
                                                                  "juminhyo_code": CODE, **extra})


def test_a3_api_detail_masks_the_kojin_bango_by_default(site):
    _seed_person_with_number(site)
    with site.registers.juki_uow() as uow:       # an earlier version, so the history carries a number too
        cur = uow.repo.get(CODE)
        uow.repo.apply(cur.replace(address="三重県津市栄町一丁目1番地"), previous=cur)
    for purpose in ("inquiry", "correction", "verify", "audit"):
        r = _api_detail(site, purpose)
        assert r.status_code == 200, r.text
        assert NUMBER not in r.text, purpose
        body = r.json()
        assert body["record"]["kojin_bango"] == "●●●●●●●●9018" and body["kojin_bango_revealed"] is False
        assert body["history"] and all(h["kojin_bango"] in ("●●●●●●●●9018", None) for h in body["history"])
    assert _last(site).action == "detail"        # no reveal was logged


def test_a3_api_detail_reveal_is_refused_and_logged_for_a_purpose_that_does_not_need_it(site):
    _seed_person_with_number(site)
    r = _api_detail(site, "inquiry", reveal_kojin_bango=True)
    assert r.status_code == 403 and NUMBER not in r.text
    assert r.json()["error"]["code"] == "KOJIN_BANGO_NOT_NEEDED"
    e = _last(site)
    assert (e.action, e.outcome, e.purpose_code) == ("kojin_bango_reveal", "refused", "inquiry")
    # refused before anything was read: no "detail" entry after the previous one
    log, _ = OPLOG["juki"]
    with site.registers.engine("juki").connect() as conn:
        actions = [a for (a,) in conn.execute(select(log.c.action).order_by(log.c.seq))]
    assert "detail" not in actions
    # the 附票 file never holds a number: an input error, not a refusal
    r = site.api("operator_both").post("/api/v1/persons/detail", json={
        "purpose_code": "correction", "register": "fuhyo", "juminhyo_code": CODE, "reveal_kojin_bango": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "KOJIN_BANGO_NOT_HELD"


def test_a3_api_detail_reveal_for_a_purpose_that_needs_it_is_a_logged_action(site):
    _seed_person_with_number(site)
    r = _api_detail(site, "correction", reveal_kojin_bango=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["record"]["kojin_bango"] == NUMBER and body["kojin_bango_revealed"] is True
    e = _last(site)
    assert (e.action, e.outcome, e.operator_id, e.purpose_code, e.result_count) == (
        "kojin_bango_reveal", "granted", "OPERATOR-JUKI", "correction", 1)
    assert NUMBER not in (e.keys + e.detail) and CODE not in (e.keys + e.detail)
