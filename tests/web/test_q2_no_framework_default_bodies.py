"""No framework default body at any door (Q2; issue 17): an unknown route (404), a method a route
does not take (405), a request that does not fit a route (422) and any other 4xx are coded JSON
``{"error": {"code", "message"}}`` with a Japanese message — never ``{"detail": …}``, never
``text/plain``. Operator UI pages that render their own refusal (HTML ``message.html``) keep it.

A property test draws arbitrary paths and methods, as an attacker's scanner would.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operator_site import site  # noqa: F401  (fixture)

pytestmark = pytest.mark.xdist_group("web_default_bodies")

_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def assert_coded_refusal_or_page(r) -> None:
    ctype = r.headers.get("content-type", "")
    assert r.status_code < 500, (r.request.method, r.request.url.path, r.status_code)
    assert not ctype.startswith("text/plain"), (r.request.method, r.request.url.path, ctype)
    if r.status_code >= 400 and not ctype.startswith("text/html") and r.request.method != "HEAD":
        assert ctype.startswith("application/json"), (r.request.method, r.request.url.path, ctype, r.status_code)
        body = r.json()
        assert "detail" not in body, (r.request.method, r.request.url.path, body)
        err = body["error"]
        assert err["code"] and _JAPANESE.search(err["message"]), body


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/no/such/route", 404, "NOT_FOUND"),
    ("GET", "/static/no-such-file.css", 404, "NOT_FOUND"),
    ("DELETE", "/health", 405, "METHOD_NOT_ALLOWED"),
    ("PUT", "/cs/v1/notifications", 405, "METHOD_NOT_ALLOWED"),
    ("PATCH", "/api/v1/search", 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/cs/v1/consistency/juki", 405, "METHOD_NOT_ALLOWED"),
])
def test_q2_framework_refusals_are_coded_japanese_json(site, method, path, status, code):
    r = site.client().request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert "detail" not in body and body["error"]["code"] == code
    assert _JAPANESE.search(body["error"]["message"])
    if status == 405:
        assert r.headers.get("allow")


def test_q2_a_request_that_does_not_fit_a_route_is_coded_json_not_detail(site):
    # query parameter of the wrong type on a route with typed parameters: FastAPI's 422
    r = site.api("operator_both").post("/api/v1/search", content=b"[1, 2]",
                                       headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert_coded_refusal_or_page(r)


_SEGMENT = st.text(st.characters(codec="utf-8"), min_size=0, max_size=12).map(lambda s: quote(s, safe=""))
_KNOWN = st.sampled_from(["", "cs", "cs/v1", "cs/v1/notifications", "cs/v1/notifications:batch",
                          "cs/v1/consistency", "api", "api/v1", "api/v1/search", "api/v1/persons/detail",
                          "api/v1/operators", "auth", "auth/login", "ops", "ops/status", "metrics", "health",
                          "static", "fonts/ipamjm.ttf", "search", "detail", "roster", "provision", "disclosure",
                          "audit", "stats", "docs", "openapi.json", "lock", "login"])
_PATHS = st.builds(lambda head, tail: "/" + "/".join([head] + tail).strip("/"),
                   _KNOWN, st.lists(_SEGMENT, max_size=3))
_METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _hit(site, method, path, persona, body):
    c = site.api(persona) if persona else site.client()
    kw = {"content": body, "headers": {"content-type": "application/json"}} if body is not None else {}
    r = c.request(method, path, **kw)
    assert_coded_refusal_or_page(r)


_BODIES = st.none() | st.sampled_from([b"", b"{}", b"[]", b"null", b"{\"a\": 1}", b"not json"])


@settings(max_examples=25, **_SETTINGS)
@given(method=_METHODS, path=_PATHS, persona=st.sampled_from([None, "operator_both", "admin"]), body=_BODIES)
def test_q2_any_path_any_method_never_a_detail_body(site, method, path, persona, body):
    _hit(site, method, path, persona, body)


@pytest.mark.nightly
@settings(max_examples=2000, **_SETTINGS)
@given(method=_METHODS, path=_PATHS, persona=st.sampled_from([None, "operator_both", "admin"]), body=_BODIES)
def test_q2_any_path_any_method_never_a_detail_body_nightly(site, method, path, persona, body):
    _hit(site, method, path, persona, body)
