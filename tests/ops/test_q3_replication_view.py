"""Q3 / A7 (ADR 0044): the operations view and the Prometheus metrics show the replicated cluster's
members, roles, lag (bytes and seconds) and timeline — read from Patroni's REST API — and a degraded
cluster (a standby gone, no synchronous standby, no answer at all) as a fault with its code.

Here the REST API is a stand-in that answers what Patroni 3.0.2 answers (``GET /cluster``,
``GET /patroni``, the JSON captured from the local cluster), so these run on both engines without
the Debian packages; ``tests/ha`` reads a real cluster.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from jukinet.cluster import replication as R
from jukinet.ops import status as S
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import operators
from jukinet.web import auth as A
from jukinet.web.app import create_app

ADMIN = Actor("bootstrap", None)


class FakePatroni:
    """Three nodes' REST APIs on one server: ``/pgN/cluster`` and ``/pgN/patroni``."""

    def __init__(self):
        self.down: set[str] = set()            # nodes whose API does not answer
        self.cluster = {}
        self.own = {}
        fake = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                node, _, what = self.path.strip("/").partition("/")
                if node in fake.down:
                    self.send_response(502)
                    self.end_headers()
                    return
                body = fake.cluster if what == "cluster" else fake.own.get(node)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.healthy()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def member(self, name, role, state, lag=None, timeline=2):
        m = {"name": name, "role": role, "state": state, "api_url": f"{self.base}/{name}/patroni",
             "host": "127.0.0.1", "port": 25410 + int(name[-1]), "timeline": timeline}
        if role != "leader":
            m["lag"] = lag
        return m

    def healthy(self):
        self.down.clear()
        self.cluster = {"members": [self.member("pg1", "leader", "running"),
                                    self.member("pg2", "sync_standby", "streaming", 0),
                                    self.member("pg3", "replica", "streaming", 0)]}
        replayed = (datetime.now(timezone.utc) - timedelta(seconds=40)).isoformat()
        self.own = {"pg1": {"state": "running", "role": "master", "timeline": 2, "xlog": {"location": 50331800}},
                    "pg2": {"state": "running", "role": "replica", "sync_standby": True, "timeline": 2,
                            "xlog": {"received_location": 50331800, "replayed_location": 50331800,
                                     "replayed_timestamp": replayed, "paused": False}},
                    "pg3": {"state": "running", "role": "replica", "timeline": 2,
                            "xlog": {"received_location": 50331800, "replayed_location": 50331800,
                                     "replayed_timestamp": replayed, "paused": False}}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def patroni():
    f = FakePatroni()
    yield f
    f.close()


@pytest.fixture
def site(config, registers, patroni):
    config.cluster.patroni_urls = [f"{patroni.base}/pg{i}" for i in (1, 2, 3)]
    app = create_app(config, registers)
    sec = app.state.security
    _, code = sec.add_terminal(ADMIN, "運用端末1")
    tid, secret = sec.activate_terminal(code)
    op, _ = sec.register_operator(ADMIN, display_name="運用 担当", roles=["operations"], registers=[], affairs=[],
                                  operator_id="OPERATIONS")
    with registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
        token = sec._start_session(conn, sec.get_operator(op.operator_id), tid, "test", datetime.now(timezone.utc)).token
    c = TestClient(app, base_url="http://localhost:8700", client=("127.0.0.1", 40000))
    c.cookies.set(A.TERMINAL_COOKIE, f"{tid}.{secret}")
    c.cookies.set(A.SESSION_COOKIE, token)
    c.api_headers = {A.TERMINAL_HEADER: f"{tid}.{secret}", "Authorization": f"Bearer {token}"}
    return c


def api(c: TestClient) -> TestClient:
    return TestClient(c.app, base_url="http://localhost:8700", headers=c.api_headers)


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_q3_ops_shows_members_roles_lag_and_timeline_from_patroni(site, patroni):
    page = site.get("/ops")
    assert page.status_code == 200
    html = page.text
    assert 'id="ops-cluster" data-healthy="yes" data-leader="pg1" data-sync="pg2"' in html
    assert 'id="member-pg1" data-role="leader" data-up="yes"' in html
    assert 'id="member-pg2" data-role="sync_standby" data-up="yes"' in html
    assert 'id="member-pg3" data-role="replica" data-up="yes"' in html
    assert "同期スタンバイ" in html and "非同期スタンバイ" in html and "タイムライン 2" in html
    st = api(site).get("/api/v1/ops/status").json()
    rep = st["cluster"]["replication"]
    assert rep["healthy"] and rep["leader"] == "pg1" and rep["sync_standby"] == "pg2" and rep["timeline"] == 2
    lags = {m["name"]: (m["lag_bytes"], m["lag_seconds"]) for m in rep["members"]}
    assert lags == {"pg1": (None, 0.0), "pg2": (0, 0.0), "pg3": (0, 0.0)}   # replayed all: 0 s, though idle 40 s
    m = samples(site.get("/metrics").text)
    assert m[("jukinet_cluster_healthy", ())] == 1
    assert m[("jukinet_cluster_timeline", ())] == 2
    assert m[("jukinet_cluster_sync_standbys", ())] == 1
    assert m[("jukinet_cluster_member_up", (("member", "pg2"), ("role", "sync_standby")))] == 1
    assert m[("jukinet_cluster_member_lag_bytes", (("member", "pg3"),))] == 0
    assert m[("jukinet_cluster_member_lag_seconds", (("member", "pg3"),))] == 0


def test_q3_ops_shows_a_lost_standby_and_a_lagging_one_as_degraded(site, patroni):
    # pg2 killed: its API is gone, the DCS still lists it until its key expires; pg3 behind by 20 MiB
    patroni.down.add("pg2")
    patroni.cluster["members"][2]["lag"] = 20 << 20
    patroni.own["pg3"]["xlog"]["replayed_location"] = 50331800 - (20 << 20)
    html = site.get("/ops").text
    assert 'id="ops-overall" data-status="degraded"' in html
    assert 'id="ops-cluster" data-healthy="no"' in html
    assert 'id="member-pg2" data-role="sync_standby" data-up="no"' in html and "応答なし" in html
    assert 'data-code="CLUSTER_MEMBER_DOWN"' in html and 'data-code="CLUSTER_LAG_HIGH"' in html
    rep = api(site).get("/api/v1/ops/status").json()["cluster"]["replication"]
    pg3 = next(m for m in rep["members"] if m["name"] == "pg3")
    assert pg3["lag_bytes"] == 20 << 20 and 39 <= pg3["lag_seconds"] <= 120   # age of its last replayed commit
    m = samples(site.get("/metrics").text)
    assert m[("jukinet_cluster_healthy", ())] == 0
    assert m[("jukinet_cluster_member_up", (("member", "pg2"), ("role", "sync_standby")))] == 0
    assert m[("jukinet_cluster_problems", (("code", "CLUSTER_MEMBER_DOWN"),))] == 1
    assert m[("jukinet_cluster_member_lag_seconds", (("member", "pg3"),))] >= 39


def test_q3_ops_shows_no_synchronous_standby_and_an_unreachable_cluster(site, patroni):
    # both standbys gone and their keys expired: writes wait (synchronous_mode_strict, ADR 0037)
    patroni.cluster["members"] = patroni.cluster["members"][:1]
    html = site.get("/ops").text
    assert 'data-code="CLUSTER_NO_SYNC_STANDBY"' in html and 'data-code="CLUSTER_MEMBER_MISSING"' in html
    assert "待機します" in html
    patroni.down |= {"pg1", "pg2", "pg3"}
    page = site.get("/ops")
    assert page.status_code == 200 and 'data-code="CLUSTER_UNREACHABLE"' in page.text
    m = samples(site.get("/metrics").text)
    assert m[("jukinet_cluster_reachable", ())] == 0 and m[("jukinet_cluster_healthy", ())] == 0


def test_q3_ops_shows_a_leader_that_lost_the_dcs_and_demoted_itself(site, patroni):
    # etcd lost its majority: the DCS (read from a lone member) still names pg1 leader, but pg1 has
    # demoted itself and no Patroni has reached the DCS for a minute
    stale = datetime.now(timezone.utc).timestamp() - 60
    for node in patroni.own.values():
        node["dcs_last_seen"] = int(stale)
    patroni.own["pg1"] = {"state": "running", "role": "replica", "timeline": 2, "dcs_last_seen": int(stale),
                          "xlog": {"received_location": 50331800, "replayed_location": 50331800}}
    html = site.get("/ops").text
    assert 'data-code="CLUSTER_LEADER_DEMOTED"' in html and 'data-code="CLUSTER_DCS_UNREACHABLE"' in html
    assert 'id="ops-overall" data-status="degraded"' in html
    m = samples(site.get("/metrics").text)
    assert m[("jukinet_cluster_problems", (("code", "CLUSTER_LEADER_DEMOTED"),))] == 1


def test_q3_no_cluster_configured_shows_no_cluster_section(config, registers):
    st = S.collect(registers, config, counts=False)
    assert st.cluster is None
    assert (st.archive is None) == (config.database.juki_url.startswith("sqlite"))
    assert st.ok


def test_q3_pgbackrest_info_is_summarised_and_its_failure_is_a_code():
    info = [{"status": {"code": 0, "message": "ok"}, "archive": [{"min": "000000010000000000000001",
                                                                   "max": "000000020000000000000007"}],
             "backup": [{"type": "full", "timestamp": {"start": 1765000000, "stop": 1765000010}},
                        {"type": "diff", "timestamp": {"start": 1765080000, "stop": 1765080005}}]}]

    class Run:
        returncode, stdout = 0, json.dumps(info)
    got = R.pgbackrest_info("/nonexistent/a.conf", "x", runner=lambda *a, **k: Run(), cache_seconds=0)
    assert (got.present, got.backups, got.last_backup_type, got.wal_max) == (True, 2, "diff", "000000020000000000000007")
    assert got.last_full_at == datetime.fromtimestamp(1765000010, timezone.utc)
    assert got.first_backup_at == got.last_full_at and got.last_backup_at.timestamp() == 1765080005

    class Bad:
        returncode, stdout = 1, ""
    assert R.pgbackrest_info("/nonexistent/b.conf", "x", runner=lambda *a, **k: Bad(),
                             cache_seconds=0).error_code == "PGBACKREST_INFO_FAILED"
