"""A1, A2, issue 19 (ADR 0042): a newcomer's first ten minutes and a lost administrator credential.

* ``make demo`` registers a demo システム管理者 with the registered fallback of A1 (password + TOTP) for
  the demo only, prints a terminal activation link, the otpauth URI and a terminal QR code, and which
  role sees which screen; what it prints signs in for real; a second run prints the same sign-in.
* ``jukinet operator recover-admin`` (A2) runs only where the data directory is (it needs its keys), removes
  the lost authenticators, issues a new one-time enrollment link (and, on request, a new password + TOTP
  pair) and is recorded in the admin operation log. Both engines."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

import pyotp
from sqlalchemy import insert, select
from typer.testing import CliRunner

from jukinet.cli import app as cli_app
from jukinet.cli.common import installation
from jukinet.cli.security import qr_text, role_screen_lines, signin_lines
from jukinet.security import demo_signin
from jukinet.store.tables_security import OPLOG, webauthn_credentials

BASE = "http://localhost:8700"


def admin_log(inst, action=None):
    log = OPLOG["admin"][0]
    with inst.registers.admin_engine.connect() as conn:
        rows = conn.execute(select(log).order_by(log.c.seq)).all()
    return [r for r in rows if action is None or r.action == action]


def _sign_in(sec, info, terminal_id):
    code = pyotp.parse_uri(info.totp_uri).now()
    return sec.password_login(info.operator_id, info.password, code, terminal_id)


def test_a1_demo_admin_signs_in_with_the_printed_password_and_one_time_password(config):
    config.security.training_required = True            # as `jukinet init` leaves it
    config.save()
    with installation(config.data_dir) as inst:
        sec = inst.security
        info = demo_signin.ensure(sec, config.data_dir, BASE)
        assert info.created and info.operator_id == "DEMO-ADMIN" and info.terminal_link.startswith(
            f"{BASE}/terminal/activate?code=")
        assert info.totp_uri.startswith("otpauth://totp/") and "issuer=jukinet" in info.totp_uri
        # what is printed: the link, the URI, a QR code, the ID and the password, and the login page
        lines = signin_lines(info.operator_id, info.password, info.totp_uri, f"{BASE}/login",
                             terminal_link=info.terminal_link)
        text = "\n".join(lines)
        for item in (info.terminal_link, info.totp_uri, "DEMO-ADMIN", info.password, f"{BASE}/login", "6桁"):
            assert item in text, item
        assert "█" in text and qr_text(info.totp_uri).strip().splitlines()[1] in text      # the QR code itself
        # it works: the browser activates the terminal, then the password + the TOTP code sign in
        code = parse_qs(urlparse(info.terminal_link).query)["code"][0]
        terminal_id, _secret = sec.activate_terminal(code)
        res = _sign_in(sec, info, terminal_id)
        assert res.operator.operator_id == "DEMO-ADMIN" and "admin" in res.operator.roles
        # everything was done as an ordinary, logged administration by the actor "demo"
        by_demo = [(e.action, e.operator_id) for e in admin_log(inst) if e.operator_id == "demo"]
        assert {("operator_register", "demo"), ("training_record", "demo"), ("password_grant", "demo"),
                ("terminal_register", "demo")} <= set(by_demo)
        path = demo_signin.info_path(config.data_dir)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # a second `make demo` prints the same sign-in and registers nothing new
        before = len(admin_log(inst))
        again = demo_signin.ensure(sec, config.data_dir, BASE)
        assert (again.password, again.totp_uri, again.created, again.terminal_link) == (
            info.password, info.totp_uri, False, None)
        assert len(admin_log(inst)) == before


def test_a1_a3_demo_prints_which_role_sees_which_screen():
    text = "\n".join(role_screen_lines())
    for role, screen in (("システム管理者", "/roster"), ("業務担当者", "/search"), ("管理責任者", "/audit/reports"),
                         ("監査者", "/audit"), ("運用担当者", "/ops")):
        line = next(x for x in text.splitlines() if x.strip().startswith(role))
        assert screen in line, (role, screen)
    assert "/search" not in next(x for x in text.splitlines() if "運用担当者" in x)    # A7: never personal data


def _bootstrap(runner, d):
    r = runner.invoke(cli_app, ["operator", "bootstrap", "--name", "管理　太郎", "--id", "ADMIN01", "--data-dir", d])
    assert r.exit_code == 0, r.output


def test_a2_recover_admin_removes_the_lost_authenticator_issues_a_new_link_and_is_logged(config):
    runner = CliRunner()
    d = str(config.data_dir)
    _bootstrap(runner, d)
    with installation(config.data_dir) as inst:
        with inst.registers.admin_tx() as conn:     # the fingerprint enrolled on the lost reader
            conn.execute(insert(webauthn_credentials).values(
                credential_id="lost-credential", operator_id="ADMIN01", public_key=b"k", sign_count=1,
                created_at=datetime.now(timezone.utc)))
    r = runner.invoke(cli_app, ["operator", "recover-admin", "--operator", "ADMIN01", "--data-dir", d])
    assert r.exit_code == 1                          # asks first; "no" changes nothing
    r = runner.invoke(cli_app, ["operator", "recover-admin", "--operator", "ADMIN01", "--yes", "--data-dir", d])
    assert r.exit_code == 0, r.output
    token = re.search(r"/enroll\?token=([\w-]+)", r.output).group(1)
    with installation(config.data_dir) as inst:
        with inst.registers.admin_tx(write=False) as conn:
            assert conn.execute(select(webauthn_credentials)).all() == []
        assert inst.security.enrollment_operator(token).operator_id == "ADMIN01"
        e = admin_log(inst, "admin_recover")[-1]
        assert e.operator_id == "recover" and e.outcome == "granted"
        detail = json.loads(e.detail)
        assert detail["target"] == "ADMIN01" and detail["credentials_removed"] == 1 and detail["password"] is False
        assert "local_user" in detail


def test_a1_a2_recover_admin_with_password_prints_a_working_fallback(config):
    runner = CliRunner()
    d = str(config.data_dir)
    _bootstrap(runner, d)
    r = runner.invoke(cli_app, ["operator", "recover-admin", "--operator", "ADMIN01", "--password", "--yes",
                                "--data-dir", d])
    assert r.exit_code == 0, r.output
    uri = re.search(r"(otpauth://totp/\S+)", r.output).group(1)
    password = re.search(r"パスワード: (\S+)", r.output).group(1)
    link = re.search(r"(http://\S+/terminal/activate\?code=\S+)", r.output)
    assert "█" in r.output
    with installation(config.data_dir) as inst:
        sec = inst.security
        terminal_id = [t for t in sec.list_terminals()][0].terminal_id
        if link:
            terminal_id, _ = sec.activate_terminal(parse_qs(urlparse(link.group(1)).query)["code"][0])
        res = sec.password_login("ADMIN01", password, pyotp.parse_uri(uri).now(), terminal_id)
        assert res.operator.operator_id == "ADMIN01"
        assert [e.operator_id for e in admin_log(inst, "password_grant")][-1] == "recover"


def test_a2_recover_admin_refuses_an_operator_who_is_not_an_administrator(config):
    runner = CliRunner()
    d = str(config.data_dir)
    _bootstrap(runner, d)
    with installation(config.data_dir) as inst:
        inst.security.register_operator(demo_signin.ACTOR, display_name="業務　花子", roles=["operator"],
                                        registers=["juki"], affairs=["search"], operator_id="OP01")
        before = len(admin_log(inst))
    for who, code in (("OP01", "RECOVER_NOT_ADMIN"), ("NOBODY", "OPERATOR_NOT_FOUND")):
        r = runner.invoke(cli_app, ["operator", "recover-admin", "--operator", who, "--yes", "--data-dir", d])
        assert r.exit_code == 2 and code in r.output, r.output
    with installation(config.data_dir) as inst:
        after = admin_log(inst)                        # a refused recovery changes nothing and is logged
        assert [(e.action, e.operator_id, e.outcome, json.loads(e.detail)["code"]) for e in after[before:]] == [
            ("admin_recover", "recover", "refused", "RECOVER_NOT_ADMIN"),
            ("admin_recover", "recover", "refused", "OPERATOR_NOT_FOUND")]
        assert inst.security.get_operator("OP01").status == "pending"


def test_a1_make_demo_prints_the_sign_in_and_the_role_table(tmp_path, monkeypatch):
    """`jukinet demo` itself (SQLite, as `make demo`): the servers, the seed and the backup are replaced by
    stand-ins, everything else — init, the demo administrator, what is printed — is real."""
    from types import SimpleNamespace

    import importlib

    serve_cli = importlib.import_module("jukinet.cli.serve")        # the module (its name is shadowed by a function)

    monkeypatch.setattr(serve_cli, "run_seed", lambda data_dir, residents: None)
    monkeypatch.setattr(serve_cli, "demo_backup", lambda config: SimpleNamespace(
        error_code="TEST", backup_file=None, backup_bytes=0, seconds=0.0, key_dir=tmp_path / "k"))
    monkeypatch.setattr(serve_cli, "DemoPeers", lambda inst: SimpleNamespace(start=lambda: SimpleNamespace(stop=lambda: None)))
    monkeypatch.setattr(serve_cli, "run_server", lambda inst, demo_log=None: None)
    d = tmp_path / "demo"
    r = CliRunner().invoke(cli_app, ["demo", "--data-dir", str(d), "--residents", "1"], terminal_width=200)
    assert r.exit_code == 0, r.output
    out = r.output
    if os.environ.get('JUKINET_SHOW_DEMO'):
        print(out)
    info = json.loads(demo_signin.info_path(d).read_text(encoding="utf-8"))
    for item in ("DEMO-ADMIN", info["password"], info["totp_uri"], "http://localhost:8700/login",
                 "/terminal/activate?code=", "運用担当者", "/ops", "recover-admin", "█"):
        assert item in out, item
    with installation(d) as inst:        # what was printed signs in
        code = re.search(r"/terminal/activate\?code=(\S+)", out).group(1)
        terminal_id, _ = inst.security.activate_terminal(code)
        res = inst.security.password_login("DEMO-ADMIN", info["password"], pyotp.parse_uri(info["totp_uri"]).now(),
                                           terminal_id)
        assert res.operator.operator_id == "DEMO-ADMIN"
