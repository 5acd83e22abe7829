"""A7 (ADR 0027): the request log and the Prometheus metrics the operations contractor reads hold no
personal data — after real flows that carry a resident's data (a search by name and birth date, a
detail view, a provision by 住民票コード and by 個人番号, a CS notification, a refused request, a
query string with a name in it, an exception quoting a name) — and they count what they should.
``/metrics`` answers loopback or a token only."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from datetime import date, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from jukinet import codes, wareki
from jukinet.observability import logs
from jukinet.store.tables_security import OPLOG
from operator_site import PEOPLE, add_operator, call, juki, make_site, seed_people

from intake.helpers import TSU, ensure_pki, jcode, tennyu

TARO = PEOPLE[0]


def kbango(n: int) -> str:
    first = f"{50000000000 + n:011d}"
    return first + codes.kojin_bango_check_digit(first)


NUMBERED = juki(jcode(9001), "鈴鹿　美咲", "スズカ　ミサキ", date(1975, 8, 9), sex="2",
                address="三重県津市大門7番15号")
NUMBERED_NO = kbango(8)
CS_PERSON = {"code": jcode(4242), "name": "伊賀　忍", "name_kana": "イガ　シノブ", "birth_date": "1966-06-06",
             "address": "三重県津市栄町3丁目115番地", "kojin_bango": kbango(4242)}


def personal_values() -> set[str]:
    vals = {NUMBERED_NO, CS_PERSON["kojin_bango"], *CS_PERSON.values()}
    for p in [*PEOPLE, NUMBERED]:
        vals |= {p.juminhyo_code, p.name, p.name_kana, p.address, p.birth_date.isoformat(), wareki.to_wareki(p.birth_date),
                 p.name.replace("\u3000", "")}
        vals |= {x for x in p.name.split("\u3000") + p.name_kana.split("\u3000") if len(x) >= 2}
    vals |= {x for x in (CS_PERSON["name"] + "\u3000" + CS_PERSON["name_kana"]).split("\u3000") if len(x) >= 2}
    return vals


def leaked(text: str) -> list[str]:
    return sorted(v for v in personal_values() if v and v in text)


@pytest.fixture
def site(config, registers):
    from jukinet.cli.provision import load_default_catalogue

    ensure_pki(config)
    load_default_catalogue(config)
    s = make_site(config, registers)
    seed_people(registers)
    with registers.juki_uow() as uow:
        uow.repo.apply(NUMBERED.replace(kojin_bango=NUMBERED_NO))
    add_operator(s, "prov", "PROV", roles=["operator"], registers=["juki"], affairs=["provision"],
                 display_name="提供 担当")
    pem = (config.resolve(config.tls.cs_dir) / f"{TSU}.pem").read_text()

    async def with_cs_cert(scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("extensions", {})["tls"] = {"client_cert_chain": [pem]}
        await s.app(scope, receive, send)

    s.cs = TestClient(with_cs_cert)
    s.local = TestClient(s.app, client=("127.0.0.1", 40000))
    return s


@pytest.fixture
def captured(config):
    """The process's log lines as ``jukinet serve`` writes them (JSON, level debug: the most said)."""
    buf = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in logs.QUIET})
    config.observability.log_level = "debug"
    handler = logs.configure(config, stream=buf)
    yield buf
    root.removeHandler(handler)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for n, level in saved[2].items():
        logging.getLogger(n).setLevel(level)


def samples(text: str) -> dict:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a7_logs_and_metrics_hold_no_personal_data_after_flows_with_personal_data(site, captured):
    # 事務5: search by name and birth date, then the detail view
    r = call(site, "operator_both", "ui", "POST", "/search",
             {"purpose_code": "inquiry", "name": TARO.name, "birth_from": TARO.birth_date.isoformat(),
              "registers": ["juki"]}, follow=True)
    assert r.status_code == 200 and TARO.juminhyo_code in r.text
    r = call(site, "operator_both", "ui", "POST", "/detail",
             {"purpose_code": "inquiry", "register": "juki", "juminhyo_code": TARO.juminhyo_code}, follow=True)
    assert r.status_code == 200 and "三重県津市丸之内1番1号" in r.text
    # 事務2: provision by 住民票コード and by 個人番号
    for key in ({"juminhyo_code": NUMBERED.juminhyo_code}, {"kojin_bango": NUMBERED_NO}):
        r = call(site, "prov", "api", "POST", "/api/v1/provision",
                 {"requester_code": "SOMU", "affair_code": "SOMU-KENZEI", **key})
        assert r.status_code == 200 and r.json()["outcome"] == "provided", r.text
    # 事務1: a CS notification of a new person
    n = tennyu(CS_PERSON["code"], name=CS_PERSON["name"], name_kana=CS_PERSON["name_kana"],
               birth_date=CS_PERSON["birth_date"], address=CS_PERSON["address"], kojin_bango=CS_PERSON["kojin_bango"])
    r = site.cs.post("/cs/v1/notifications", json=n)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    # refused: the operations contractor asks for a detail; a name in a query string; an unknown path
    r = call(site, "operations", "ui", "POST", "/detail",
             {"purpose_code": "inquiry", "register": "juki", "juminhyo_code": TARO.juminhyo_code})
    assert r.status_code == 403
    r = site.client("operator_both").get(f"/search?name={TARO.name}&birth={TARO.birth_date.isoformat()}")
    assert r.status_code == 200
    assert site.client("operator_both").get(f"/persons/{TARO.juminhyo_code}").status_code == 404
    # an exception whose message quotes a name (as a database error quotes a statement's values)
    try:
        raise ValueError(f"duplicate key (name)=({TARO.name})")
    except ValueError:
        logging.getLogger("jukinet.intake").exception("intake failed")

    metrics_text = site.local.get("/metrics").text
    log_text = captured.getvalue()
    assert not leaked(log_text), leaked(log_text)
    assert not leaked(metrics_text), leaked(metrics_text)
    assert TARO.name not in log_text and "?" not in "".join(
        json.loads(line).get("route", "") for line in log_text.splitlines())

    lines = [json.loads(line) for line in log_text.splitlines()]      # every line is one JSON object
    requests = [x for x in lines if x["event"] == "http_request"]
    detail = [x for x in requests if x["route"] == "/detail"]
    # Post/Redirect/Get (ADR 0043): the detail read answers 303 to /detail/view/…, which answers 200
    assert {(x["operator_id"], x["status"]) for x in detail} == {("OPERATOR-BOTH", 303), ("OPERATIONS", 403)}
    view = [x for x in requests if x["route"] == "/detail/view/{key}"]
    assert {(x["operator_id"], x["status"]) for x in view} == {("OPERATOR-BOTH", 200)}
    assert all({"time", "level", "logger", "request_id", "method", "route", "status", "duration_ms"} <= set(x)
               for x in requests)
    assert len({x["request_id"] for x in requests}) == len(requests)
    assert {"/search", "/api/v1/provision", "/cs/v1/notifications", "<unmatched>"} <= {x["route"] for x in requests}
    failed = [x for x in lines if x["event"] == "intake failed"]
    assert failed and failed[0]["exc_type"] == "ValueError" and "duplicate key" not in log_text

    m = samples(metrics_text)
    assert value(m, "jukinet_http_requests_total", method="POST", route="/detail", status="403") >= 1
    assert value(m, "jukinet_intake_notifications_total", register="juki", outcome="accepted", code="") >= 1
    assert value(m, "jukinet_oplog_appends_total", chain="juki", action="detail", outcome="granted") >= 1


def test_a7_refused_intake_counts_by_code_and_accepted_separately(site):
    before = samples(site.local.get("/metrics").text)
    n = tennyu(CS_PERSON["code"], name=CS_PERSON["name"], address=CS_PERSON["address"])
    assert site.cs.post("/cs/v1/notifications", json=n).status_code == 200
    reused = {**n, "reason": "転居", "record": {**n["record"], "address": "三重県津市大門1番1号"}}
    r = site.cs.post("/cs/v1/notifications", json=reused)
    assert r.status_code == 409 and r.json()["error"]["code"] == "NOTIFICATION_ID_REUSED"
    assert site.cs.post("/cs/v1/notifications", content=b"{not json").status_code == 400
    assert TestClient(site.app).post("/cs/v1/notifications", json=n).status_code == 401   # no certificate
    after = samples(site.local.get("/metrics").text)

    def delta(**labels):
        return (value(after, "jukinet_intake_notifications_total", **labels)
                - value(before, "jukinet_intake_notifications_total", **labels))

    assert delta(register="juki", outcome="accepted", code="") == 1
    assert delta(register="juki", outcome="refused", code="NOTIFICATION_ID_REUSED") == 1
    assert delta(register="juki", outcome="refused", code="BODY_NOT_JSON") == 1
    assert delta(register="juki", outcome="refused", code="CLIENT_CERT_REQUIRED") == 1
    d = after[("jukinet_outbox_depth", (("register", "juki"),))]
    assert d == 1 and after[("jukinet_outbox_oldest_age_seconds", (("register", "juki"),))] >= 0


def test_a7_http_metrics_are_labelled_by_route_template_never_the_path(site):
    c = site.client("auditor")
    assert c.get("/stats/csv/updates_juki?from=2026-01&to=2026-03").status_code == 200
    text = site.local.get("/metrics").text
    m = samples(text)
    assert value(m, "jukinet_http_requests_total", method="GET", route="/stats/csv/{source}", status="200") >= 1
    assert "updates_juki" not in text and "2026-03" not in text
    failures_before = value(m, "jukinet_login_failures_total", code="LOGIN_FAILED")
    r = site.client().post("/login/password", data={"operator_id": "AUDITOR", "password": "wrong", "totp": "1",
                                                    "csrf_token": "x"}, cookies={"jukinet_csrf": "x"})
    assert r.status_code in (401, 403)
    m = samples(site.local.get("/metrics").text)
    assert value(m, "jukinet_login_failures_total", code="LOGIN_FAILED") == failures_before + 1


def test_a7_metrics_only_from_loopback_or_with_the_token(site):
    def refusals() -> int:
        log, _ = OPLOG["admin"]
        with site.registers.admin_engine.connect() as conn:
            return len(conn.execute(select(log.c.seq).where(log.c.action == "metrics",
                                                            log.c.outcome == "refused")).all())

    remote = TestClient(site.app, client=("192.0.2.10", 40000))
    r = remote.get("/metrics")
    assert r.status_code == 403 and r.json()["error"]["code"] == "METRICS_FORBIDDEN" and refusals() == 1
    assert site.local.get("/metrics").status_code == 200
    obs = site.app.state.config.observability
    obs.metrics_token_sha256 = hashlib.sha256(b"s3cret-token").hexdigest()
    assert remote.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert remote.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    obs.metrics_loopback = False      # behind a reverse proxy on the same host: token only
    assert site.local.get("/metrics").status_code == 403
    assert site.local.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert refusals() == 3


def test_a7_ops_status_shows_backup_outbox_and_retention(site, config):
    from jukinet import retention

    api = site.api("operations")
    st = api.get("/api/v1/ops/status").json()
    assert st["backup"]["present"] is False and st["retention"][0]["last_run_at"] is None
    when = datetime(2026, 11, 25, 17, 30, tzinfo=timezone.utc)
    path = config.resolve(config.observability.backup_status_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"last_success_at": when.isoformat(), "last_failure_at": None,
                                "last_failure_code": None, "last_bytes": 123456789, "last_seconds": 42.5,
                                "last_file": "/srv/backup/jukinet-20261126.tar.enc"}))
    n = tennyu(CS_PERSON["code"], name=CS_PERSON["name"], address=CS_PERSON["address"])
    assert site.cs.post("/cs/v1/notifications", json=n).status_code == 200
    retention.run(site.registers)
    st = api.get("/api/v1/ops/status").json()
    assert st["status"] == "ok"
    assert {d["name"]: d["rows"]["juki_current"] for d in st["databases"] if d["name"] == "juki"} == {"juki": 9}
    assert all(d["reachable"] and d["up_to_date"] and d["size_bytes"] > 0 for d in st["databases"])
    assert st["outbox"][0] == {**st["outbox"][0], "register": "juki", "depth": 1, "failed": 0}
    assert st["backup"]["last_bytes"] == 123456789 and st["backup"]["last_file"] == "jukinet-20261126.tar.enc"
    assert st["retention"][0]["last_run_at"] is not None and st["retention"][0]["failed"] == 0
    page = site.client("operations").get("/ops")
    assert page.status_code == 200 and "令和8年11月26日 02:30:00" in page.text and "117.7 MiB" in page.text
    assert not leaked(page.text) and not leaked(json.dumps(st))
    m = samples(site.local.get("/metrics").text)
    assert value(m, "jukinet_backup_last_success_timestamp_seconds") == when.timestamp()
    assert value(m, "jukinet_backup_last_bytes") == 123456789
    assert value(m, "jukinet_retention_last_run_timestamp_seconds", register="juki") > 0
    path.write_text("{broken")
    st = api.get("/api/v1/ops/status").json()
    assert st["backup"]["present"] is False and st["backup"]["error_code"] == "BACKUP_STATUS_UNREADABLE"
    assert site.api("operator_both").get("/api/v1/ops/status").status_code == 403
    # the view is in the operation log; the refusal too
    log, _ = OPLOG["admin"]
    with site.registers.admin_engine.connect() as conn:
        rows = conn.execute(select(log.c.operator_id, log.c.outcome).where(log.c.action == "ops_status_api")).all()
    assert ("OPERATIONS", "granted") in rows and ("OPERATOR-BOTH", "refused") in rows
    assert timedelta(0) <= datetime.now(timezone.utc) - datetime.fromisoformat(st["at"]) < timedelta(minutes=1)


def test_a7_q4_ops_shows_large_tables_as_estimates_and_small_ones_exactly(site, monkeypatch):
    """ADR 0052: /ops no longer counts every row of the big tables on every view — a table the engine
    estimates at EXACT_BELOW rows or more shows that estimate, marked 約 on the screen and listed in
    ``estimated`` of the API; smaller tables are counted exactly."""
    from sqlalchemy import func, text

    from jukinet.ops import status as S

    log, _ = OPLOG["admin"]
    monkeypatch.setattr(S, "EXACT_BELOW", 5)
    with site.registers.admin_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f'ANALYZE "{log.name}"'))
        before = conn.execute(select(func.count()).select_from(log)).scalar_one()
    assert before >= 5
    st = site.api("operations").get("/api/v1/ops/status").json()
    admin = next(d for d in st["databases"] if d["name"] == "admin")
    with site.registers.admin_engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(log)).scalar_one()
    assert log.name in admin["estimated"] and before <= admin["rows"][log.name] <= after
    assert "alembic_version" not in admin["estimated"] and admin["rows"]["alembic_version"] == 1
    page = site.client("operations").get("/ops")
    assert page.status_code == 200
    assert f'data-table="{log.name}" data-estimated="yes"' in page.text and 'id="ops-estimated"' in page.text
    assert "<b>約 " in page.text
    monkeypatch.setattr(S, "EXACT_BELOW", 10_000)
    page = site.client("operations").get("/ops")
    assert "data-estimated" not in page.text and 'id="ops-estimated"' not in page.text and "<b>約 " not in page.text
