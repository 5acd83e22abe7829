"""事務1 intake over the real CS channel (HTTPS, mutual TLS): U1–U4, U6, Q2."""

from __future__ import annotations

import datetime as dt
import ssl
import threading

import httpx
import pytest
from sqlalchemy import func, select, text

from jukinet import pki
from jukinet.store.tables_intake import INTAKE_TABLES

from .helpers import TSU, YOKKAICHI, change, fuhyo_kisai, jcode, tennyu, today

TABLES = ("juki_current", "juki_history", "intake_notifications", "outbox", "counters")
FTABLES = ("fuhyo_current", "fuhyo_history", "intake_notifications", "outbox", "counters")


def snapshot(registers) -> dict:
    """Every row of every intake-relevant table but the communication log."""
    out = {}
    for reg, tables in (("juki", TABLES), ("fuhyo", FTABLES)):
        with registers.engine(reg).connect() as c:
            for t in tables:
                out[(reg, t)] = sorted(map(repr, c.execute(text(f"SELECT * FROM {t}")).all()))
    return out


def comm(registers, register="juki") -> list:
    t = INTAKE_TABLES[register][2]
    with registers.engine(register).connect() as c:
        return c.execute(select(t).order_by(t.c.log_id)).all()


def current(registers, code, register="juki"):
    with registers.uow(register, write=False) as uow:
        return uow.repo.get(code)


def _ok(a):
    assert a["status"] == "accepted", a
    assert a["error"] is None


def _refused(a, code):
    assert a["status"] == "rejected", a
    assert a["error"]["code"] == code, a


# --- U1: who may send ---------------------------------------------------------------------------

def test_u1_cs_with_its_own_certificate_is_accepted(cs, registers):
    a = cs[TSU].send(tennyu(jcode(1)))
    _ok(a)
    rec = current(registers, jcode(1))
    assert rec.municipality_code == TSU and rec.reason == "国内転入" and rec.operator_id is None
    row = comm(registers)[-1]
    assert (row.channel, row.direction, row.peer, row.result) == ("cs", "in", f"lg:{TSU}", "accepted")
    assert len(row.peer_cert_sha256) == 64 and len(row.digest) == 64


def test_u1_rejects_request_without_client_certificate(installation, server, registers):
    ctx = ssl.create_default_context(cafile=str(installation.resolve(installation.tls.ca_cert)))
    before = snapshot(registers)
    r = httpx.post(f"{server.base_url}/cs/v1/notifications", json=tennyu(jcode(2)), verify=ctx)
    assert r.status_code == 401 and r.json()["error"]["code"] == "CLIENT_CERT_REQUIRED"
    assert snapshot(registers) == before
    assert comm(registers)[-1].code == "CLIENT_CERT_REQUIRED"


def _foreign_cs_cert(tmp_path, code=TSU):
    ca, key = pki.create_ca(tmp_path / "f-ca.pem", tmp_path / "f-ca.key", name="偽の認証局")
    pki.issue(ca, key, pki.PeerIdentity("cs", code), tmp_path / "f.pem", tmp_path / "f.key", common_name="偽CS",
              client=True)
    return tmp_path / "f.pem", tmp_path / "f.key"


def _expired_cs_cert(installation, tmp_path, code=TSU):
    from cryptography.hazmat.primitives import serialization

    ca = pki.load_cert(installation.resolve(installation.tls.ca_cert))
    key = serialization.load_pem_private_key(installation.resolve(installation.tls.ca_key).read_bytes(), None)
    now = dt.datetime.now(dt.timezone.utc)
    pki.issue(ca, key, pki.PeerIdentity("cs", code), tmp_path / "e.pem", tmp_path / "e.key", common_name="期限切れ",
              client=True, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    return tmp_path / "e.pem", tmp_path / "e.key"


def _tls_refused(installation, server, registers, cert, code):
    from jukinet.sim.cs import CsClient

    before = snapshot(registers)
    client = CsClient(installation, TSU, cert=cert)
    with pytest.raises(httpx.HTTPError):
        client.send(tennyu(jcode(3)))
    client.close()
    server.tls_log.flush()
    assert snapshot(registers) == before
    rows = [r for r in comm(registers) if r.code == code]
    assert rows and rows[-1].result == "rejected" and rows[-1].peer == "unknown"


def test_u1_rejects_unknown_ca(installation, server, registers, tmp_path):
    _tls_refused(installation, server, registers, _foreign_cs_cert(tmp_path), "TLS_UNKNOWN_CA")


def test_u1_rejects_expired_certificate(installation, server, registers, tmp_path):
    _tls_refused(installation, server, registers, _expired_cs_cert(installation, tmp_path), "TLS_CERT_EXPIRED")


def test_u1_application_rechecks_the_certificate(installation, registers, tmp_path):
    """Behind a TLS terminator that let a foreign certificate through, the app still refuses it."""
    from fastapi.testclient import TestClient

    from jukinet.web.app import create_app

    cert, _ = _foreign_cs_cert(tmp_path)
    app = create_app(installation, registers)
    pem = cert.read_text()

    async def wrapped(scope, receive, send):
        scope.setdefault("extensions", {})["tls"] = {"client_cert_chain": [pem]}
        await app(scope, receive, send)

    with TestClient(wrapped) as c:
        r = c.post("/cs/v1/notifications", json=tennyu(jcode(4)))
    assert r.status_code == 403 and r.json()["error"]["code"] == "CERT_UNTRUSTED"


def test_u1_rejects_a_certificate_that_is_not_a_cs(installation, server, registers):
    from jukinet.sim.cs import CsClient

    tls = installation.tls
    client = CsClient(installation, TSU, cert=(installation.resolve(tls.server_cert), installation.resolve(tls.server_key)))
    r = client.post("/cs/v1/notifications", b"{}")
    client.close()
    assert r.status_code == 403 and r.json()["error"]["code"] == "NOT_A_CS"


def test_u1_payload_municipality_must_be_the_certificates(cs, registers):
    before = snapshot(registers)
    a = cs[YOKKAICHI].send(tennyu(jcode(5), muni=TSU))
    _refused(a, "MUNICIPALITY_MISMATCH")
    assert snapshot(registers) == before
    row = comm(registers)[-1]
    assert row.peer == f"lg:{YOKKAICHI}" and row.result == "rejected" and row.code == "MUNICIPALITY_MISMATCH"


def test_u1_cs_may_touch_only_its_own_residents(cs, registers):
    base = tennyu(jcode(6))
    _ok(cs[TSU].send(base))
    before = snapshot(registers)
    other = change(base, "転居", address="三重県四日市市諏訪町1番5号")
    other["municipality_code"] = YOKKAICHI
    _refused(cs[YOKKAICHI].send(other), "OTHER_MUNICIPALITY")
    death = change(base, "死亡")
    death["municipality_code"] = YOKKAICHI
    _refused(cs[YOKKAICHI].send(death), "OTHER_MUNICIPALITY")
    assert snapshot(registers) == before


def test_u1_address_must_lie_in_the_senders_municipality(shared):
    cs = shared.cs
    _refused(cs[TSU].send(tennyu(jcode(7), address="三重県四日市市諏訪町1番5号")), "ADDRESS_OUTSIDE_MUNICIPALITY")


# --- U2: only the prescribed items ----------------------------------------------------------------

@pytest.mark.parametrize("where", ["top", "record", "former_surname"])
def test_u2_unknown_fields_are_refused(shared, where):
    cs, registers = shared.cs, shared.registers
    n = tennyu(jcode(8))
    if where == "top":
        n["honseki"] = "三重県津市"
    elif where == "record":
        n["record"]["phone"] = "0592242012"
    else:
        n["record"]["former_surname"] = {"name": "山田", "name_kana": "ヤマダ", "note": "x"}
    before = snapshot(registers)
    a = cs[TSU].send(n)
    _refused(a, "FIELD_UNKNOWN")
    assert "0592242012" not in a["error"]["message"] and "phone" not in a["error"]["message"]
    assert snapshot(registers) == before


def test_u2_fuhyo_notification_never_carries_a_kojin_bango(shared):
    cs, registers = shared.cs, shared.registers
    n = fuhyo_kisai(jcode(9))
    n["record"]["kojin_bango"] = "625276018957"
    before = snapshot(registers)
    _refused(cs[TSU].send(n), "FIELD_UNKNOWN")
    assert snapshot(registers) == before


# --- U3: formats and reason tables ----------------------------------------------------------------

BAD_FORMATS = [
    ("juminhyo_code", "52601815906", "JUMINHYO_CODE_CHECKSUM"),
    ("juminhyo_code", "5260181590", "JUMINHYO_CODE_LENGTH"),
    ("juminhyo_code", "5260-1815907", "JUMINHYO_CODE_FORMAT"),
    ("municipality_code", "242013", "LG_CODE_CHECKSUM"),
    ("record.kojin_bango", "625276018958", "KOJIN_BANGO_CHECKSUM"),
    ("record.name_kana", "三重 太郎", "KANA_FORMAT"),
    ("record.birth_date", "1980-02-30", "DATE_FORMAT"),
    ("record.sex", "3", "SEX_INVALID"),
    ("record.name", "", "FIELD_REQUIRED"),
    ("record.name", "三重\x00太郎", "TEXT_FORMAT"),
    ("change_date", "2026/11/20", "DATE_FORMAT"),
    ("reason", "引越し", "REASON_UNKNOWN"),
    ("schema", "jukinet.notification/2", "SCHEMA_UNSUPPORTED"),
    ("register", "koseki", "REGISTER_UNKNOWN"),
    ("record.oaza_code", "12-3", "OAZA_CODE_FORMAT"),
]


@pytest.mark.parametrize("path,value,code", BAD_FORMATS)
def test_u3_format_and_check_digit_errors_are_refused(shared, path, value, code):
    cs, registers = shared.cs, shared.registers
    n = tennyu(jcode(10))
    target = n
    *parents, leaf = path.split(".")
    for p in parents:
        target = target[p]
    target[leaf] = value
    before = snapshot(registers)
    a = cs[TSU].send(n)
    _refused(a, code)
    assert snapshot(registers) == before
    assert value not in a["error"]["message"] or not value


def test_u3_dates_no_future_change_none_before_birth(shared):
    cs = shared.cs
    n = tennyu(jcode(11))
    n["change_date"] = (today() + dt.timedelta(days=1)).isoformat()
    _refused(cs[TSU].send(n), "CHANGE_DATE_FUTURE")
    n = tennyu(jcode(11))
    n["change_date"] = "1979-01-01"
    _refused(cs[TSU].send(n), "CHANGE_DATE_BEFORE_BIRTH")


def test_u3_tenkyo_rejects_name_change_over_the_wire(cs, registers):
    base = tennyu(jcode(12))
    _ok(cs[TSU].send(base))
    before = snapshot(registers)
    a = cs[TSU].send(change(base, "転居", address="三重県津市栄町1丁目1番", name="三重\u3000次郎"))
    _refused(a, "FORBIDDEN_CHANGE")
    assert "次郎" not in a["error"]["message"]
    assert snapshot(registers) == before
    _ok(cs[TSU].send(change(base, "転居", address="三重県津市栄町1丁目1番")))


def test_u3_tennyu_of_a_current_resident_is_refused(cs):
    base = tennyu(jcode(13))
    _ok(cs[TSU].send(base))
    _refused(cs[TSU].send(change(base, "国内転入")), "ALREADY_CURRENT")


def test_u3_removal_of_a_removed_person_is_refused(cs, registers):
    base = tennyu(jcode(14))
    _ok(cs[TSU].send(base))
    _ok(cs[TSU].send(change(base, "死亡")))
    before = snapshot(registers)
    _refused(cs[TSU].send(change(base, "死亡")), "ALREADY_REMOVED")
    _refused(cs[TSU].send(change(base, "転居", address="三重県津市栄町2丁目")), "ALREADY_REMOVED")
    assert snapshot(registers) == before


def test_u3_birth_requires_birth_date_equal_change_date(cs):
    n = tennyu(jcode(15), reason="出生", birth_date=(today() - dt.timedelta(days=3)).isoformat())
    _refused(cs[TSU].send(n), "BIRTH_DATE_MISMATCH")
    n["change_date"] = n["record"]["birth_date"]
    n["notification_id"] += "b"
    _ok(cs[TSU].send(n))


def test_u3_fuhyo_manager_must_be_the_sender(cs, registers):
    n = fuhyo_kisai(jcode(16), muni=TSU)
    n["record"]["fuhyo_municipality_code"] = YOKKAICHI
    _refused(cs[TSU].send(n), "FUHYO_MANAGER_MISMATCH")


def test_u3_fuhyo_removal_of_removed_record_is_an_error(cs, registers):
    base = fuhyo_kisai(jcode(17))
    _ok(cs[TSU].send(base))
    gone = change(base, "消除", status="消除")
    _ok(cs[TSU].send(gone))
    before = snapshot(registers)
    _refused(cs[TSU].send(change(base, "消除", status="消除")), "ALREADY_REMOVED")
    assert snapshot(registers) == before
    assert current(registers, jcode(17), "fuhyo").status == "消除"


def test_u3_fuhyo_abroad_keeps_the_record_with_last_address(cs, registers):
    base = fuhyo_kisai(jcode(18))
    _ok(cs[TSU].send(base))
    _ok(cs[TSU].send(change(base, "国外転出", address=None, address_municipality_code=None,
                            last_address=base["record"]["address"])))
    rec = current(registers, jcode(18), "fuhyo")
    assert rec.status == "現存" and rec.address is None and rec.last_address == base["record"]["address"]


def test_q2_refusals_have_code_and_japanese_message_without_the_values(shared):
    cs = shared.cs
    n = tennyu(jcode(19), name="秘密\u3000氏名", kojin_bango="625276018958")
    a = cs[TSU].send(n)
    _refused(a, "KOJIN_BANGO_CHECKSUM")
    msg = a["error"]["message"]
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in msg)
    assert "625276018958" not in msg and "秘密" not in msg


# --- U4: apply, idempotency, batches, concurrency ------------------------------------------------

def test_u4_apply_keeps_history_sets_seq_timestamp_notified_date(cs, registers):
    base = tennyu(jcode(20))
    _ok(cs[TSU].send(base))
    first = current(registers, jcode(20))
    _ok(cs[TSU].send(change(base, "転居", address="三重県津市栄町1丁目1番", oaza_code="0100")))
    now = current(registers, jcode(20))
    with registers.uow("juki", write=False) as uow:
        hist = uow.repo.history_of(jcode(20))
    assert [h.update_seq for h in hist] == [first.update_seq] and hist[0].address == base["record"]["address"]
    assert now.update_seq == first.update_seq + 1 and now.reason == "転居" and now.oaza_code == "0100"
    assert now.timestamp.tzinfo is not None and now.notified_date == today()


def test_u4_duplicate_resend_changes_nothing(cs, registers):
    n = tennyu(jcode(21))
    _ok(cs[TSU].send(n))
    before = snapshot(registers)
    a = cs[TSU].send(n)
    assert a == {"notification_id": n["notification_id"], "status": "duplicate", "error": None}
    reordered = dict(reversed(list(n.items())))       # same content, other key order
    assert cs[TSU].send(reordered)["status"] == "duplicate"
    assert snapshot(registers) == before
    assert [r.result for r in comm(registers)[-2:]] == ["duplicate", "duplicate"]


def test_u4_reused_notification_id_with_other_content_is_refused(cs, registers):
    n = tennyu(jcode(22))
    _ok(cs[TSU].send(n))
    other = change(n, "転居", n_id=n["notification_id"], address="三重県津市栄町3丁目")
    before = snapshot(registers)
    r = cs[TSU].post("/cs/v1/notifications", __import__("json").dumps(other).encode())
    assert r.status_code == 409 and r.json()["error"]["code"] == "NOTIFICATION_ID_REUSED"
    assert snapshot(registers) == before
    assert comm(registers)[-1].code == "NOTIFICATION_ID_REUSED"


def test_u4_idempotency_key_is_sender_and_id(cs, registers):
    """Two municipalities may use the same notification_id."""
    _ok(cs[TSU].send(tennyu(jcode(23), n_id="same-1")))
    _ok(cs[YOKKAICHI].send(tennyu(jcode(24), muni=YOKKAICHI, n_id="same-1")))


def test_u4_batch_answers_each_and_refused_ones_change_nothing(cs, registers):
    base = tennyu(jcode(25))
    batch = [base, change(base, "転居", address="三重県津市栄町1丁目"), tennyu(jcode(26), extra_field=1),
             change(base, "国内転入"), base, tennyu(jcode(27))]
    answers = cs[TSU].send_batch(batch)
    assert [a["status"] for a in answers] == ["accepted", "accepted", "rejected", "rejected", "duplicate", "accepted"]
    assert [a["error"]["code"] for a in answers if a["error"]] == ["FIELD_UNKNOWN", "ALREADY_CURRENT"]
    assert current(registers, jcode(26)) is None
    assert current(registers, jcode(25)).address == "三重県津市栄町1丁目"
    rows = comm(registers)[-6:]
    assert [r.result for r in rows] == [a["status"] for a in answers]
    assert len({r.envelope_digest for r in rows}) == 1


def test_u4_batch_envelope_errors(shared):
    cs = shared.cs
    r = cs[TSU].post("/cs/v1/notifications:batch", b'{"notifications": []}')
    assert r.status_code == 400 and r.json()["error"]["code"] == "BATCH_SIZE"
    r = cs[TSU].post("/cs/v1/notifications:batch", b'[1, 2]')
    assert r.status_code == 400 and r.json()["error"]["code"] == "BATCH_FORMAT"
    r = cs[TSU].post("/cs/v1/notifications", b'{"a": 1, "a": 2}')
    assert r.status_code == 400 and r.json()["error"]["code"] == "BODY_NOT_JSON"


def test_u4_juminhyo_code_change_moves_the_record(cs, registers):
    base = tennyu(jcode(28))
    _ok(cs[TSU].send(base))
    _ok(cs[TSU].send(change(base, "住民票コード変更", new_code=jcode(29))))
    assert current(registers, jcode(28)) is None
    assert current(registers, jcode(29)).reason == "住民票コード変更"
    outbox = INTAKE_TABLES["juki"][1]
    with registers.engine("juki").connect() as c:
        last = c.execute(select(outbox).order_by(outbox.c.update_seq.desc())).first()
    assert (last.juminhyo_code, last.prior_code) == (jcode(29), jcode(28))
    # the old code cannot come back as a birth
    n = tennyu(jcode(28), reason="出生", birth_date=today().isoformat())
    n["change_date"] = today().isoformat()
    _refused(cs[TSU].send(n), "RECORD_EXISTS")


def test_u4_concurrent_cs_are_serialised_per_register(installation, cs, registers):
    results, errors = [], []

    def run(code, start):
        from jukinet.sim.cs import CsClient

        c = CsClient(installation, code)
        try:
            for i in range(15):
                base = tennyu(jcode(start + i), muni=code)
                results.append(c.send(base))
                results.append(c.send(change(base, "転居", address=base["record"]["address"] + "1")))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(code, 1000 + k * 100)) for k, code in enumerate(cs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 90 and all(a["status"] == "accepted" for a in results)
    outbox = INTAKE_TABLES["juki"][1]
    with registers.engine("juki").connect() as c:
        seqs = [r[0] for r in c.execute(select(outbox.c.update_seq).order_by(outbox.c.update_seq))]
        hist = c.execute(text("SELECT count(*) FROM juki_history")).scalar()
    assert seqs == list(range(1, 91)) and hist == 45


# --- U6: the communication log ------------------------------------------------------------------

def test_u6_every_message_recorded(cs, registers, national, installation):
    from jukinet.outbox.worker import OutboxWorker

    base = tennyu(jcode(40))
    _ok(cs[TSU].send(base))                                    # in: accepted
    assert cs[TSU].send(base)["status"] == "duplicate"         # in: duplicate
    _refused(cs[TSU].send(change(base, "国内転入")), "ALREADY_CURRENT")  # in: rejected
    _ok(cs[TSU].send(fuhyo_kisai(jcode(41))))                  # in (fuhyo)
    worker = OutboxWorker(registers, installation)
    worker.drain()
    worker.stop()
    rows = comm(registers, "juki")
    ins = [r for r in rows if r.direction == "in"]
    outs = [r for r in rows if r.direction == "out"]
    assert [r.result for r in ins] == ["accepted", "duplicate", "rejected"]
    assert [(r.peer, r.result) for r in outs] == [("national", "stored")]
    assert all(r.at.tzinfo is not None or r.at for r in rows)
    assert all(r.digest and len(r.digest) == 64 for r in rows)
    frows = comm(registers, "fuhyo")
    assert [(r.direction, r.result) for r in frows] == [("in", "accepted"), ("out", "stored")]
    assert [r.peer for r in frows] == [f"lg:{TSU}", "national-fuhyo"]
    # digests only: no column holds a value of the notification
    for r in rows + frows:
        assert "三重" not in repr(tuple(r)) and jcode(40) not in repr(tuple(r))


def test_u6_intake_is_automatic_no_operator(cs, registers):
    _ok(cs[TSU].send(tennyu(jcode(42))))
    rec = current(registers, jcode(42))
    assert rec.operator_id is None and rec.terminal_id is None


def test_u1_plain_http_on_loopback_serves_the_ui_but_never_the_cs_channel(installation, server, registers):
    """Port N: HTTPS for all; on loopback also plain HTTP (operator browser) — the CS endpoints
    still refuse anything without a verified client certificate."""
    base = f"http://{installation.server.host}:{installation.server.port}"
    assert httpx.get(f"{base}/health").status_code == 200
    before = snapshot(registers)
    r = httpx.post(f"{base}/cs/v1/notifications", json=tennyu(jcode(43)))
    assert r.status_code == 401 and r.json()["error"]["code"] == "CLIENT_CERT_REQUIRED"
    assert snapshot(registers) == before


def test_u4_many_changes_of_one_person_in_one_batch_keep_every_version(cs, registers):
    a = tennyu(jcode(44))
    moved = change(a, "転居", address="三重県津市栄町1丁目")
    recoded = change(moved, "住民票コード変更", new_code=jcode(45))
    after = change(recoded, "転居", address="三重県津市栄町2丁目")
    after["juminhyo_code"] = jcode(45)
    after["new_juminhyo_code"] = None
    answers = cs[TSU].send_batch([a, moved, recoded, after])
    assert [x["status"] for x in answers] == ["accepted"] * 4
    with registers.uow("juki", write=False) as uow:
        old_hist = [(h.update_seq, h.reason) for h in uow.repo.history_of(jcode(44))]
        new_hist = [(h.update_seq, h.reason) for h in uow.repo.history_of(jcode(45))]
        now = uow.repo.get(jcode(45))
        assert uow.repo.get(jcode(44)) is None
    assert old_hist == [(1, "国内転入"), (2, "転居")]
    assert new_hist == [(3, "住民票コード変更")]
    assert (now.update_seq, now.reason, now.address) == (4, "転居", "三重県津市栄町2丁目")
    with registers.engine("juki").connect() as c:
        why = c.execute(text("SELECT update_seq, superseded_by_seq, superseded_by_reason FROM juki_history "
                             "ORDER BY update_seq")).all()
        counter = c.execute(text("SELECT value FROM counters WHERE name = 'update_seq'")).scalar()
    assert [tuple(r) for r in why] == [(1, 2, "転居"), (2, 3, "住民票コード変更"), (3, 4, "転居")]
    assert counter == 4


def test_u1_application_refuses_an_expired_certificate_itself(installation, registers, tmp_path):
    from fastapi.testclient import TestClient

    from jukinet.web.app import create_app

    cert, _ = _expired_cs_cert(installation, tmp_path)
    app = create_app(installation, registers)
    pem = cert.read_text()

    async def wrapped(scope, receive, send):
        scope.setdefault("extensions", {})["tls"] = {"client_cert_chain": [pem]}
        await app(scope, receive, send)

    with TestClient(wrapped) as c:
        r = c.post("/cs/v1/notifications", json=tennyu(jcode(46)))
    assert r.status_code == 403 and r.json()["error"]["code"] == "CERT_EXPIRED"
    assert comm(registers)[-1].code == "CERT_EXPIRED"
