"""Hostile text in the multipart uploads (P1, P4, Q2; issue 17): the form fields of the batch
provision upload (screen and terminal API) and the catalogue file upload (screen).

Whatever bytes a hostile client puts in a form field (NUL, bytes of lone surrogates, not UTF-8 —
refused with ``TEXT_NOT_ENCODABLE`` naming the field, never read as Latin-1 —, 100k characters) or in the catalogue's TOML (``\\u0000``, control characters, 100k-character
strings), the answer is never a 5xx nor ``text/plain``; a JSON refusal is coded; and a refusal
changes neither register, nor the catalogue, nor the media register.
"""

from __future__ import annotations

import json
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text as sql

from jukinet.store.tables_provision import provision_affairs, provision_media, provision_requesters

from . import people as P
from .test_web import site  # noqa: F401  (fixture)
from jukinet_testing import finish_job

REGISTER_TABLES = ("juki_current", "juki_history", "fuhyo_current", "fuhyo_history")

NASTY = st.sampled_from(["\ud800", "\udfff", "\udc00\ud800", "\ufffe", "\U0010ffff", "\ue000", "\U000e0100",
                         "\x00", "\x07", "\x1b", "\u202e", "\u3000", "\ufeff", "𠮷", "髙", "\"", "\r\n", "--"])
ANY_TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=30),
    st.lists(NASTY | st.characters(), min_size=1, max_size=10).map("".join),
    st.builds(lambda c, n: c * n, NASTY | st.characters(), st.sampled_from([1000, 100_000])))


def state(site) -> dict:
    out = {}
    regs = site.world.registers
    for t in REGISTER_TABLES:
        with regs.engine(t.split("_")[0]).connect() as c:
            out[t] = sorted(map(repr, c.execute(sql(f"SELECT * FROM {t}")).all()))
    with regs.admin_tx(write=False) as c:
        for t in (provision_affairs, provision_requesters):
            out[t.name] = sorted(map(repr, c.execute(select(t)).all()))
        out["media"] = len(c.execute(select(provision_media.c.media_id)).all())
    return out


def multipart(fields: dict, file: bytes, filename: str = "conditions.csv") -> tuple[bytes, str]:
    """A multipart body built by hand: field values as raw bytes (what a hostile client may send)."""
    b = "----jukinet" + secrets.token_hex(8)
    parts = []
    for k, v in fields.items():
        raw = v.encode("utf-8", "surrogatepass") if isinstance(v, str) else v
        parts.append(f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + raw + b"\r\n")
    parts.append(f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + file + b"\r\n")
    parts.append(f"--{b}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={b}"


def assert_coded(r) -> None:
    ctype = r.headers.get("content-type", "")
    assert r.status_code < 500, (r.request.url.path, r.status_code, r.text[:300])
    assert not ctype.startswith("text/plain"), ctype
    if r.status_code >= 400 and ctype.startswith("application/json"):
        err = r.json().get("error")
        assert isinstance(err, dict) and err["code"] and err["message"], r.text[:300]


BATCH_FIELDS = {"requester_code": "SOMU", "affair_code": "SOMU-KENZEI", "encoding": "auto", "purpose": "県税の賦課",
                "case_ref": "c-1", "approval_id": ""}
CONDITIONS = f"依頼番号,住民票コード\nU-1,{P.TARO}\n".encode()


def post_batch(site, kind: str, fields: dict, file: bytes = CONDITIONS):
    if kind == "api":
        body, ctype = multipart(fields, file)
        return site.api("prov").post("/api/v1/provision/batch", content=body, headers={"content-type": ctype})
    body, ctype = multipart(dict(fields, csrf_token=site.csrf("prov")), file)
    c = site.client("prov")
    return finish_job(c, c.post("/provision/batch", content=body, headers={"content-type": ctype}))


CATALOGUE = """format = "jukinet.provision-catalogue/1"
version = "t"
[[requesters]]
code = "SOMU"
name = {name}
kind = "department"
[[affairs]]
code = "SOMU-KENZEI"
name = {affair}
source = "条例"
basis = {basis}
register = "juki"
items = ["name", "birth_date", "sex", "address"]
requesters = ["SOMU"]
"""


def post_catalogue(site, name: str, affair: str, basis: str):
    data = CATALOGUE.format(name=json.dumps(name), affair=json.dumps(affair), basis=json.dumps(basis))
    body, ctype = multipart({"csrf_token": site.csrf("admin")}, data.encode("utf-8", "surrogatepass"), "c.toml")
    return site.client("admin").post("/provision/catalogue/upload", content=body, headers={"content-type": ctype})


@pytest.mark.parametrize("kind", ["api", "ui"])
@pytest.mark.parametrize("field", list(BATCH_FIELDS))
@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udc00\ud800", "x" * 100_000], ids=["nul", "surrogate", "reversed", "100k"])
def test_q2_p4_hostile_batch_form_field_is_refused_with_a_code_and_changes_nothing(site, kind, field, bad):
    """NUL and the bytes of a lone surrogate (not UTF-8) are refused in every field, before the route
    acts (TEXT_NOT_ENCODABLE, naming the field); 100k characters are refused by the field's own check,
    or — in the free-text 利用目的, which the media register truncates to 200 characters — accepted."""
    before = state(site)
    r = post_batch(site, kind, dict(BATCH_FIELDS, **{field: BATCH_FIELDS[field] + bad}))
    assert_coded(r)
    if bad != "x" * 100_000:
        assert r.status_code == 400, (field, r.status_code)
        assert r.json()["error"] == {"code": "TEXT_NOT_ENCODABLE", "message": r.json()["error"]["message"],
                                     "field": field}
    elif field != "purpose":
        assert r.status_code >= 400, (field, r.status_code)
    if r.status_code >= 400:
        assert state(site) == before


@pytest.mark.parametrize("kind", ["api", "ui"])
def test_q2_p4_multipart_field_not_utf8_is_refused_in_japanese_never_read_as_latin1(site, kind):
    """A client sending its form in Shift_JIS (利用目的 "県税" as SJIS bytes), or a file name that is not
    UTF-8: a coded 400 with a Japanese message naming the field — not "Œ§Å" reaching the media
    register as if it had been typed — and nothing is provided; the same form in UTF-8 is accepted."""
    before = state(site)
    sjis = "県税の賦課".encode("cp932")
    r = post_batch(site, kind, dict(BATCH_FIELDS, purpose=sjis))
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == "TEXT_NOT_ENCODABLE" and err["field"] == "purpose"
    assert "文字" in err["message"] and "県税" not in r.text
    assert state(site) == before
    body, ctype = multipart(BATCH_FIELDS, CONDITIONS, filename="条件".encode("cp932").decode("latin-1"))
    body = body.replace("条件".encode("cp932").decode("latin-1").encode("utf-8"), "条件".encode("cp932"))
    r = site.api("prov").post("/api/v1/provision/batch", content=body, headers={"content-type": ctype})
    assert r.status_code == 400 and r.json()["error"]["code"] == "TEXT_NOT_ENCODABLE"
    assert r.json()["error"]["field"] == "file"
    assert state(site) == before
    r = post_batch(site, kind, dict(BATCH_FIELDS, purpose="県税の賦課"))
    assert r.status_code == 200, r.text[:300]
    assert state(site)["media"] == before["media"] + 1


@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udc00\ud800", "x" * 100_000],
                         ids=["nul", "surrogate", "reversed", "100k"])
@pytest.mark.parametrize("where", ["name", "affair", "basis"])
def test_q2_p1_hostile_catalogue_file_text_is_refused_and_changes_nothing(site, where, bad):
    before = state(site)
    vals = {"name": "総務部", "affair": "県税の賦課", "basis": "条例第1条"}
    vals[where] += bad
    r = post_catalogue(site, **vals)          # json.dumps writes "\u0000", "\ud800": TOML escapes
    assert_coded(r)
    assert r.status_code == 400, (where, r.status_code)
    assert state(site) == before
    if bad == "\x00":
        assert "TEXT_NOT_ENCODABLE" in r.text


_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_uploads(site, kind, values, catalogue):
    before = state(site)
    fields = {k: v if v is not None else BATCH_FIELDS[k] for k, v in zip(BATCH_FIELDS, values)}
    r = post_batch(site, kind, fields)
    assert_coded(r)
    if r.status_code >= 400:
        after = state(site)
        assert {k: v for k, v in after.items() if k != "media"} == {k: v for k, v in before.items() if k != "media"}
    r = post_catalogue(site, *catalogue)
    assert_coded(r)


@settings(max_examples=15, **_SETTINGS)
@given(kind=st.sampled_from(["api", "ui"]), values=st.lists(st.none() | ANY_TEXT, min_size=6, max_size=6),
       catalogue=st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT))
def test_q2_p1_p4_any_text_in_an_upload_never_5xx(site, kind, values, catalogue):
    _check_uploads(site, kind, values, catalogue)


@pytest.mark.nightly
@settings(max_examples=1000, **_SETTINGS)
@given(kind=st.sampled_from(["api", "ui"]), values=st.lists(st.none() | ANY_TEXT, min_size=6, max_size=6),
       catalogue=st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT))
def test_q2_p1_p4_any_text_in_an_upload_never_5xx_nightly(site, kind, values, catalogue):
    _check_uploads(site, kind, values, catalogue)
