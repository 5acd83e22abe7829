"""Q1 (issue 14; ADR 0045): ``jukinet center serve`` runs each tenant's daily jobs (OpsScheduler:
retention, backup, monthly analysis, checkpoints) beside its outbox worker, one set per tenant; a
tenant whose jobs fail to start is logged by code in the center log and shown on the operations
view, and the other tenants' jobs and intake keep running. SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from jukinet_testing import BACKENDS
from test_q1_center import TSU, MIE_NAME, NAKA, AICHI_NAME, cs_client, jcode, juki_codes, make_center, notification

from jukinet.center_server import CenterServer
from jukinet.scheduler import OpsScheduler
from jukinet.errors import JukinetError


@pytest.mark.parametrize("backend", BACKENDS)
def test_q1_center_serve_runs_each_tenants_scheduler_and_one_failure_leaves_the_others_running(
        backend, tmp_path, request, monkeypatch):
    c = make_center(tmp_path, backend, request, prefectures=(24, 23))
    real_start = OpsScheduler.start

    def start(self):           # 愛知県's jobs cannot start (e.g. its key store is unreadable)
        if self.config.prefecture_code == "230006":
            raise JukinetError("KEYSTORE_UNREADABLE", "鍵を読めません。")
        return real_start(self)

    monkeypatch.setattr(OpsScheduler, "start", start)
    srv = CenterServer(c, outbox=False, schedulers=True).start()
    try:
        mie, aichi = srv.tenants[24], srv.tenants[23]
        # 三重県's jobs run on its own installation: the start checkpoint of each of its own chains
        assert mie.scheduler_state == "running" and mie.scheduler is not None
        assert mie.scheduler.checkpoint_outcome == "ok" and mie.scheduler.checkpoint_at is not None
        assert mie.app.state.ops_scheduler is mie.scheduler
        assert mie.scheduler.config.data_dir == mie.installation.config.data_dir
        # its daily backup goes under its own key into its own directory
        shot = mie.scheduler.run_backup_once()
        assert shot is not None and mie.installation.config.data_dir in shot.path.parents
        # 愛知県's failure: by code, in the center log and on the operations view; nothing else stops
        assert aichi.scheduler is None and aichi.scheduler_state == "KEYSTORE_UNREADABLE"
        assert any(e["event"] == "scheduler_failed" and e.get("code") == "KEYSTORE_UNREADABLE"
                   and e.get("prefecture") == 23 for e in c.read_log())
        rows = {r["prefecture"]: r for r in httpx.get(f"http://127.0.0.1:{c.port}/center/api/status").json()["tenants"]}
        assert rows[24]["scheduler"] == "running" and rows[23]["scheduler"] == "KEYSTORE_UNREADABLE"
        assert "KEYSTORE_UNREADABLE" in httpx.get(f"http://127.0.0.1:{c.port}/center/ops").text
        # both tenants still take notifications
        for tenant, muni, code, name, kana in ((24, TSU, jcode(24_100_001), MIE_NAME, "ミエ\u3000イチロウ"),
                                              (23, NAKA, jcode(23_100_001), AICHI_NAME, "アイチ\u3000ハナコ")):
            with cs_client(c, srv, tenant, muni) as cs:
                r = cs.post("/cs/v1/notifications", json=notification(f"s-{tenant}", muni, code, name, kana))
                assert r.status_code == 200, r.text
            assert code in juki_codes(srv.tenants[tenant].installation)
    finally:
        srv.stop()
    assert mie.scheduler._stop.is_set()             # stopped with the center
