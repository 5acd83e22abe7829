"""Q1 (issue 14; ADR 0049): a resident moves from 津市 (三重県, 242012) to 名古屋市中区 (愛知県, 231061)
inside one consolidated center. 津市's CS sends the 国内転出 to 三重県's tenant, 名古屋市中区's CS the
国内転入 to 愛知県's tenant; each tenant's register holds only its own part of the person's history,
and each forwards only its own notifications, in order, to its own national simulator. SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from jukinet_testing import BACKENDS
from sqlalchemy import select
from test_q1_center import AICHI_NAME, NAKA, TSU, cs_client, free_port, jcode, make_center, notification

from jukinet import geo
from jukinet.center_server import CenterServer
from jukinet.config import Config
from jukinet.intake.service import today_jst
from jukinet.outbox.worker import outbox_counts
from jukinet.sim.national import start_national
from jukinet.store.tables import juki_current, juki_history

KANA = "アイチ\u3000ハナコ"


def _versions(inst, code: str) -> list[dict]:
    """Every version of ``code`` in the tenant's 都道府県知事保存本人確認情報, oldest first."""
    with inst.registers.juki_uow(write=False) as uow:
        rows = [dict(r._mapping) for r in uow.conn.execute(select(juki_history).where(juki_history.c.juminhyo_code == code))]
        rows += [dict(r._mapping) for r in uow.conn.execute(select(juki_current).where(juki_current.c.juminhyo_code == code))]
    return sorted(rows, key=lambda r: r["update_seq"])


def _municipalities(inst) -> set[str]:
    with inst.registers.juki_uow(write=False) as uow:
        return set(uow.conn.execute(select(juki_current.c.municipality_code)).scalars()) | \
            set(uow.conn.execute(select(juki_history.c.municipality_code)).scalars())


def _delivered(inst, timeout=60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and outbox_counts(inst.registers, "juki").get("pending"):
        time.sleep(0.1)
    assert not outbox_counts(inst.registers, "juki").get("pending")


@pytest.mark.parametrize("backend", BACKENDS)
def test_q1_move_from_tsu_to_nagoya_splits_between_the_two_prefectures(backend, tmp_path, request):
    c = make_center(tmp_path, backend, request, prefectures=(24, 23))
    nationals = {}
    for t in c.tenants:                       # each prefecture's own national simulators
        cfg = Config.load(c.tenant_dir(t))
        cfg.national.port, cfg.national.fuhyo_port = free_port(), free_port()
        cfg.save()
        nationals[t.prefecture] = start_national(cfg, synthetic=0)
    srv = CenterServer(c, outbox=True).start()
    try:
        mie, aichi = srv.tenants[24].installation, srv.tenants[23].installation
        code = jcode(24_123_457)
        moved_in = notification("tsu-1", TSU, code, AICHI_NAME, KANA)          # lived in 津市 first
        moved_in["change_date"] = (today_jst() - timedelta(days=3)).isoformat()
        out = dict(moved_in, notification_id="tsu-2", reason="国内転出",
                   change_date=(today_jst() - timedelta(days=1)).isoformat())
        with cs_client(c, srv, 24, TSU) as cs:
            for n in (moved_in, out):
                r = cs.post("/cs/v1/notifications", json=n)
                assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        _delivered(mie)

        naka = geo.by_code(NAKA)
        town = geo.towns(NAKA)[0]
        into = notification("naka-1", NAKA, code, AICHI_NAME, KANA)
        into["record"]["address"] = f"{naka.address_prefix}{town.name}2番地"
        into["change_date"] = (today_jst() - timedelta(days=1)).isoformat()
        with cs_client(c, srv, 23, NAKA) as cs:
            r = cs.post("/cs/v1/notifications", json=into)
            assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
            # the same 転出 (津市's code) sent by 名古屋市's CS names 三重県's files: refused by the center (ADR 0053)
            r = cs.post("/cs/v1/notifications", json=dict(out, notification_id="naka-x"))
            assert r.status_code == 403 and r.json()["error"]["code"] == "TENANT_MISMATCH", r.text
        _delivered(aichi)

        # 三重県's files: the 転入 and the 消除 (国内転出) in 津市, nothing of 名古屋市
        m = _versions(mie, code)
        assert [(v["reason"], v["municipality_code"]) for v in m] == [("国内転入", TSU), ("国内転出", TSU)]
        assert all(not v["address"].startswith(naka.address_prefix) for v in m)
        assert _municipalities(mie) == {TSU}
        # 愛知県's files: only the 転入 in 名古屋市中区, nothing of 津市
        a = _versions(aichi, code)
        assert [(v["reason"], v["municipality_code"]) for v in a] == [("国内転入", NAKA)]
        assert a[0]["address"] == into["record"]["address"]
        assert _municipalities(aichi) == {NAKA}

        # each prefecture's national simulator received its own notifications, in order
        got = {n: [row for row in nationals[n][0][1].dump() if row["juminhyo_code"] == code] for n in (24, 23)}
        assert [(x["reason"], x["municipality_code"]) for x in got[24]] == [("国内転入", TSU), ("国内転出", TSU)]
        assert [(x["reason"], x["municipality_code"]) for x in got[23]] == [("国内転入", NAKA)]
        assert got[24][-1]["received_at"] <= got[23][0]["received_at"]      # 転出 reached the nation first
        assert not any(x["out_of_order"] for x in got[24] + got[23])
    finally:
        srv.stop()
        for running in nationals.values():
            for t, store in running:
                t.stop()
                store.close()
