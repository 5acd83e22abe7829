"""Q1 (issue 14; ADR 0055): the running center's control door pauses and resumes one tenant.

Only from loopback with the control token (``CENTER_CONTROL_FORBIDDEN`` otherwise, in the center log).
A paused tenant's CS get 503 ``TENANT_MOVING`` with ``Retry-After`` (nothing done), the other tenant is
served; resume opens the tenant again from its configuration (a new runtime) and serves it; a pause
whose mover never resumes it ends by itself after its lease. SQLite and PostgreSQL."""

from __future__ import annotations

import time

import httpx
import pytest
from jukinet_testing import BACKENDS
from test_q1_center import MIE_NAME, NAKA, TSU, AICHI_NAME, cs_client, jcode, juki_codes, make_center, notification

from jukinet.center.move import control
from jukinet.center_server import CenterServer
from jukinet.errors import JukinetError


@pytest.mark.parametrize("backend", BACKENDS)
def test_q1_control_door_pauses_and_resumes_one_tenant(backend, tmp_path, request):
    c = make_center(tmp_path, backend, request, prefectures=(24, 23))
    srv = CenterServer(c, outbox=False).start()
    base = f"http://127.0.0.1:{c.port}"
    try:
        token = c.control_token()
        assert token and oct(c.control_token_path.stat().st_mode & 0o777) == "0o600"
        for headers in ({}, {"X-Jukinet-Center-Control": "wrong"}):
            r = httpx.post(f"{base}/center/api/tenants/24/pause", headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "CENTER_CONTROL_FORBIDDEN"
        assert [e for e in c.read_log() if e["event"] == "control_refused"]
        assert not srv.tenants[24].paused
        with pytest.raises(JukinetError) as e:
            control(c, 21, "pause")                      # not hosted
        assert e.value.code == "CENTER_PAUSE_FAILED" and "TENANT_UNKNOWN" in e.value.message

        first = srv.tenants[24]
        assert control(c, 24, "pause")["state"] == "paused"
        m_code, a_code = jcode(24_500_001), jcode(23_500_001)
        with cs_client(c, srv, 24, TSU) as cs:
            r = cs.post("/cs/v1/notifications", json=notification("p-1", TSU, m_code, MIE_NAME, "ミエ\u3000イチロウ"))
            assert r.status_code == 503 and r.json()["error"]["code"] == "TENANT_MOVING" and r.headers["retry-after"]
        with cs_client(c, srv, 23, NAKA) as cs:          # the other tenant is served
            r = cs.post("/cs/v1/notifications", json=notification("a-1", NAKA, a_code, AICHI_NAME, "アイチ\u3000ハナコ"))
            assert r.status_code == 200, r.text
        status = {t["prefecture"]: t for t in httpx.get(f"{base}/center/api/status").json()["tenants"]}
        assert status[24]["health"] == "moving" and status[23]["health"] == "ok"

        assert control(c, 24, "resume")["state"] == "serving"
        assert srv.tenants[24] is not first and not srv.tenants[24].paused
        with cs_client(c, srv, 24, TSU) as cs:           # the same notification, resent: now applied
            r = cs.post("/cs/v1/notifications", json=notification("p-1", TSU, m_code, MIE_NAME, "ミエ\u3000イチロウ"))
            assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        assert m_code in juki_codes(srv.tenants[24].installation)
        assert m_code not in juki_codes(srv.tenants[23].installation)
        with pytest.raises(JukinetError) as e:
            control(c, 24, "resume")
        assert "CENTER_NOT_PAUSED" in e.value.message

        # a mover that never comes back: the lease ends the pause
        control(c, 24, "pause", lease=5)
        assert srv.tenants[24].paused
        deadline = time.time() + 30
        while time.time() < deadline and srv.tenants[24].paused:
            time.sleep(0.2)
        assert not srv.tenants[24].paused
        events = [e["event"] for e in c.read_log() if e.get("prefecture") == 24]
        assert events.count("tenant_paused") == 2 and "tenant_pause_expired" in events
        with cs_client(c, srv, 24, TSU) as cs:
            r = cs.post("/cs/v1/notifications", json=notification("p-2", TSU, jcode(24_500_002), MIE_NAME, "ミエ\u3000ジロウ"))
            assert r.status_code == 200, r.text
    finally:
        srv.stop()
