"""A3 (least privilege), A1/A6 (sessions bound to a terminal, idle limit), A4 (refusals logged):
every route × every role, plus anonymous, an idle-expired session and a session from another
terminal — allowed or refused as designed, and every refusal is in an operation log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from jukinet.audit.service import JST
from jukinet.store.tables_security import OPLOG
from operator_site import PERSONAS as _ALL_PERSONAS, call, refusals, site  # noqa: F401  (site: fixture)

MONTH = datetime.now(JST).strftime("%Y-%m")
SEARCH = {"purpose_code": "inquiry", "name": "ヤマダ", "name_match": "prefix"}
OPERATORS = {"operator_juki", "operator_both"}

#: (name, kind, method, path, body, personas allowed)
ROUTES = [
    ("menu", "ui", "GET", "/", None, "all"),
    ("search form", "ui", "GET", "/search", None, OPERATORS),
    ("search results", "ui", "GET", "/search/results", None, OPERATORS),
    ("search juki", "ui", "POST", "/search", {**SEARCH, "registers": ["juki"]}, OPERATORS),
    ("search fuhyo", "ui", "POST", "/search", {**SEARCH, "registers": ["fuhyo"]}, {"operator_both"}),
    ("search both", "ui", "POST", "/search", {**SEARCH, "registers": ["juki", "fuhyo"]}, {"operator_both"}),
    ("detail juki", "ui", "POST", "/detail", {"purpose_code": "inquiry", "register": "juki",
                                              "juminhyo_code": "10000000001"}, OPERATORS),
    ("detail fuhyo", "ui", "POST", "/detail", {"purpose_code": "inquiry", "register": "fuhyo",
                                               "juminhyo_code": "10000000001"}, {"operator_both"}),
    ("roster", "ui", "GET", "/roster", None, {"admin"}),
    ("roster csv", "ui", "GET", "/roster.csv", None, {"admin"}),
    ("inventory", "ui", "POST", "/roster/inventory", {}, {"admin"}),
    ("inventory screen", "ui", "GET", "/roster/inventory", None, {"admin"}),
    ("inventory csv", "ui", "POST", "/roster/inventory/csv", {}, {"admin"}),
    ("operator watch", "ui", "POST", "/roster/operators/OPERATOR-JUKI/watch", {"address_prefix": "三重県津市広明町"},
     {"admin"}),
    ("audit reports", "ui", "GET", "/audit/reports", None, {"manager", "auditor"}),
    ("audit report generate", "ui", "POST", "/audit/reports/generate", {"month": MONTH}, {"manager"}),
    ("audit report download", "ui", "POST", "/audit/reports/download", {"month": MONTH, "format": "csv"},
     {"manager", "auditor"}),
    ("new terminal", "ui", "POST", "/roster/terminals", {"name": "業務端末9"}, {"admin"}),
    ("new operator", "ui", "POST", "/roster/operators", {"display_name": "新人", "roles": ["auditor"]}, {"admin"}),
    ("audit log", "ui", "GET", "/audit", None, {"manager", "auditor"}),
    ("audit verify", "ui", "POST", "/audit/verify", {}, {"auditor"}),
    ("session touch", "ui", "POST", "/session/touch", {}, "all"),
    ("api session", "api", "GET", "/api/v1/auth/session", None, "all"),
    ("api search juki", "api", "POST", "/api/v1/search", {**SEARCH, "registers": ["juki"]}, OPERATORS),
    ("api search fuhyo", "api", "POST", "/api/v1/search", {**SEARCH, "registers": ["fuhyo"]}, {"operator_both"}),
    ("api detail", "api", "POST", "/api/v1/persons/detail", {"purpose_code": "inquiry", "register": "juki",
                                                              "juminhyo_code": "10000000001"}, OPERATORS),
    ("api roster", "api", "GET", "/api/v1/operators", None, {"admin"}),
    ("api new operator", "api", "POST", "/api/v1/operators", {"display_name": "新人", "roles": ["auditor"]}, {"admin"}),
    ("api audit verify", "api", "POST", "/api/v1/audit/verify", None, {"auditor"}),
]

PERSONAS = list(_ALL_PERSONAS)
SPECIAL = ["anonymous", "idle", "other_terminal", "no_terminal"]


def test_a3_a4_a6_authorization_matrix_every_route_every_role(site):
    failures = []
    for name, kind, method, path, body, allowed in ROUTES:
        for who in PERSONAS + SPECIAL:
            expect_ok = who in PERSONAS and (allowed == "all" or who in allowed)
            before = refusals(site.registers)
            r = call(site, who, kind, method, path, body)
            # Post/Redirect/Get (ADR 0043): an action that ran answers 303 to the page showing its result
            ok = r.status_code in (200, 201, 204) or (
                r.status_code == 303 and (r.headers["location"].startswith(("/search/results", "/detail/view/",
                                                                            "/jobs/job-"))
                                          or "shown=shown-" in r.headers["location"]))
            if ok != expect_ok:
                failures.append(f"{name} as {who}: {r.status_code} (expected {'allowed' if expect_ok else 'refused'})")
                continue
            if not ok:
                if kind == "ui" and who in SPECIAL and who != "no_terminal":
                    assert r.status_code == 303 and r.headers["location"] in ("/login", "/lock"), (name, who)
                elif kind == "api":
                    assert r.status_code in (401, 403) and "error" in r.json(), (name, who)
                if refusals(site.registers) <= before:
                    failures.append(f"{name} as {who}: refused but not in the operation log")
    assert not failures, "\n".join(failures)


def test_a3_search_refusal_for_register_out_of_scope_is_in_that_registers_log(site):
    before = refusals(site.registers)
    r = call(site, "operator_juki", "api", "POST", "/api/v1/search", {**SEARCH, "registers": ["fuhyo"]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    log, _ = OPLOG["fuhyo"]
    with site.registers.fuhyo_engine.connect() as conn:
        last = conn.execute(select(log).order_by(log.c.seq.desc())).first()
    assert last.outcome == "refused" and last.operator_id == "OPERATOR-JUKI" and refusals(site.registers) == before + 1
