"""Hostile text at the operator side's doors (S1, P1, O1, A3, Q2; issue 17): forms, the terminal's
JSON API (search, detail, provision, national query, roster), disclosure intake.

Whatever Unicode is put in any string field — lone surrogates (JSON ``\\ud800``), noncharacters,
private use, IVS selectors, control characters and NUL, 100k characters — the answer is never a
5xx nor ``text/plain``; text that cannot be stored is refused with the coded JSON refusal
``TEXT_NOT_ENCODABLE``; and a refusal changes nothing in either register. Also: the application's
safety net answers coded JSON for an unexpected exception, a client's 400 for request text, a
server's 500 for a real fault.
"""

from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql

from operator_site import site  # noqa: F401  (fixture)

pytestmark = pytest.mark.xdist_group("web_hostile_text")

REGISTER_TABLES = {"juki": ("juki_current", "juki_history"), "fuhyo": ("fuhyo_current", "fuhyo_history")}

NASTY = st.sampled_from(["\ud800", "\udfff", "\udc00\ud800", "\ufffe", "\uffff", "\U0010ffff", "\ue000",
                         "\U000e0100", "\ufe0f", "\x00", "\x07", "\x1b", "\u202e", "\u2028", "\u3000", "\ufeff",
                         "𠮷", "髙", "ヤマダ", "%00"])
ANY_TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=30),
    st.lists(NASTY | st.characters(), min_size=1, max_size=10).map("".join),
    st.builds(lambda c, n: c * n, NASTY | st.characters(), st.sampled_from([1000, 1000, 1000, 100_000])))

#: (persona, kind, path, body): kind "api" is JSON with bearer + terminal, "ui" a form with CSRF
DOORS = [
    ("operator_both", "api", "/api/v1/search", {"purpose_code": "inquiry", "name": "ヤマダ", "name_match": "prefix",
                                                "address": "三重県", "case_ref": "c-1"}),
    ("operator_both", "api", "/api/v1/persons/detail", {"purpose_code": "inquiry", "register": "juki",
                                                        "juminhyo_code": "10000000001"}),
    ("operator_both", "ui", "/search", {"purpose_code": "inquiry", "name": "ヤマダ", "name_match": "prefix",
                                        "address": "三重県", "birth_date": "1980-04-01", "registers": "juki"}),
    ("operator_both", "ui", "/detail", {"purpose_code": "inquiry", "register": "juki",
                                        "juminhyo_code": "10000000001"}),
    ("operator_noaffair", "api", "/api/v1/provision", {"requester_code": "R001", "affair_code": "A001",
                                                       "name": "山田　太郎", "birth_date": "1980-04-01",
                                                       "juminhyo_code": "10000000001", "address": "三重県"}),
    ("operator_both", "api", "/api/v1/national/query", {"register": "juki", "juminhyo_code": "10000000001"}),
    ("operator_both", "ui", "/disclosure/intake", {"register": "juki", "request_no": "D-1", "name": "山田　太郎",
                                                   "birth_date": "1980-04-01", "sex": "1", "address": "三重県"}),
    ("admin", "api", "/api/v1/operators", {"display_name": "新人", "department": "市町村課", "roles": ["auditor"]}),
    ("admin", "ui", "/roster/operators", {"display_name": "新人", "department": "市町村課", "roles": "auditor"}),
    ("admin", "ui", "/roster/terminals", {"name": "業務端末9"}),
]


def registers_rows(registers) -> dict:
    out = {}
    for reg, tables in REGISTER_TABLES.items():
        with registers.engine(reg).connect() as c:
            for t in tables:
                out[t] = sorted(map(repr, c.execute(sql(f"SELECT * FROM {t}")).all()))
    return out


def send(site, persona, kind, path, body):
    if kind == "api":
        c = site.api(persona)
        # json.dumps escapes lone surrogates as \udXXX: valid JSON, as an attacker would send it
        return c.post(path, content=json.dumps(body).encode("ascii"), headers={"content-type": "application/json"})
    c = site.client(persona)
    data = dict(body, csrf_token=site.csrf(persona))
    # a browser sends UTF-8; a hostile client may send anything: encode what can be, raw bytes otherwise
    form = "&".join(f"{_q(k)}={_q(v)}" for k, v in data.items())
    return c.post(path, content=form.encode("ascii"), follow_redirects=False,
                  headers={"content-type": "application/x-www-form-urlencoded"})


def _q(s: str) -> str:
    return quote_from_bytes(s.encode("utf-8", "surrogatepass"), safe="")


def assert_coded(r) -> None:
    assert r.status_code < 500, r.status_code
    assert not r.headers.get("content-type", "").startswith("text/plain"), r.headers.get("content-type")
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        err = r.json().get("error")
        assert isinstance(err, dict) and err["code"] and err["message"], (r.request.url.path, r.status_code, r.text[:300])


def test_q2_lone_surrogate_or_nul_in_a_web_field_is_refused_with_a_coded_json_answer(site):
    before = registers_rows(site.registers)
    for persona, kind, path, body in DOORS:
        for field in [k for k, v in body.items() if isinstance(v, str)]:
            for bad in ("\ud800", "\udc00\ud800", "\x00"):
                r = send(site, persona, kind, path, dict(body, **{field: body[field] + bad}))
                assert r.status_code == 400, (path, field, r.status_code)
                err = r.json()["error"]
                assert err["code"] == "TEXT_NOT_ENCODABLE" and err["field"] == field, (path, err)
                assert "ud800" not in r.text.lower()
    assert registers_rows(site.registers) == before


def _check_door(site, door, values):
    persona, kind, path, body = door
    before = registers_rows(site.registers)
    spoiled = dict(body)
    for field, value in zip([k for k, v in body.items() if isinstance(v, str)], values):
        if value is not None:
            spoiled[field] = value
    r = send(site, persona, kind, path, spoiled)
    assert_coded(r)
    if r.status_code >= 400:
        assert registers_rows(site.registers) == before


_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=25, **_SETTINGS)
@given(door=st.sampled_from(DOORS), values=st.lists(st.none() | ANY_TEXT, min_size=6, max_size=6))
def test_s1_p1_o1_a3_q2_any_text_in_any_web_field_never_5xx(site, door, values):
    _check_door(site, door, values)


@pytest.mark.nightly
@settings(max_examples=3000, **_SETTINGS)
@given(door=st.sampled_from(DOORS), values=st.lists(st.none() | ANY_TEXT, min_size=6, max_size=6))
def test_s1_p1_o1_a3_q2_any_text_in_any_web_field_never_5xx_nightly(site, door, values):
    _check_door(site, door, values)


def test_q2_safety_net_unexpected_exceptions_are_coded_json_and_faults_stay_500(site):
    app = site.app

    @app.get("/_test/surrogate")
    def _surrogate():
        "山\ud800".encode("utf-8")

    @app.get("/_test/fault")
    def _fault():
        raise RuntimeError("secret 山田太郎")

    c = TestClient(app, raise_server_exceptions=False)
    r = c.get("/_test/surrogate")
    assert r.status_code == 400 and r.json()["error"]["code"] == "TEXT_NOT_ENCODABLE"
    r = c.get("/_test/fault")
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "INTERNAL_ERROR" and "山田" not in r.text
