"""A1 / A7: the TOTP secrets of the password fallback are sealed at rest in the admin database
(ADR 0029), on SQLite and PostgreSQL — raw reads find no secret, login still works, a ciphertext
moved to another operator refuses, and admin_0005 seals an installation that had plaintext."""

from __future__ import annotations

import base64

import pyotp
import pytest
from sqlalchemy import text, update

from jukinet.errors import JukinetError
from jukinet.security.oplog import Actor
from jukinet.security.service import Security
from jukinet.security.totp_secret import TotpKeys, TotpSecretCipher
from jukinet.store import migrate
from jukinet.store.tables_security import operators
from jukinet_testing import every_value, sqlite_file_bytes, upgrade_that_seals
from operator_site import site  # noqa: F401  (fixture)

ADMIN = Actor("bootstrap", None)


def _grant(site, persona):
    oid = site.op_ids[persona]
    site.sec.update_operator(ADMIN, oid, roles=["operator"], registers=["juki"], affairs=["search"],
                             password_allowed=True)
    return oid, site.sec.grant_password(ADMIN, oid)


def _forms(secret: str) -> list[bytes]:
    """The secret as it could be stored: base32 text (either case) and its raw bytes."""
    return [secret.encode(), secret.lower().encode(), base64.b32decode(secret)]


def _assert_nowhere(engine, secrets_: list[str]) -> None:
    forms = [f for s in secrets_ for f in _forms(s)]
    found = [(t, c) for t, c, v in every_value(engine)
             if any(f in (v if isinstance(v, bytes) else v.encode()) for f in forms)]
    assert found == [], found
    if engine.dialect.name == "sqlite":            # not in free pages nor in the write-ahead log
        assert not [f for f in forms for b in sqlite_file_bytes(engine) if f in b]


def _login(site, oid, password, code):
    return site.api().post("/api/v1/auth/password", json={"operator_id": oid, "password": password, "totp": code})


def test_a7_no_plaintext_totp_secret_in_the_admin_database(site):
    grants = [_grant(site, p)[1] for p in ("operator_juki", "operator_both")]
    engine = site.registers.admin_engine
    with engine.connect() as conn:
        cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(operators)")] if engine.dialect.name == "sqlite" \
            else conn.execute(text("SELECT column_name FROM information_schema.columns "
                                   "WHERE table_name = 'operators'")).scalars().all()
        sealed = conn.execute(text("SELECT count(*) FROM operators WHERE totp_secret_ct IS NOT NULL")).scalar()
    assert "totp_secret" not in cols and sealed == 2
    _assert_nowhere(engine, [g.totp_secret for g in grants])
    key_file = TotpKeys.file(site.sec.config.data_dir)           # the key: outside the database, 0600
    assert oct(key_file.stat().st_mode)[-3:] == "600"
    assert not [g for g in grants if g.totp_secret.encode() in key_file.read_bytes()]


def test_a1_a7_password_totp_login_works_with_the_sealed_secret(site):
    oid, g = _grant(site, "operator_juki")
    code = pyotp.TOTP(g.totp_secret).now()
    assert _login(site, oid, g.password, code).status_code == 200
    r = _login(site, oid, g.password, code)                     # replay protection still holds
    assert r.status_code == 401 and r.json()["error"]["code"] == "LOGIN_FAILED"
    assert _login(site, oid, "wrong", pyotp.TOTP(g.totp_secret).now()).status_code == 401


def test_a7_totp_ciphertext_moved_to_another_operator_refuses(site):
    a, ga = _grant(site, "operator_juki")
    b, gb = _grant(site, "operator_both")
    engine = site.registers.admin_engine
    with engine.begin() as conn:          # someone with write access copies A's sealed secret into B's row
        row = conn.execute(text("SELECT totp_secret_ct, totp_secret_key FROM operators WHERE operator_id = :a"),
                           {"a": a}).one()
        conn.execute(update(operators).where(operators.c.operator_id == b)
                     .values(totp_secret_ct=row.totp_secret_ct, totp_secret_key=row.totp_secret_key))
    for code in (pyotp.TOTP(ga.totp_secret).now(), pyotp.TOTP(gb.totp_secret).now()):
        r = _login(site, b, gb.password, code)
        assert r.status_code == 401 and r.json()["error"]["code"] == "LOGIN_FAILED"
    with pytest.raises(JukinetError) as e:
        TotpSecretCipher(TotpKeys.load(site.sec.config.data_dir)).open(b, row.totp_secret_ct, row.totp_secret_key)
    assert e.value.code == "ATREST_DECRYPT_FAILED" and ga.totp_secret not in str(e.value)
    assert _login(site, a, ga.password, pyotp.TOTP(ga.totp_secret).now()).status_code == 200   # A's own row works


def test_a7_admin_0005_encrypts_an_existing_plaintext_totp_secret(site, config):
    oid, g = _grant(site, "operator_juki")
    engine = site.registers.admin_engine
    migrate.downgrade("admin", engine, "admin_0004", data_dir=config.data_dir)   # back to a plaintext column
    with engine.connect() as c:
        assert c.execute(text("SELECT totp_secret FROM operators WHERE operator_id = :o"), {"o": oid}).scalar() \
            == g.totp_secret
    if engine.dialect.name == "sqlite":       # the raw check below does see a plaintext secret
        assert any(g.totp_secret.encode() in b for b in sqlite_file_bytes(engine))
    upgrade_that_seals("admin", engine, TotpKeys.file(config.data_dir), config.data_dir, "admin_0004")
    engine.dispose()
    _assert_nowhere(engine, [g.totp_secret])
    restarted = Security(config, site.registers)               # a server started after the upgrade
    res = restarted.password_login(oid, g.password, pyotp.TOTP(g.totp_secret).now(), site.terminal_id)
    assert res.operator.operator_id == oid


def test_q2_a7_missing_totp_key_file_is_a_clear_error_not_a_new_key(site, config):
    oid, g = _grant(site, "operator_juki")
    key_file = TotpKeys.file(config.data_dir)
    key_file.unlink()                                          # lost, not restored from the backup
    restarted = Security(config, site.registers)
    with pytest.raises(JukinetError) as e:
        restarted.password_login(oid, g.password, pyotp.TOTP(g.totp_secret).now(), site.terminal_id)
    assert e.value.code == "ATREST_KEY_MISSING" and not key_file.exists()
    other = site.op_ids["operator_both"]
    restarted.update_operator(ADMIN, other, roles=["operator"], registers=["juki"], affairs=["search"],
                              password_allowed=True)
    with pytest.raises(JukinetError) as e:                      # nor does a new grant make one
        restarted.grant_password(ADMIN, other)
    assert e.value.code == "ATREST_KEY_MISSING" and not key_file.exists()
