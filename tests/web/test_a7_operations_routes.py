"""A7 (the operations contractor never reads personal data), A3, A4 — route by route.

Every route of the application (UI, ``/api/v1``, the CS channel, static files, OpenAPI) is
classified here as **operations may use** (health, metrics, the operations status, statistics
counts, login / logout / lock, static assets) or **refused for operations**. A route added later
without a classification fails :func:`test_a7_every_route_is_classified_for_operations`.

Every refused route is then called by a logged-in 運用担当者 — right method, a plausible body
carrying a seeded resident's data, the session's CSRF token, a registered terminal — and must be
refused (403, or the refusal page), show none of the seeded residents' data, and leave a refusal by
that operator in an operation log. The CS channel is refused before any session is looked at (no
client certificate: 401) and the refusal goes to the communication log, the log of that channel.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from starlette.routing import Mount

from jukinet import wareki
from jukinet.store.tables_intake import INTAKE_TABLES
from jukinet.store.tables_security import OPLOG
from operator_site import ADMIN, PEOPLE, call, make_site, seed_people

WHO = "operations"
OPS_ID = "OPERATIONS"
TARO = PEOPLE[0]
FUHYO_NO = "10000000001"

# ---- classification ---------------------------------------------------------------------------

#: routes a 運用担当者 may use, with why (none shows a value of a register)
OPS_MAY_USE = {
    ("GET", "/health"): "liveness: databases reachable, schema revision",
    ("GET", "/metrics"): "Prometheus text: counts, times, codes (loopback or token, ADR 0027)",
    ("GET", "/ops"): "運用状況: counts, sizes, times (ADR 0026)",
    ("GET", "/api/v1/ops/status"): "運用状況 as JSON",
    ("GET", "/stats"): "統計: counts only (A9)",
    ("GET", "/stats/csv/{source}"): "統計 CSV: counts only",
    ("GET", "/stats/svg/{chart}"): "統計 chart: counts only",
    ("GET", "/stats/stats.css"): "stylesheet",
    ("GET", "/"): "menu (links by role)",
    ("GET", "/help"): "help: roles and screens, sign-in, procedures (no register data; ADR 0042)",
    ("GET", "/jobs/{key}"): "処理の状況: only the session's own long work (an operations operator starts none: "
                            "any key is 404 JOB_UNKNOWN; ADR 0048)",
    ("GET", "/jobs/{key}/progress"): "処理の状況 fragment: the same",
    ("GET", "/login"): "login", ("POST", "/auth/login/options"): "login", ("POST", "/auth/login/verify"): "login",
    ("POST", "/login/password"): "login (alternative)",
    ("GET", "/enroll"): "own biometric enrollment", ("POST", "/auth/enroll/options"): "enrollment",
    ("POST", "/auth/enroll/verify"): "enrollment",
    ("GET", "/terminal/activate"): "terminal activation (code from the administrator)",
    ("POST", "/terminal/activate"): "terminal activation",
    ("GET", "/lock"): "lock screen", ("POST", "/lock"): "lock", ("POST", "/session/touch"): "idle timer",
    ("POST", "/logout"): "logout",
    ("POST", "/api/v1/auth/webauthn/options"): "API login", ("POST", "/api/v1/auth/webauthn/verify"): "API login",
    ("POST", "/api/v1/auth/password"): "API login (alternative)", ("GET", "/api/v1/auth/session"): "own session",
    ("POST", "/api/v1/auth/logout"): "API logout",
    ("GET", "/fonts/ipamjm.ttf"): "IPAmj明朝 web font",
    ("GET", "/media"): "媒体管理簿: media, locations, movements, checks — no personal data (G2; the contractor keeps backups)",
    ("POST", "/media/check"): "週次点検 of the backup vault (G2, PIA III.4: done by the contractor)",
    ("POST", "/media/approve"): "approval: refused by the service unless 管理責任者 (G2), no personal data either way",
    ("POST", "/media/move"): "movements of backup media (G2: the contractor keeps them)",
    ("POST", "/media/dispose"): "retire/destroy a medium with the manager's approval (G2)",
    ("POST", "/media/handover"): "handover of an encrypted result medium: virus check + SHA-256 only (G3)",
    ("POST", "/media/scan"): "virus check of a file: verdict and digest only (G3)",
    ("*", "/static"): "static assets (CSS, JS)",
    ("GET", "/login/maintenance"): "witnessed maintenance sign-in (G5)",
    ("POST", "/login/maintenance"): "witnessed maintenance sign-in (G5)",
    ("POST", "/auth/maintenance/verify"): "witnessed maintenance sign-in, witness by fingerprint (G5)",
    ("POST", "/maintenance/end"): "the witness leaves: ends the own witnessed session (G5)",
    ("GET", "/openapi.json"): "API description", ("GET", "/docs"): "API description",
    ("GET", "/docs/oauth2-redirect"): "API description", ("GET", "/redoc"): "API description",
}

SEARCH = {"purpose_code": "inquiry", "name": TARO.name, "birth_from": TARO.birth_date.isoformat(),
          "registers": ["juki"]}
DETAIL = {"purpose_code": "inquiry", "register": "juki", "juminhyo_code": TARO.juminhyo_code}
PROVIDE = {"requester_code": "SOMU", "affair_code": "SOMU-KENZEI", "juminhyo_code": TARO.juminhyo_code,
           "name": TARO.name, "birth_date": TARO.birth_date.isoformat(), "sex": "1"}
CSV_FILE = {"file": ("conditions.csv", f"juminhyo_code,name,birth_date\n{TARO.juminhyo_code},{TARO.name},"
                                      f"{TARO.birth_date.isoformat()}\n".encode("utf-8"), "text/csv")}
TOML_FILE = {"file": ("catalogue.toml", b'[[requester]]\ncode = "X"\nname = "X"\nkind = "body"\n', "text/plain")}
NOTIFICATION = {"schema": "jukinet.notification/1", "notification_id": "ops-1", "register": "juki",
                "municipality_code": "242012", "reason": "転居", "change_date": "2026-01-05",
                "juminhyo_code": TARO.juminhyo_code, "new_juminhyo_code": None,
                "record": {"name": TARO.name, "name_kana": TARO.name_kana, "birth_date": TARO.birth_date.isoformat(),
                           "sex": "1", "address": TARO.address, "oaza_code": None, "kojin_bango": None,
                           "former_surname": None}}

#: routes refused to a 運用担当者: (method, template) -> (kind, concrete path, body, files)
#: a closed month for the A4 report routes
LAST_MONTH = (datetime.now(timezone(timedelta(hours=9))).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")

REFUSED = {
    # 事務5 search and detail
    ("GET", "/search"): ("ui", "/search", None, None),
    ("POST", "/search"): ("ui", "/search", SEARCH, None),
    ("POST", "/detail"): ("ui", "/detail", DETAIL, None),
    ("GET", "/search/results"): ("ui", "/search/results", None, None),
    ("GET", "/detail/view/{key}"): ("ui", "/detail/view/detail-x", None, None),
    ("POST", "/detail/kojin-bango"): ("ui", "/detail/kojin-bango", {**DETAIL, "purpose_code": "correction"}, None),
    ("POST", "/api/v1/search"): ("api", "/api/v1/search", {**SEARCH, "birth_from": None}, None),
    ("POST", "/api/v1/persons/detail"): ("api", "/api/v1/persons/detail", DETAIL, None),
    # roster (システム管理者)
    ("GET", "/roster"): ("ui", "/roster", None, None),
    ("GET", "/roster.csv"): ("ui", "/roster.csv", None, None),
    ("POST", "/roster/operators"): ("ui", "/roster/operators", {"display_name": "新人", "roles": ["operator"],
                                                               "registers": ["juki"], "affairs": ["search"]}, None),
    ("POST", "/roster/operators/{operator_id}/update"): (
        "ui", f"/roster/operators/{OPS_ID}/update", {"roles": ["operator"], "registers": ["juki"],
                                                    "affairs": ["search"]}, None),
    ("POST", "/roster/operators/{operator_id}/status"): (
        "ui", "/roster/operators/OPERATOR-JUKI/status", {"status": "suspended"}, None),
    ("POST", "/roster/operators/{operator_id}/enrollment"): ("ui", "/roster/operators/OPERATOR-JUKI/enrollment", {},
                                                             None),
    ("POST", "/roster/operators/{operator_id}/password"): ("ui", f"/roster/operators/{OPS_ID}/password", {}, None),
    ("POST", "/roster/inventory"): ("ui", "/roster/inventory", {}, None),
    ("GET", "/roster/inventory"): ("ui", "/roster/inventory", None, None),
    ("POST", "/roster/inventory/csv"): ("ui", "/roster/inventory/csv", {}, None),
    ("POST", "/roster/operators/{operator_id}/watch"): (
        "ui", "/roster/operators/OPERATOR-JUKI/watch", {"address_prefix": "三重県津市広明町"}, None),
    ("GET", "/roster/training"): ("ui", "/roster/training", None, None),
    ("POST", "/roster/training"): ("ui", "/roster/training", {"operator_id": "OPERATOR-JUKI", "course": "研修",
                                                             "taken_on": "2026-04-10"}, None),
    ("POST", "/roster/terminals"): ("ui", "/roster/terminals", {"name": "保守端末"}, None),
    ("POST", "/roster/terminals/{terminal_id}/revoke"): ("ui", "/roster/terminals/T0002/revoke", {}, None),
    ("POST", "/roster/terminals/{terminal_id}/activation"): ("ui", "/roster/terminals/T0002/activation", {}, None),
    ("GET", "/api/v1/operators"): ("api", "/api/v1/operators", None, None),
    ("POST", "/api/v1/operators"): ("api", "/api/v1/operators", {"display_name": "新人", "roles": ["operator"],
                                                                 "registers": ["juki"], "affairs": ["search"]}, None),
    ("POST", "/api/v1/operators/{operator_id}/status"): (
        "api", "/api/v1/operators/OPERATOR-JUKI/status", {"status": "suspended"}, None),
    # operation log (管理責任者, 監査者)
    ("GET", "/audit"): ("ui", "/audit", None, None),
    ("POST", "/audit/verify"): ("ui", "/audit/verify", {}, None),
    ("POST", "/api/v1/audit/verify"): ("api", "/api/v1/audit/verify", None, None),
    # A4 monthly analysis (管理責任者; 監査者 read-only)
    ("GET", "/audit/reports"): ("ui", "/audit/reports", None, None),
    ("POST", "/audit/reports/generate"): ("ui", "/audit/reports/generate", {"month": LAST_MONTH}, None),
    ("POST", "/audit/reports/download"): ("ui", "/audit/reports/download", {"month": LAST_MONTH, "format": "csv"},
                                          None),
    ("POST", "/audit/reports/signoff"): ("ui", "/audit/reports/signoff", {"month": LAST_MONTH, "decision": "ok"},
                                         None),
    ("POST", "/audit/reports/actions"): ("ui", "/audit/reports/actions", {"month": LAST_MONTH, "flag_no": "1",
                                                                          "operator_id": "OPERATOR-JUKI",
                                                                          "action": "guidance"}, None),
    # G4 incident register, G5 inspections and the contractor (ADR 0041)
    ("GET", "/incidents"): ("ui", "/incidents", None, None),
    ("POST", "/incidents"): ("ui", "/incidents", {"title": "t", "category": "loss", "severity": "minor",
                                                 "occurred_at": "2026-01-05T10:00", "discovered_at": "2026-01-05T11:00",
                                                 "summary": "山田　太郎"}, None),
    ("GET", "/incidents/{no}"): ("ui", "/incidents/INC-2026-0001", None, None),
    ("POST", "/incidents/{no}/steps"): ("ui", "/incidents/INC-2026-0001/steps", {"at": "2026-01-05T10:00",
                                                                                "text": "x"}, None),
    ("POST", "/incidents/{no}/notifications"): ("ui", "/incidents/INC-2026-0001/notifications",
                                                {"party": "manager", "party_name": "x", "at": "2026-01-05T10:00"}, None),
    ("POST", "/incidents/{no}/links"): ("ui", "/incidents/INC-2026-0001/links", {"chain": "juki", "seq": "1"}, None),
    ("POST", "/incidents/{no}/close"): ("ui", "/incidents/INC-2026-0001/close", {"at": "2026-01-05T10:00",
                                                                                "cause": "c", "prevention": "p"}, None),
    ("GET", "/audit/entries/{chain}/{seq}"): ("ui", "/audit/entries/juki/1", None, None),
    ("POST", "/audit/entries/{chain}/{seq}/link"): ("ui", "/audit/entries/juki/1/link",
                                                    {"incident_no": "INC-2026-0001"}, None),
    ("GET", "/inspections"): ("ui", "/inspections", None, None),
    ("POST", "/inspections"): ("ui", "/inspections", {"kind": "self", "unit": "u", "conducted_on": "2026-01-05",
                                                     "inspector": "x"}, None),
    ("POST", "/governance/reviews"): ("ui", "/governance/reviews", {"target": "worker_roster",
                                                                   "decision": "accepted"}, None),
    ("GET", "/contractor"): ("ui", "/contractor", None, None),
    ("POST", "/contractor/workers"): ("ui", "/contractor/workers", {"company": "c", "name": "n", "duty": "d",
                                                                   "from_date": "2026-01-05"}, None),
    ("POST", "/contractor/workers/{worker_id}/end"): ("ui", "/contractor/workers/1/end", {"to_date": "2026-01-05"},
                                                      None),
    ("POST", "/contractor/reports"): ("ui", "/contractor/reports", {"month": "2026-01", "company": "c",
                                                                   "received_on": "2026-01-05", "checks_total": "1",
                                                                   "checks_ng": "0"}, None),
    # 事務2 / 事務4
    ("GET", "/provision"): ("ui", "/provision", None, None),
    ("POST", "/provision"): ("ui", "/provision", {**PROVIDE, "grant": "SOMU|SOMU-KENZEI"}, None),
    ("GET", "/provision/batch"): ("ui", "/provision/batch", None, None),
    ("POST", "/provision/batch"): ("ui", "/provision/batch", {"grant": "SOMU|SOMU-KENZEI"}, CSV_FILE),
    ("POST", "/provision/media/{media_id}/download"): ("ui", "/provision/media/M0000001/download", {}, None),
    ("GET", "/provision/media"): ("ui", "/provision/media", None, None),
    ("GET", "/provision/approvals"): ("ui", "/provision/approvals", None, None),
    ("POST", "/provision/approvals"): ("ui", "/provision/approvals", {
        "grant": "SOMU|SOMU-KENZEI", "max_rows": "5000", "purpose": "課税資料", "days": "7"}, None),
    ("POST", "/provision/approvals/{approval_id}/decide"): ("ui", "/provision/approvals/A0000001/decide",
                                                             {"decision": "approve"}, None),
    ("GET", "/provision/catalogue"): ("ui", "/provision/catalogue", None, None),
    ("GET", "/provision/catalogue.toml"): ("ui", "/provision/catalogue.toml", None, None),
    ("POST", "/provision/catalogue/upload"): ("ui", "/provision/catalogue/upload", {}, TOML_FILE),
    ("POST", "/provision/catalogue/affairs"): ("ui", "/provision/catalogue/affairs", {"code": "X-1", "name": "X"},
                                               None),
    ("POST", "/provision/catalogue/requesters"): ("ui", "/provision/catalogue/requesters",
                                                  {"code": "X", "name": "X", "kind": "body"}, None),
    ("GET", "/query/national"): ("ui", "/query/national", None, None),
    ("POST", "/query/national"): ("ui", "/query/national", {"register": "juki", "purpose_code": "inquiry",
                                                           "juminhyo_code": TARO.juminhyo_code}, None),
    ("GET", "/provision/records"): ("ui", "/provision/records", None, None),
    ("POST", "/api/v1/provision"): ("api", "/api/v1/provision", PROVIDE, None),
    ("GET", "/api/v1/provision/catalogue"): ("api", "/api/v1/provision/catalogue", None, None),
    ("POST", "/api/v1/provision/batch"): ("api", "/api/v1/provision/batch",
                                          {"requester_code": "SOMU", "affair_code": "SOMU-KENZEI"}, CSV_FILE),
    ("POST", "/api/v1/provision/media/{media_id}/download"): ("api", "/api/v1/provision/media/M0000001/download",
                                                              None, None),
    ("POST", "/api/v1/provision/approvals"): ("api", "/api/v1/provision/approvals", {
        "requester_code": "SOMU", "affair_code": "SOMU-KENZEI", "max_rows": 5000, "purpose": "課税資料"}, None),
    ("POST", "/api/v1/provision/approvals/{approval_id}/decide"): (
        "api", "/api/v1/provision/approvals/A0000001/decide", {"decision": "approve"}, None),
    ("POST", "/api/v1/national/query"): ("api", "/api/v1/national/query", {
        "register": "fuhyo", "purpose_code": "inquiry", "juminhyo_code": FUHYO_NO}, None),
    # 事務3 disclosure, corrections, forms, inquiries
    ("GET", "/disclosure"): ("ui", "/disclosure", None, None),
    ("POST", "/disclosure/intake"): ("ui", "/disclosure/intake", {
        "register": "juki", "request_no": "R8-001", "name": TARO.name, "birth_date": TARO.birth_date.isoformat(),
        "sex": "1", "address": TARO.address, "scope": "current"}, None),
    ("POST", "/disclosure/decide"): ("ui", "/disclosure/decide", {"register": "juki", "request_no": "R8-001",
                                                                  "decision": "disclose", "reason": ""}, None),
    ("POST", "/disclosure/form"): ("ui", "/disclosure/form", {"register": "juki", "request_no": "R8-001",
                                                              "kind": "identity", "copies": "1"}, None),
    ("GET", "/disclosure/corrections"): ("ui", "/disclosure/corrections", None, None),
    ("POST", "/disclosure/corrections"): ("ui", "/disclosure/corrections", {
        "register": "juki", "request_no": "R8-001", "kind": "correction", "items": ["address"],
        "statement": "住所の訂正"}, None),
    ("POST", "/disclosure/corrections/step"): ("ui", "/disclosure/corrections/step", {
        "register": "juki", "correction_id": "C1", "to_status": "investigating"}, None),
    ("POST", "/disclosure/corrections/letter"): ("ui", "/disclosure/corrections/letter", {
        "register": "juki", "correction_id": "C1"}, None),
    ("GET", "/disclosure/suspensions"): ("ui", "/disclosure/suspensions", None, None),
    ("POST", "/disclosure/suspensions"): ("ui", "/disclosure/suspensions", {
        "register": "juki", "request_no": "R8-001", "kind": "stop_use", "grounds": "outside_purpose",
        "statement": "目的外利用", "copy_sheets": "0"}, None),
    ("POST", "/disclosure/suspensions/step"): ("ui", "/disclosure/suspensions/step", {
        "register": "juki", "suspension_id": "JS1", "to_status": "investigating"}, None),
    ("POST", "/disclosure/suspensions/decide"): ("ui", "/disclosure/suspensions/decide", {
        "register": "juki", "suspension_id": "JS1", "decision": "suspend", "reason": "violation_found"}, None),
    ("POST", "/disclosure/suspensions/extend"): ("ui", "/disclosure/suspensions/extend", {
        "register": "juki", "suspension_id": "JS1", "reason": "volume"}, None),
    ("POST", "/disclosure/suspensions/report"): ("ui", "/disclosure/suspensions/report", {
        "register": "juki", "suspension_id": "JS1", "municipality_code": "242012", "kind": "correct",
        "items": ["address"]}, None),
    ("POST", "/disclosure/suspensions/receipt"): ("ui", "/disclosure/suspensions/receipt", {
        "register": "juki", "suspension_id": "JS1"}, None),
    ("POST", "/disclosure/suspensions/letter"): ("ui", "/disclosure/suspensions/letter", {
        "register": "juki", "suspension_id": "JS1"}, None),
    ("GET", "/disclosure/reports"): ("ui", "/disclosure/reports", None, None),
    ("POST", "/disclosure/reports/document"): ("ui", "/disclosure/reports/document", {
        "register": "juki", "report_id": "juki-JS1-242012"}, None),
    ("GET", "/disclosure/forms"): ("ui", "/disclosure/forms", None, None),
    ("GET", "/disclosure/forms.csv"): ("ui", "/disclosure/forms.csv", None, None),
    ("POST", "/disclosure/forms/dispose"): ("ui", "/disclosure/forms/dispose", {"serial": "F1", "method": "shred"},
                                            None),
    ("GET", "/disclosure/inquiries"): ("ui", "/disclosure/inquiries", None, None),
    ("GET", "/disclosure/inquiries.csv"): ("ui", "/disclosure/inquiries.csv", None, None),
    ("POST", "/disclosure/inquiries"): ("ui", "/disclosure/inquiries", {"channel": "phone", "category": "other",
                                                                        "summary": "問合せ"}, None),
    ("POST", "/disclosure/inquiries/handle"): ("ui", "/disclosure/inquiries/handle", {"inquiry_id": "1",
                                                                                      "handling": "回答"}, None),
    # the CS channel (mutual TLS: a 市町村CS certificate, never an operator session)
    ("POST", "/cs/v1/notifications"): ("cs", "/cs/v1/notifications", NOTIFICATION, None),
    ("POST", "/cs/v1/notifications:batch"): ("cs", "/cs/v1/notifications:batch",
                                             {"notifications": [NOTIFICATION]}, None),
    ("POST", "/cs/v1/consistency/{register}"): ("cs", "/cs/v1/consistency/juki", None, None),
    ("GET", "/cs/v1/consistency/{register}/results/{run_id}"): ("cs", "/cs/v1/consistency/juki/results/1", None,
                                                                 None),
    ("GET", "/cs/v1/consistency/{register}/due"): ("cs", "/cs/v1/consistency/juki/due", None, None),
    ("GET", "/cs/v1/reports"): ("cs", "/cs/v1/reports", None, None),
    ("POST", "/cs/v1/reports/ack"): ("cs", "/cs/v1/reports/ack", {"report_ids": ["juki-JS1-242012"]}, None),
}


def app_routes(app) -> set[tuple[str, str]]:
    """(method, template) of every route of ``app`` (HEAD is GET's twin; a mount is ``*``)."""
    out = set()
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        path = rc.path or getattr(route, "path", None)
        if isinstance(route, Mount):
            out.add(("*", path))
            continue
        for m in (getattr(route, "methods", None) or {"*"}):
            if m != "HEAD":
                out.add((m, path))
    return out


# ---- personal data of the seeded residents ------------------------------------------------------

def personal_values() -> set[str]:
    vals = set()
    for p in PEOPLE:
        vals |= {p.juminhyo_code, p.name, p.name_kana, p.address, p.birth_date.isoformat(),
                 wareki.to_wareki(p.birth_date), p.name.replace("\u3000", ""), p.name.replace("\u3000", " ")}
        vals |= {part for part in p.name.split("\u3000") + p.name_kana.split("\u3000") if len(part) >= 2}
    return {v for v in vals if v}


def leaked(text: str) -> list[str]:
    return sorted(v for v in personal_values() if v in text)


# ---- the logs -----------------------------------------------------------------------------------

def oplog_refusals_by(registers, operator_id: str) -> list[tuple[str, int, str, str]]:
    """(chain, seq, action, code) of every refused entry of ``operator_id``."""
    out = []
    for chain, (log, _) in OPLOG.items():
        with registers.engine(chain).connect() as conn:
            for r in conn.execute(select(log.c.seq, log.c.action, log.c.detail)
                                  .where(log.c.outcome == "refused", log.c.operator_id == operator_id)):
                out.append((chain, r.seq, r.action, json.loads(r.detail or "{}").get("code", "")))
    return out


def comm_refusals(registers) -> int:
    n = 0
    for register, (_, _, comm) in INTAKE_TABLES.items():
        with registers.engine(register).connect() as conn:
            n += conn.execute(select(func.count()).select_from(comm).where(comm.c.result == "rejected")).scalar_one()
    return n


# ---- the site: the operator site, the shipped catalogue, a real approval and a real result file ----

@pytest.fixture
def site(config, registers):
    from datetime import datetime, timezone

    from jukinet.provision import approvals
    from jukinet.cli.provision import load_default_catalogue
    from jukinet.store.tables_provision import provision_media
    from jukinet.store.tables_security import operators
    from sqlalchemy import update

    load_default_catalogue(config)
    s = make_site(config, registers)
    seed_people(registers)
    op, _ = s.sec.register_operator(ADMIN, display_name="提供 担当", roles=["operator"], registers=["juki"],
                                    affairs=["provision"], operator_id="PROV")
    with registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == "PROV").values(status="active"))
    prov = s.sec.get_operator("PROV")
    a = approvals.request(registers, s.sec.oplog, config, prov, s.terminal_id, requester_code="SOMU",
                          affair_code="SOMU-KENZEI", max_rows=5000, purpose="課税資料の作成")
    now = datetime.now(timezone.utc)
    with registers.admin_tx() as conn:
        conn.execute(provision_media.insert().values(
            media_id="M-A7-0001", created_at=now, finished_at=now, operator_id="PROV", terminal_id=s.terminal_id,
            channel="terminal", requester_code="SOMU", affair_code="SOMU-KENZEI", register="juki", status="written",
            rows_total=1, rows_provided=1, rows_not_found=0, rows_ambiguous=0, rows_error=0, rows_national=0,
            container="jukinet.media/1", downloads=0))
    s.real_ids = {"A0000001": a.approval_id, "M0000001": "M-A7-0001"}   # placeholders of REFUSED -> real ids
    return s


# ---- the tests ----------------------------------------------------------------------------------

def test_a7_every_route_is_classified_for_operations(site):
    routes = app_routes(site.app)
    classified = set(OPS_MAY_USE) | set(REFUSED)
    assert not set(OPS_MAY_USE) & set(REFUSED), "a route is in both lists"
    unclassified = sorted(routes - classified)
    assert not unclassified, ("routes without an A7 classification (add them to OPS_MAY_USE or REFUSED in "
                              f"{__name__}): {unclassified}")
    stale = sorted(classified - routes)
    assert not stale, f"classified routes the application no longer has: {stale}"


def test_a7_every_route_refused_for_operations_is_refused_without_personal_data_and_logged(site):
    failures = []
    for (method, template), (kind, path, body, files) in sorted(REFUSED.items()):
        for placeholder, real in site.real_ids.items():
            path = path.replace(placeholder, real)
        before_ops = set(oplog_refusals_by(site.registers, OPS_ID))
        before_comm = comm_refusals(site.registers)
        if kind == "cs":   # an operations session, its terminal, no client certificate
            c = site.api(WHO)
            r = c.request(method, path, json=body) if body is not None else c.request(method, path)
        else:
            r = call(site, WHO, kind, method, path, body, files=files)
        where = f"{method} {template}"
        if kind == "cs":
            if r.status_code != 401 or r.json()["error"]["code"] != "CLIENT_CERT_REQUIRED":
                failures.append(f"{where}: {r.status_code} {r.text[:120]}")
            elif comm_refusals(site.registers) != before_comm + 1:
                failures.append(f"{where}: refused but not in the communication log")
        else:
            refused_page = r.status_code == 403 and (kind == "api" and r.json()["error"]["code"] == "FORBIDDEN"
                                                     or kind == "ui" and 'data-code="FORBIDDEN"' in r.text
                                                     or kind == "ui" and "FORBIDDEN" in r.text)
            if not refused_page:
                failures.append(f"{where}: {r.status_code} (expected the FORBIDDEN refusal) {r.text[:200]!r}")
            new = set(oplog_refusals_by(site.registers, OPS_ID)) - before_ops
            if not any(code == "FORBIDDEN" for *_, code in new):
                failures.append(f"{where}: no FORBIDDEN refusal of {OPS_ID} in an operation log ({new})")
        if leaked(r.text):
            failures.append(f"{where}: personal data in the answer: {leaked(r.text)}")
    assert not failures, "\n".join(failures)


ALLOWED_CALLS = [("ui", "/ops"), ("api", "/api/v1/ops/status"), ("ui", "/stats"), ("ui", "/stats/csv/updates_juki"),
                 ("ui", "/"), ("api", "/api/v1/auth/session"), ("ui", "/health"), ("ui", "/help")]


@pytest.mark.parametrize("kind,path", ALLOWED_CALLS)
def test_a7_operations_may_use_its_screens_and_they_hold_no_personal_data(site, kind, path):
    r = call(site, WHO, kind, "GET", path, None)
    assert r.status_code == 200, r.text[:300]
    assert not leaked(r.text)


def test_a7_operations_menu_links_only_to_what_it_may_use(site):
    r = call(site, WHO, "ui", "GET", "/", None)
    import re

    links = set(re.findall(r'href="(/[^"]*)"', r.text)) - {"/", "/static/app.css", "/static/design-tokens/tokens.css"}
    assert links == {"/ops", "/stats", "/media", "/help"}, links   # /media: the backup media register, no personal data (G2)
