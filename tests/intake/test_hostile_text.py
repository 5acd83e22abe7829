"""Hostile text at the CS channel (U3, U4, Q2; issue 17): no string can crash the door.

A JSON string may carry the escape ``\\ud800`` (a lone UTF-16 surrogate): valid JSON, but Python
decodes it into a ``str`` that cannot be encoded. Every such notification is refused on its own
(``TEXT_NOT_ENCODABLE``, naming the item, never the value); in a batch the good ones next to it are
applied. And for any text at all in any string field — surrogates, noncharacters, private use, IVS
selectors, control characters, 100k characters — the answer is never a 5xx, always a coded JSON
refusal or an acceptance, and a refusal changes nothing in either register.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import fuhyo_kisai, jcode, tennyu
from .test_fuzz import client  # noqa: F401  (fixture: the app in-process with a CS certificate)
from .test_intake import comm, current, snapshot

pytestmark = pytest.mark.xdist_group("intake_fuzz")

SURROGATES = ["\ud800", "\udfff", "\udc00\ud800"]   # high alone, low alone, a reversed pair

#: every string-valued item of a juki notification: (path, how to spoil it)
JUKI_PATHS = [("notification_id",), ("reason",), ("juminhyo_code",), ("change_date",), ("municipality_code",),
              ("schema",), ("register",), ("record", "name"), ("record", "name_kana"), ("record", "address"),
              ("record", "birth_date"), ("record", "oaza_code"), ("record", "kojin_bango"), ("record", "sex")]
FUHYO_PATHS = [("record", "address_municipality_code"), ("record", "last_address"), ("record", "status"),
               ("record", "fuhyo_municipality_code")]


def _post(client, n) -> object:
    # json.dumps escapes a lone surrogate as \udXXX: the body is valid (ASCII) JSON
    return client.post("/cs/v1/notifications", content=json.dumps(n).encode("ascii"))


def _spoil(n: dict, path: tuple, bad: str) -> dict:
    n = copy.deepcopy(n)
    where = n
    for k in path[:-1]:
        where = where[k]
    where[path[-1]] = (where.get(path[-1]) or "") + bad
    return n


def _coded_json(r) -> dict:
    assert r.status_code < 500, r.status_code
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    return r.json()


def test_u3_q2_lone_surrogate_in_any_field_is_refused_with_a_code_naming_the_item(client):
    before = snapshot(client.registers)
    base_j, base_f = tennyu(jcode(91001)), fuhyo_kisai(jcode(91002))
    cases = [(base_j, p) for p in JUKI_PATHS] + [(base_f, p) for p in FUHYO_PATHS]
    for base, path in cases:
        for bad in SURROGATES:
            r = _post(client, _spoil(base, path, bad))
            body = _coded_json(r)
            assert r.status_code == 422, (path, r.status_code, body)
            assert body["status"] == "rejected"
            err = body["error"]
            assert err["code"] == "TEXT_NOT_ENCODABLE", (path, err)
            assert err["field"] == path[-1], (path, err)
            assert "\\ud" not in r.text.lower() and bad not in r.text
    # an unknown key that is itself a surrogate, and one whose value is
    for n in (dict(base_j, **{"\ud800": "x"}), dict(base_j, extra="\udfff"),
              _spoil(base_j, ("record", "\udc00"), "x")):
        body = _coded_json(_post(client, n))
        assert body["status"] == "rejected" and body["error"]["code"] == "TEXT_NOT_ENCODABLE"
    assert snapshot(client.registers) == before
    assert {row.code for row in comm(client.registers)[-3:]} == {"TEXT_NOT_ENCODABLE"}  # each one logged


def test_u4_q2_batch_applies_the_good_notifications_and_refuses_only_the_bad(client):
    good1, good2 = tennyu(jcode(91011)), tennyu(jcode(91012))
    bad = [_spoil(tennyu(jcode(91013)), ("record", "name"), "\ud800"),
           _spoil(tennyu(jcode(91014)), ("reason",), "\udfff"),
           dict(tennyu(jcode(91015)), **{"\udc00\ud800": 1})]
    body = json.dumps({"notifications": [good1, bad[0], bad[1], good2, bad[2]]}).encode("ascii")
    r = client.post("/cs/v1/notifications:batch", content=body)
    results = _coded_json(r)["results"]
    assert r.status_code == 200
    assert [a["status"] for a in results] == ["accepted", "rejected", "rejected", "accepted", "rejected"]
    assert [a["error"]["code"] for a in results if a["error"]] == ["TEXT_NOT_ENCODABLE"] * 3
    assert current(client.registers, jcode(91011)) is not None and current(client.registers, jcode(91012)) is not None
    for code in (91013, 91014, 91015):
        assert current(client.registers, jcode(code)) is None


# --- property: arbitrary Unicode in every string field ---------------------------------------------

#: text nobody should send: lone surrogates, noncharacters, private use, IVS selectors, controls, NUL
NASTY = st.sampled_from(["\ud800", "\udfff", "\udc00\ud800", "\ufffe", "\uffff", "\U0010ffff", "\ue000",
                         "\U000f0000", "\U000e0100", "\U000e01ef", "\ufe0f", "\x00", "\x07", "\x1b", "\u202e",
                         "\u2028", "\u3000", "\ufeff", "𠮷", "髙"])
ANY_TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=40),
    st.lists(NASTY | st.characters(), min_size=1, max_size=12).map("".join),
    st.builds(lambda c, n: c * n, NASTY | st.characters(), st.sampled_from([1000, 100_000])))


@st.composite
def hostile(draw):
    n = copy.deepcopy(draw(st.sampled_from([tennyu(jcode(91101)), fuhyo_kisai(jcode(91102))])))
    n["notification_id"] = f"hx-{draw(st.integers(0, 10**9))}"
    paths = JUKI_PATHS if n["register"] == "juki" else JUKI_PATHS[:7] + FUHYO_PATHS + [("record", "name")]
    for path in draw(st.lists(st.sampled_from(paths + [("extra",), ("record", "extra")]), min_size=1, max_size=3)):
        where = n
        for k in path[:-1]:
            where = where[k]
        where[path[-1]] = draw(ANY_TEXT)
    if draw(st.booleans()):
        n[draw(ANY_TEXT)] = draw(ANY_TEXT)
    return n


def _check_any_text(client, notifications):
    before = snapshot(client.registers)
    body = json.dumps({"notifications": notifications}).encode("ascii")
    r = client.post("/cs/v1/notifications:batch", content=body)
    data = _coded_json(r)
    if r.status_code == 413:   # 100k characters × a few: the whole request is refused, with a code
        assert data["error"]["code"] == "BODY_TOO_LARGE"
        assert snapshot(client.registers) == before
        return
    assert r.status_code == 200, data
    for a in data["results"]:
        assert a["status"] in ("accepted", "duplicate", "rejected")
        if a["status"] == "rejected":
            assert a["error"]["code"] and a["error"]["message"]
    if all(a["status"] == "rejected" for a in data["results"]):
        assert snapshot(client.registers) == before
    for n in notifications[:1]:
        single = _post(client, n)
        answer = _coded_json(single)
        assert single.status_code in (200, 409, 413, 422), single.status_code
        assert ("status" in answer) or answer["error"]["code"] == "BODY_TOO_LARGE"


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                       HealthCheck.data_too_large], database=None)


@settings(max_examples=40, **_SETTINGS)
@given(notifications=st.lists(hostile(), min_size=1, max_size=3))
def test_q2_any_text_in_any_field_never_5xx_and_refusals_change_nothing(client, notifications):
    _check_any_text(client, notifications)


@pytest.mark.nightly
@settings(max_examples=2000, **_SETTINGS)
@given(notifications=st.lists(hostile(), min_size=1, max_size=3))
def test_q2_any_text_in_any_field_never_5xx_nightly(client, notifications):
    _check_any_text(client, notifications)
