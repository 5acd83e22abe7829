"""G5: witnessed maintenance (PIA II.4 委託事項2④ 「職員が立ち会いの上、代表端末又は業務端末により確認する」;
ADR 0041). A 保守作業者's session at a terminal opens only with a distinct active staff operator
co-authenticating in the same flow (password + TOTP, or the witness by fingerprint); every action
of the session is logged under both; ending the witness ends the session. Both engines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from jukinet.security.model import Refused
from jukinet.security.service import sha256
from jukinet.store.tables_security import sessions
from jukinet.web import auth as A
from tests.governance.people import Party, contractor, detail, log, witness
from tests.web.operator_site import ADMIN, site  # noqa: F401  (fixture)

sys.path.insert(0, str(Path(__file__).parents[1] / "security"))
from softauthn import SoftAuthenticator  # noqa: E402

ORIGIN = "http://localhost:8700"


def _form(site, c: Party, w: Party) -> dict:
    cp, wp = c.proof(), w.proof()
    return {"csrf_token": "t", **{f"contractor_{k}": v for k, v in cp.items()},
            **{f"witness_{k}": v for k, v in wp.items()}}


def _browser(site):
    b = site.client()
    b.cookies.set(A.CSRF_COOKIE, "t")
    return b


def _session_row(site, token):
    with site.registers.admin_tx(write=False) as conn:
        return conn.execute(select(sessions).where(sessions.c.session_hash == sha256(token))).one()


def test_g5_maintenance_worker_cannot_sign_in_alone(site):  # noqa: F811
    c = contractor(site)
    r = site.api().post("/api/v1/auth/password", json=c.proof())
    assert r.status_code == 403 and r.json()["error"]["code"] == "MAINTENANCE_WITNESS_REQUIRED"
    assert "立会い" in r.json()["error"]["message"]
    e = log(site)[-1]
    assert e.outcome == "refused" and e.operator_id == c.operator_id
    assert detail(e)["code"] == "MAINTENANCE_WITNESS_REQUIRED"
    b = _browser(site)
    r = b.post("/login/password", data={"csrf_token": "t", **c.proof()})
    assert r.status_code == 403 and A.SESSION_COOKIE not in r.cookies


def test_g5_witnessed_session_every_action_logged_under_both_and_ended_by_the_witness(site):  # noqa: F811
    c, w = contractor(site), witness(site)
    b = _browser(site)
    r = b.get("/login/maintenance")
    assert r.status_code == 200 and 'id="maintenance-login"' in r.text
    r = b.post("/login/maintenance", data=_form(site, c, w), follow_redirects=False)
    assert r.status_code == 303, r.text[:400]
    token = r.cookies.get(A.SESSION_COOKIE) or b.cookies.get(A.SESSION_COOKIE)
    row = _session_row(site, token)
    assert row.operator_id == c.operator_id and row.witness_id == w.operator_id
    assert row.method == "mnt:pw+pw"
    start = len(log(site))
    # the start is written under both: the contractor's login names the witness, the witness has an entry of their own
    login = log(site, action="login")[-1]
    assert login.operator_id == c.operator_id and detail(login)["witness_id"] == w.operator_id
    mw = log(site, action="maintenance_witness")[-1]
    assert mw.operator_id == w.operator_id and detail(mw)["contractor_id"] == c.operator_id
    # the screens show the maintenance mode and the witness
    r = b.get("/")
    assert r.status_code == 200 and 'id="maintenance-banner"' in r.text and w.operator_id in r.text
    r = b.get("/ops")
    assert r.status_code == 200
    r = b.get("/search")                       # no personal data for the contractor: refused, logged under both
    assert r.status_code == 403
    csrf = _session_row(site, token).csrf_token
    r = b.post("/maintenance/end", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    entries = log(site)[start:]
    mine = [e for e in entries if e.operator_id == c.operator_id]
    assert {e.action for e in mine} >= {"maintenance_end"} and any(e.outcome == "refused" for e in mine)
    assert mine and all(detail(e).get("witness_id") == w.operator_id for e in mine), [(e.action, e.detail) for e in mine]
    end_w = log(site, action="maintenance_witness_end")[-1]
    assert end_w.operator_id == w.operator_id and detail(end_w)["contractor_id"] == c.operator_id
    assert _session_row(site, token).end_reason == "witness_ended"
    r = b.get("/", follow_redirects=False)     # the session is over
    assert r.status_code == 303 and r.headers["location"] == "/login"
    # the auditor's log screen shows the witness beside the contractor's entries
    r = site.client("auditor").get("/audit")
    assert f'<td class="witness">{w.operator_id}</td>' in r.text
    # the contractor screen lists the session for the manager
    r = site.client("manager").get("/contractor")
    assert f'data-operator="{c.operator_id}" data-witness="{w.operator_id}"' in r.text and "witness_ended" in r.text


def test_g5_witness_by_fingerprint_in_the_same_flow(site):  # noqa: F811
    c = contractor(site)
    auth = SoftAuthenticator()
    op, token = site.sec.register_operator(ADMIN, display_name="立会 職員", department="市町村課", roles=["manager"],
                                           registers=["juki"], operator_id="WIT-01")
    opts = site.sec.registration_options(token, site.terminal_id)
    site.sec.registration_verify(token, site.terminal_id, opts["challenge_id"],
                                 auth.create(opts["publicKey"], ORIGIN))
    b = _browser(site)
    r = b.post("/auth/login/options", json={"operator_id": "WIT-01"}, headers={"X-CSRF-Token": "t"})
    assert r.status_code == 200
    o = r.json()
    body = {"contractor": c.proof(), "witness": {"challenge_id": o["challenge_id"],
                                                 "credential": auth.get(o["publicKey"], ORIGIN)}}
    r = b.post("/auth/maintenance/verify", json=body, headers={"X-CSRF-Token": "t"})
    assert r.status_code == 200, r.text
    tok = r.cookies.get(A.SESSION_COOKIE) or b.cookies.get(A.SESSION_COOKIE)
    row = _session_row(site, tok)
    assert row.witness_id == "WIT-01" and row.method == "mnt:pw+wa"
    # the same assertion cannot be replayed for another session
    r = b.post("/auth/maintenance/verify", json=body, headers={"X-CSRF-Token": "t"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "LOGIN_FAILED"


def test_g5_witness_refusals_are_coded_and_logged(site):  # noqa: F811
    c, w = contractor(site), witness(site)
    sec = site.sec
    tid = site.terminal_id
    other = contractor(site, "MNT-02")
    ops = witness(site, "operations")          # the operations contractor is not staff
    n_sessions = len(sec.maintenance_sessions())
    cases = [
        (lambda: sec.maintenance_login(tid, c.proof(), c.proof()), "MAINTENANCE_WITNESS_SAME"),
        (lambda: sec.maintenance_login(tid, c.proof(), other.proof()), "MAINTENANCE_WITNESS_NOT_STAFF"),
        (lambda: sec.maintenance_login(tid, c.proof(), ops.proof()), "MAINTENANCE_WITNESS_NOT_STAFF"),
        (lambda: sec.maintenance_login(tid, w.proof(), c.proof()), "MAINTENANCE_ROLE_REQUIRED"),
        (lambda: sec.maintenance_login(tid, c.proof(), {**w.proof(), "password": "wrong"}), "LOGIN_FAILED"),
        (lambda: sec.maintenance_login(tid, c.proof(), {"operator_id": "NOBODY-9", "password": "x", "totp": "1"}),
         "LOGIN_FAILED"),
    ]
    for call, code in cases:
        with pytest.raises(Refused) as e:
            call()
        assert e.value.code == code, (code, e.value.code)
        last = log(site)[-1]
        assert last.outcome == "refused" and detail(last)["code"] == code
    # the wrong witness password counts against the witness, not the contractor
    assert sec.get_operator(w.operator_id).failed_logins == 1 and sec.get_operator(c.operator_id).failed_logins == 0
    # not on the roster (no current entry)
    off = contractor(site, "MNT-03", on_roster=False)
    with pytest.raises(Refused) as e:
        sec.maintenance_login(tid, off.proof(), w.proof())
    assert e.value.code == "MAINTENANCE_NOT_ON_ROSTER"
    assert detail(log(site)[-1])["witness_id"] == w.operator_id     # a refusal of the pair names both
    assert len(sec.maintenance_sessions()) == n_sessions
    # the same on the screen: a coded message, no session
    b = _browser(site)
    r = b.post("/login/maintenance", data=_form(site, c, c))
    assert r.status_code == 403 and 'data-code="MAINTENANCE_WITNESS_SAME"' in r.text


def test_g5_session_ends_when_the_witness_is_no_longer_active(site):  # noqa: F811
    c, w = contractor(site), witness(site)
    res = site.sec.maintenance_login(site.terminal_id, c.proof(), w.proof())
    assert site.sec.resolve(res.token, site.terminal_id).session.witness_id == w.operator_id
    site.sec.set_status(ADMIN, w.operator_id, "suspended")
    with pytest.raises(Refused) as e:
        site.sec.resolve(res.token, site.terminal_id)
    assert e.value.code == "MAINTENANCE_WITNESS_ENDED"
    assert _session_row(site, res.token).end_reason == "witness_inactive"
    last = log(site)[-1]
    assert last.operator_id == c.operator_id and detail(last)["witness_id"] == w.operator_id
