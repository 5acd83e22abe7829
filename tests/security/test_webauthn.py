"""A1: WebAuthn enrollment and login checked by the server — user verification is required, the
origin and challenge must match, a challenge is used once, failures lock the operator out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from softauthn import SoftAuthenticator  # noqa: E402

from jukinet.security.model import Refused
from jukinet.security.oplog import Actor
from jukinet.security.service import Security
from jukinet.store.tables_security import OPLOG

ORIGIN = "http://localhost:8700"


@pytest.fixture
def sec(config, registers):
    config.server.port = 8700
    s = Security(config, registers)
    t, code = s.add_terminal(Actor("bootstrap", None), "代表端末1")
    s.terminal_id, _ = s.activate_terminal(code)
    return s


def enroll(sec, auth, *, uv=True, origin=ORIGIN):
    op, token = sec.register_operator(Actor("bootstrap", None), display_name="検索　担当", roles=["operator"],
                                      registers=["juki"], affairs=["search"], operator_id="OP-A1")
    opts = sec.registration_options(token, sec.terminal_id)
    cred = auth.create(opts["publicKey"], origin, uv=uv)
    return op, token, sec.registration_verify(token, sec.terminal_id, opts["challenge_id"], cred)


def admin_log(sec):
    log, _ = OPLOG["admin"]
    with sec.registers.admin_engine.connect() as conn:
        return conn.execute(select(log).order_by(log.c.seq)).all()


def test_a1_enrollment_and_login_with_user_verification(sec):
    auth = SoftAuthenticator()
    _, token, op = enroll(sec, auth)
    assert op.status == "active" and op.credential_count == 1
    assert sec.enrollment_operator(token) is None  # the link is used up
    opts = sec.login_options("OP-A1", sec.terminal_id)
    assert opts["publicKey"]["userVerification"] == "required"
    res = sec.login_verify(sec.terminal_id, opts["challenge_id"], auth.get(opts["publicKey"], ORIGIN))
    assert res.operator.operator_id == "OP-A1" and res.session.terminal_id == sec.terminal_id
    assert [e.action for e in admin_log(sec)][-1] == "login"


def test_a1_server_refuses_assertion_without_user_verification(sec):
    auth = SoftAuthenticator()
    enroll(sec, auth)
    opts = sec.login_options("OP-A1", sec.terminal_id)
    with pytest.raises(Refused) as e:
        sec.login_verify(sec.terminal_id, opts["challenge_id"], auth.get(opts["publicKey"], ORIGIN, uv=False))
    assert e.value.code == "LOGIN_FAILED"
    last = admin_log(sec)[-1]
    assert last.outcome == "refused" and last.operator_id == "OP-A1"


def test_a1_enrollment_without_user_verification_is_refused(sec):
    with pytest.raises(Refused) as e:
        enroll(sec, SoftAuthenticator(), uv=False)
    assert e.value.code == "ENROLLMENT_FAILED"


def test_a1_wrong_origin_and_replayed_challenge_are_refused(sec):
    auth = SoftAuthenticator()
    enroll(sec, auth)
    opts = sec.login_options("OP-A1", sec.terminal_id)
    with pytest.raises(Refused):
        sec.login_verify(sec.terminal_id, opts["challenge_id"], auth.get(opts["publicKey"], "http://evil.example"))
    # the challenge was consumed by the failed attempt: a correct answer to it is refused too
    with pytest.raises(Refused):
        sec.login_verify(sec.terminal_id, opts["challenge_id"], auth.get(opts["publicKey"], ORIGIN))
    # a challenge issued on another terminal cannot be answered here
    _, code = sec.add_terminal(Actor("bootstrap", None), "業務端末2")
    other, _ = sec.activate_terminal(code)
    opts = sec.login_options("OP-A1", sec.terminal_id)
    with pytest.raises(Refused):
        sec.login_verify(other, opts["challenge_id"], auth.get(opts["publicKey"], ORIGIN))


def test_a1_repeated_webauthn_failures_lock_the_operator(sec):
    auth = SoftAuthenticator()
    enroll(sec, auth)
    for _ in range(sec.cfg.max_failed_logins):
        opts = sec.login_options("OP-A1", sec.terminal_id)
        with pytest.raises(Refused):
            sec.login_verify(sec.terminal_id, opts["challenge_id"], auth.get(opts["publicKey"], ORIGIN, uv=False))
    with pytest.raises(Refused) as e:
        sec.login_options("OP-A1", sec.terminal_id)
    assert e.value.code == "LOGIN_LOCKED" and e.value.status == 423
    assert "login_lockout" in [x.action for x in admin_log(sec)]


def test_a1_unknown_or_suspended_operator_gets_the_same_refusal(sec):
    with pytest.raises(Refused) as unknown:
        sec.login_options("NOBODY", sec.terminal_id)
    auth = SoftAuthenticator()
    enroll(sec, auth)
    sec.set_status(Actor("ADMIN01", None), "OP-A1", "suspended")
    with pytest.raises(Refused) as suspended:
        sec.login_options("OP-A1", sec.terminal_id)
    assert unknown.value.code == suspended.value.code == "LOGIN_FAILED"
    assert json.loads(admin_log(sec)[-1].detail)["code"] == "LOGIN_FAILED"
