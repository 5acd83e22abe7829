"""Certificate revocation on the mutually authenticated channels (U1, U6, A11; ADR 0030): real
HTTPS with the development CA's CRL, on both backends."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from jukinet import pki
from jukinet.pki.crl import DevCa, RevocationChecker
from jukinet.server import PrefectureServer
from jukinet.observability import metrics
from jukinet.sim.cs import CsClient
from jukinet.store.tables_intake import INTAKE_TABLES

from .helpers import TSU, YOKKAICHI, jcode, tennyu


def comm(registers, register="juki") -> list:
    t = INTAKE_TABLES[register][2]
    with registers.engine(register).connect() as c:
        return c.execute(select(t).order_by(t.c.log_id)).all()


def outbox(registers, register="juki") -> list:
    t = INTAKE_TABLES[register][1]
    with registers.engine(register).connect() as c:
        return c.execute(select(t).order_by(t.c.update_seq)).all()


def persons(registers) -> int:
    with registers.engine("juki").connect() as c:
        return len(c.exec_driver_sql("SELECT juminhyo_code FROM juki_current").all())


def send(config, code, n):
    client = CsClient(config, code)
    try:
        return client.send(tennyu(jcode(n), muni=code))
    finally:
        client.close()


def until(fn, timeout=30.0):
    """Poll ``fn`` until it returns a truthy value: the running server re-reads the CRL by itself (a loaded CI machine may take a while)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.1)


def code_of(answer):
    return (answer.get("error") or {}).get("code") if answer["status"] == "rejected" else answer["status"]


def test_u1_revoked_cs_is_refused_and_logged_others_accepted_reissue_restores(installation, server, registers):
    assert code_of(send(installation, TSU, 1)) == "accepted"
    old = pki.load_cert(installation.resolve(pki.cs_paths(installation.tls.cs_dir, TSU)[0]))
    entry = DevCa(installation).revoke(TSU, "key_compromise")
    assert entry.identity == f"lg:{TSU}" and entry.serial == old.serial_number
    # picked up by the running server (no restart) within the re-read interval
    assert until(lambda: code_of(send(installation, TSU, 2)) == "CERT_REVOKED")
    before = persons(registers)
    answer = send(installation, TSU, 3)
    assert answer["error"] == {"code": "CERT_REVOKED", "message": "証明書は失効しています。"}
    assert persons(registers) == before                       # refused before the payload was read
    row = comm(registers)[-1]
    assert (row.peer, row.result, row.code) == (f"lg:{TSU}", "rejected", "CERT_REVOKED")
    assert row.peer_cert_sha256 == pki.fingerprint(old.public_bytes(serialization.Encoding.DER))
    assert code_of(send(installation, YOKKAICHI, 4)) == "accepted"   # another CS is not affected
    DevCa(installation).reissue(TSU)                           # a fresh key and certificate
    assert code_of(send(installation, TSU, 5)) == "accepted"
    assert persons(registers) == before + 2


def _foreign_signed_crl(installation) -> bytes:
    """A CRL naming our CA as issuer but signed with another key (and listing nothing)."""
    ca = pki.load_cert(installation.resolve(installation.tls.ca_cert))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now)
           .next_update(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.PEM)


def _expired_crl(installation) -> bytes:
    ca = DevCa(installation)
    now = dt.datetime.now(dt.timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.ca.subject)
           .last_update(now - dt.timedelta(days=2)).next_update(now - dt.timedelta(days=1))
           .add_extension(x509.CRLNumber(10**6), critical=False).sign(ca.key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.PEM)


def _errors(code):
    return metrics.REGISTRY.get_sample_value("jukinet_crl_load_errors_total", {"code": code}) or 0


def test_u1_forged_or_expired_crl_fails_closed(installation, server, registers):
    crl_path = installation.resolve(installation.tls.crl_file)
    before_revocation = crl_path.read_bytes()
    DevCa(installation).revoke(TSU, "key_compromise")
    assert until(lambda: code_of(send(installation, TSU, 10)) == "CERT_REVOKED")
    # the CA's older CRL put back (validly signed, without the revocation) is refused as a rollback
    errors = _errors("CRL_ROLLBACK")
    crl_path.write_bytes(before_revocation)
    assert until(lambda: _errors("CRL_ROLLBACK") > errors)
    assert code_of(send(installation, TSU, 17)) == "CERT_REVOKED"
    # a CRL not signed by our CA (here: one that would un-revoke TSU) is ignored; the last valid stays
    errors = _errors("CRL_SIGNATURE")
    crl_path.write_bytes(_foreign_signed_crl(installation))
    assert until(lambda: _errors("CRL_SIGNATURE") > errors)
    assert code_of(send(installation, TSU, 11)) == "CERT_REVOKED"
    assert code_of(send(installation, YOKKAICHI, 12)) == "accepted"
    # a CRL past its nextUpdate: no CS is accepted (inbound fails closed), and the refusal is logged
    crl_path.write_bytes(_expired_crl(installation))
    assert until(lambda: code_of(send(installation, YOKKAICHI, 13)) == "CRL_UNAVAILABLE")
    before = persons(registers)
    assert code_of(send(installation, YOKKAICHI, 16)) == "CRL_UNAVAILABLE"
    assert persons(registers) == before
    row = comm(registers)[-1]
    assert (row.peer, row.code) == (f"lg:{YOKKAICHI}", "CRL_UNAVAILABLE") and len(row.peer_cert_sha256) == 64
    assert metrics.REGISTRY.get_sample_value("jukinet_crl_next_update_timestamp_seconds") < time.time()
    # the CA publishes a fresh CRL (the revocation is kept): accepted again without a restart
    DevCa(installation).publish()
    assert until(lambda: code_of(send(installation, YOKKAICHI, 14)) == "accepted")
    assert code_of(send(installation, TSU, 15)) == "CERT_REVOKED"
    assert metrics.REGISTRY.get_sample_value("jukinet_crl_next_update_timestamp_seconds") > time.time() + 86400


def test_u1_missing_crl_refuses_every_cs(installation, registers):
    installation.resolve(installation.tls.crl_file).unlink()
    checker = RevocationChecker(installation)
    der = pki.load_cert(installation.resolve(pki.cs_paths(installation.tls.cs_dir, TSU)[0])).public_bytes(
        serialization.Encoding.DER)
    with pytest.raises(Exception) as e:
        checker.check(der)
    assert e.value.code == "CRL_UNAVAILABLE"


def test_a11_revoked_national_certificate_holds_the_outbox_until_reissue(installation, server, registers):
    from jukinet.outbox.worker import OutboxWorker
    from jukinet.provision.national import NationalClient, NationalUnavailable
    from jukinet.sim.national import NationalStore, db_path, start_national

    running = start_national(installation, ("juki",), synthetic=5)
    assert code_of(send(installation, TSU, 20)) == "accepted"
    DevCa(installation).revoke("national", "key_compromise")
    worker = OutboxWorker(registers, installation)
    try:
        assert worker.drain_once("juki") == 0                    # nothing sent: the handshake failed
        (entry,) = outbox(registers)
        assert (entry.state, entry.last_error) == ("pending", "CERT_REVOKED")
        row = comm(registers)[-1]
        assert (row.direction, row.peer, row.result, row.code) == ("out", "national", "failed", "CERT_REVOKED")
        # the national query client refuses the same certificate
        query = NationalClient(installation, timeout=5)
        with pytest.raises(NationalUnavailable) as e:
            query.query("juki", {"juminhyo_code": jcode(20)})
        assert e.value.code == "NATIONAL_CERT_REVOKED"
        # J-LIS installs a reissued certificate: the message waiting in the outbox goes out
        for t, store in running:
            t.stop()
            store.close()
        DevCa(installation).reissue("national")
        running = start_national(installation, ("juki",), synthetic=0)
        worker.drain("juki", timeout=30)
        (entry,) = outbox(registers)
        assert entry.state == "delivered"
        assert comm(registers)[-1].result == "stored"
        query.query("juki", {"juminhyo_code": jcode(20)})
        query.close()
    finally:
        worker.stop()
        for t, store in running:
            t.stop()
            store.close()
    store = NationalStore(db_path(installation, "juki"), "juki")
    try:
        assert len(store.dump()) == 1
    finally:
        store.close()


def test_u1_pki_cli_revoke_crl_reissue(installation):
    """The procedure a person runs: revoke with a reason, show the CRL (no personal data), reissue."""
    from typer.testing import CliRunner

    from jukinet.cli import app

    run = CliRunner()
    d = ["--data-dir", str(installation.data_dir)]
    old = pki.load_cert(installation.resolve(pki.cs_paths(installation.tls.cs_dir, TSU)[0]))
    r = run.invoke(app, ["pki", "revoke", "--municipality", TSU, "--reason", "key_compromise", *d])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["pki", "revoke", "--serial", "12AB", "--reason", "nonsense", *d])
    assert r.exit_code == 2 and "REASON_UNKNOWN" in r.output
    r = run.invoke(app, ["pki", "revoke", *d])
    assert r.exit_code == 2 and "TARGET_REQUIRED" in r.output
    r = run.invoke(app, ["pki", "reissue", "--municipality", TSU, *d])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["pki", "crl", *d], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert format(old.serial_number, "X") in r.output and f"lg:{TSU}" in r.output and "鍵の危殆化" in r.output
    assert "次回更新" in r.output and "令和" in r.output
    crl = x509.load_pem_x509_crl(installation.resolve(installation.tls.crl_file).read_bytes())
    assert crl.is_signature_valid(pki.load_cert(installation.resolve(installation.tls.ca_cert)).public_key())
    assert crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    new = pki.load_cert(installation.resolve(pki.cs_paths(installation.tls.cs_dir, TSU)[0]))
    assert new.serial_number != old.serial_number
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None
