"""Fuzzing the intake (U2, U3, Q2): hypothesis over the wire format, schemathesis over the OpenAPI.

The app is called in-process with a municipal CS certificate injected as the ASGI TLS extension
(as :mod:`jukinet.intake.transport` does for a verified connection); the application checks that
certificate against our CA itself. Properties: never a 5xx; every refusal has a stable code and a
message; a refused notification changes no row (only the communication log grows).
"""

from __future__ import annotations

import copy
import json

import pytest
import schemathesis
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from jukinet.web.app import create_app

from .helpers import TSU, fuhyo_kisai, jcode, tennyu
from .test_intake import snapshot

pytestmark = pytest.mark.xdist_group("intake_fuzz")


def with_cs_cert(app, pem: str):
    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("extensions", {})["tls"] = {"client_cert_chain": [pem]}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def client(installation, registers):
    pem = (installation.resolve(installation.tls.cs_dir) / f"{TSU}.pem").read_text()
    app = create_app(installation, registers)
    with TestClient(with_cs_cert(app, pem)) as c:
        c.registers = registers
        yield c


# --- hypothesis: mutations of valid notifications ------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)

FIELDS = ["schema", "notification_id", "register", "municipality_code", "reason", "change_date", "juminhyo_code",
          "new_juminhyo_code", "record"]
RECORD_FIELDS = ["name", "name_kana", "birth_date", "sex", "address", "oaza_code", "kojin_bango", "former_surname",
                 "address_municipality_code", "last_address", "old_juminhyo_code", "fuhyo_municipality_code", "status"]
REASONS = ["国内転入", "出生", "転居", "死亡", "職権修正", "個人番号変更", "住民票コード変更", "旧氏記載", "記載", "消除",
           "住所変更", "国外転出", "不明"]


@st.composite
def mutated(draw):
    base = draw(st.sampled_from([tennyu(jcode(90001)), fuhyo_kisai(jcode(90002)), tennyu(jcode(90003), reason="出生")]))
    n = copy.deepcopy(base)
    n["notification_id"] = f"fz-{draw(st.integers(0, 10**9))}"
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "set", "record_set", "record_drop", "extra", "reason", "code"]))
        if op == "drop":
            n.pop(draw(st.sampled_from(FIELDS)), None)
        elif op == "set":
            n[draw(st.sampled_from(FIELDS))] = draw(json_values)
        elif op == "record_set" and isinstance(n.get("record"), dict):
            n["record"][draw(st.sampled_from(RECORD_FIELDS))] = draw(json_values)
        elif op == "record_drop" and isinstance(n.get("record"), dict):
            n["record"].pop(draw(st.sampled_from(RECORD_FIELDS)), None)
        elif op == "extra":
            n[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
        elif op == "reason":
            n["reason"] = draw(st.sampled_from(REASONS))
        elif op == "code":
            n["juminhyo_code"] = draw(st.from_regex(r"\A[0-9]{9,12}\Z"))
    return n


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(n=mutated())
def test_u2_u3_fuzzed_notifications_never_500_and_rejections_change_nothing(client, n):
    before = snapshot(client.registers)
    r = client.post("/cs/v1/notifications", content=json.dumps(n, ensure_ascii=False).encode())
    assert r.status_code < 500
    body = r.json()
    if r.status_code == 200:
        assert body["status"] in ("accepted", "duplicate")
        return
    err = body["error"]
    assert isinstance(err["code"], str) and err["code"] and err["message"]
    assert snapshot(client.registers) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_q2_garbage_bodies_are_refused_with_a_code(client, body):
    before = snapshot(client.registers)
    for path in ("/cs/v1/notifications", "/cs/v1/notifications:batch"):
        r = client.post(path, content=body)
        assert r.status_code < 500 and r.status_code != 200 or r.json().get("results") is not None
        if r.status_code >= 400:
            assert r.json()["error"]["code"]
    assert snapshot(client.registers) == before


# --- schemathesis: the OpenAPI of the CS API ----------------------------------------------------

def test_u2_cs_api_conforms_to_its_openapi_and_never_500(installation, registers):
    """Every operation of /cs/v1 with schemathesis-generated bodies (valid and not): no 5xx, and
    each answer matches the documented schema (status code, content type, body)."""
    pem = (installation.resolve(installation.tls.cs_dir) / f"{TSU}.pem").read_text()
    app = create_app(installation, registers)
    schema = schemathesis.openapi.from_asgi("/openapi.json", with_cs_cert(app, pem)).include(path_regex="^/cs/v1/notifications")
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {o.path for o in operations} == {"/cs/v1/notifications", "/cs/v1/notifications:batch"}
    for operation in operations:
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call()
            assert response.status_code < 500
            # the reason tables and check digits cannot be written in JSON Schema, so a schema-valid
            # notification may well be refused (422): "positive data acceptance" is not a property here
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     content_type_conformance, response_schema_conformance])

        run()
