"""O5 — an investigation (訂正等の申出 or 利用停止請求) finds the record wrong: the 通報 to the municipality
is printed as a document (通報書) and handed to that municipality's CS over the mutually authenticated CS
channel (real HTTPS, the CS's client certificate); the CS simulator keeps and acknowledges it; both ways
are in the communication log; an unacknowledged 通報 is handed over again until acknowledged (never
lost), and no other municipality sees it. Both engines."""

from __future__ import annotations

import io
import json
import socket
import ssl

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from jukinet import pki
from jukinet.disclosure import reports as R
from jukinet.errors import JukinetError
from jukinet.server import PrefectureServer
from jukinet.sim.cs import CsClient, ReportInbox, receive_reports
from jukinet.store.tables_disclosure import MUNICIPAL_REPORTS, form_register
from jukinet.store.tables_intake import INTAKE_TABLES
from jukinet.store.tables_security import OPLOG

from .conftest import KATSURAGI, KATSURAGI_NAME, OP
from .test_disclosure import intake, log_actions

NABARI, TSU = "242080", "242012"


def text_of(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(installation):
    _backend, config, registers = installation
    config.server.port = _free_port()
    config.save()
    pki.ensure_dev_pki(config.tls, config.data_dir, config.prefecture_code, municipalities=[NABARI, TSU])
    srv = PrefectureServer(config, registers, outbox=False).start()
    yield srv
    srv.stop()


@pytest.fixture
def cs(world, server, tmp_path):
    clients = {code: CsClient(world.config, code) for code in (NABARI, TSU)}
    for code in clients:       # a fresh inbox per test
        p = ReportInbox(world.config, code).path
        if p.exists():
            p.unlink()
    yield clients
    for c in clients.values():
        c.close()


def report_row(w, register, rid):
    t = MUNICIPAL_REPORTS[register]
    with w.registers.engine(register).connect() as conn:
        return conn.execute(select(t).where(t.c.report_id == rid)).one()


def comm_of(w, register, rid):
    return [(c.direction, c.result, c.peer) for c in R.comm_entries(w.registers, register, rid)]


def suspension_under_investigation(w, no="T-0001", register="juki"):
    intake(w, no, register=register)
    w.svc.disclosure_form(register, no, OP, "T0001")
    sid = w.svc.open_suspension(register, no, "stop_use", "outside_purpose", "住所が違うまま利用されている", OP, "T0001")
    w.svc.step_suspension(register, sid, "investigating", OP, "T0001")
    return sid


def test_o5_correction_finding_is_a_document_and_reaches_the_cs_which_acknowledges(world, cs):
    intake(world, "T-0010")
    cid = world.svc.open_correction("juki", "T-0010", "correct", ["address"], "番地が違う", OP, "T0001")
    world.svc.step("juki", cid, "investigating", OP, "T0001")
    rid = world.svc.step("juki", cid, "reported", OP, "T0001", municipality_code=NABARI)
    assert rid == f"juki-{cid}-{NABARI}"
    row = report_row(world, "juki", rid)
    assert (row.state, row.attempts, row.source, row.municipality_code) == ("pending", 0, "correction", NABARI)
    assert row.form_serial and row.form_serial.startswith("T")

    # the document: in the form register, addressed to the mayor, with the item and what the prefecture holds
    with world.registers.admin_tx(write=False) as conn:
        fr = conn.execute(select(form_register).where(form_register.c.serial == row.form_serial)).one()
    assert fr.form_type == "municipal_report" and fr.status == "issued" and fr.sha256
    again = world.svc.report_document("juki", rid, OP, "T0001")
    text = text_of(again.pdf)
    assert "名張市長" in text and "第12条の5" in text and "第30条の35" in text and rid in text
    assert KATSURAGI in text and KATSURAGI_NAME in text and "三重県名張市丸之内79番地" in text and "番地が違う" in text

    # delivered over the CS channel: Nabari's CS takes it, keeps it, acknowledges it
    lines = receive_reports(cs[NABARI], ReportInbox(world.config, NABARI))
    assert lines == [{"report_id": rid, "received": "new", "ack": "acknowledged"}]
    [kept] = ReportInbox(world.config, NABARI).reports()
    assert kept["schema"] == "jukinet.municipal-report/1" and kept["juminhyo_code"] == KATSURAGI
    assert kept["items"] == ["address"] and kept["kind"] == "correct" and kept["municipality_code"] == NABARI
    assert kept["document"]["serial"] == row.form_serial and kept["document"]["sha256"] == fr.sha256
    row = report_row(world, "juki", rid)
    assert row.state == "acknowledged" and row.attempts == 1 and row.acknowledged_at is not None
    assert comm_of(world, "juki", rid) == [("out", "sent", f"lg:{NABARI}"), ("in", "acknowledged", f"lg:{NABARI}")]
    assert receive_reports(cs[NABARI], ReportInbox(world.config, NABARI)) == []     # nothing more
    # the comm log keeps digests, never the content
    comm = INTAKE_TABLES["juki"][2]
    with world.registers.engine("juki").connect() as conn:
        assert KATSURAGI not in str([r._mapping.values() for r in conn.execute(select(comm))])


def test_o5_unacknowledged_report_is_handed_over_again_never_lost(world, cs):
    sid = suspension_under_investigation(world, "T-0020")
    rid = world.svc.report_suspension_finding("juki", sid, NABARI, "correct", ["name"], OP, "T0001")
    inbox = ReportInbox(world.config, NABARI)
    # the CS takes it but "crashes" before acknowledging
    assert receive_reports(cs[NABARI], inbox, ack=False) == [{"report_id": rid, "received": "new", "ack": None}]
    assert (report_row(world, "juki", rid).state, report_row(world, "juki", rid).attempts) == ("sent", 1)
    # the CS cannot reach the server at all: nothing changes on the prefecture's side
    dead = CsClient(world.config, NABARI, base_url=f"https://127.0.0.1:{_free_port()}")
    with pytest.raises(httpx.TransportError):
        dead.fetch_reports()
    dead.close()
    assert report_row(world, "juki", rid).state == "sent"
    # next poll: the same 通報 again (same id, deduplicated by the CS), acknowledged this time
    assert receive_reports(cs[NABARI], inbox) == [{"report_id": rid, "received": "again", "ack": "acknowledged"}]
    assert len(inbox.reports()) == 1
    row = report_row(world, "juki", rid)
    assert (row.state, row.attempts) == ("acknowledged", 2)
    assert comm_of(world, "juki", rid) == [("out", "sent", f"lg:{NABARI}"), ("out", "sent", f"lg:{NABARI}"),
                                           ("in", "acknowledged", f"lg:{NABARI}")]
    # an acknowledgement repeated is a duplicate, logged
    assert cs[NABARI].ack_reports([rid]) == [{"report_id": rid, "status": "duplicate"}]
    # the letter to the resident names the 通報
    world.svc.decide_suspension("juki", sid, "not_suspend", "no_violation", OP, "T0001")
    letter = text_of(world.svc.suspension_letter("juki", sid, OP, "T0001").pdf).replace("\n", "")
    assert "名張市長に通報しました" in letter
    assert ("municipal_report", "granted") in log_actions(world, "juki")
    assert ("municipal_report_document", "granted") in log_actions(world, "juki")


def test_o5_another_municipality_neither_receives_nor_acknowledges_it(world, cs):
    sid = suspension_under_investigation(world, "T-0030", register="fuhyo")
    rid = world.svc.report_suspension_finding("fuhyo", sid, NABARI, "delete", ["last_address"], OP, "T0001")
    assert receive_reports(cs[TSU], ReportInbox(world.config, TSU)) == []
    [ans] = cs[TSU].ack_reports([rid])
    assert ans["status"] == "rejected" and ans["error"]["code"] == "REPORT_UNKNOWN"
    assert report_row(world, "fuhyo", rid).state == "pending"
    assert ("in", "rejected", f"lg:{TSU}") in comm_of(world, "fuhyo", rid)
    # an acknowledgement before it was ever handed over is refused too
    [ans] = cs[NABARI].ack_reports([rid])
    assert ans["status"] == "rejected" and ans["error"]["code"] == "REPORT_NOT_SENT"
    lines = receive_reports(cs[NABARI], ReportInbox(world.config, NABARI))
    assert lines == [{"report_id": rid, "received": "new", "ack": "acknowledged"}]
    assert ReportInbox(world.config, NABARI).reports()[0]["register"] == "fuhyo"


def test_o5_channel_refuses_without_certificate_and_bad_acknowledgements(world, server, cs):
    port = world.config.server.port
    ca = ssl.create_default_context(cafile=str(world.config.resolve(world.config.tls.ca_cert)))
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ca) as anon:
        r = anon.get("/cs/v1/reports")
    assert r.status_code == 401 and r.json()["error"]["code"] == "CLIENT_CERT_REQUIRED"
    for body in (b"{", b'{"report_ids": []}', b'{"report_ids": [1]}', b"[]"):
        r = cs[NABARI].http.post("/cs/v1/reports/ack", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "ACK_FORMAT"
    r = cs[NABARI].http.post("/cs/v1/reports/ack", content=b"x" * (R.MAX_ACK_BYTES + 1))
    assert r.status_code == 413
    [ans] = cs[NABARI].ack_reports(["juki-nonexistent-242080"])
    assert ans["error"]["code"] == "REPORT_UNKNOWN"


@pytest.mark.parametrize("args, code", [
    (dict(municipality_code="999999"), "MUNICIPALITY_REQUIRED"),
    (dict(municipality_code="24208"), "MUNICIPALITY_REQUIRED"),
    (dict(kind="replace"), "KIND_UNKNOWN"),
    (dict(items=[]), "ITEMS_REQUIRED"),
    (dict(items=["address", "favourite_colour"]), "ITEMS_REQUIRED"),
    (dict(suspension_id="JS-NOPE"), "SUSPENSION_NOT_FOUND"),
])
def test_o5_bad_report_input_is_refused_nothing_queued_and_logged(world, args, code):
    sid = suspension_under_investigation(world, "T-0040")
    a = dict(suspension_id=sid, municipality_code=NABARI, kind="correct", items=["address"])
    a.update(args)
    with pytest.raises(JukinetError) as e:
        world.svc.report_suspension_finding("juki", a["suspension_id"], a["municipality_code"], a["kind"], a["items"],
                                            OP, "T0001")
    assert e.value.code == code
    with world.registers.engine("juki").connect() as conn:
        assert conn.execute(select(func.count()).select_from(MUNICIPAL_REPORTS["juki"])).scalar() == 0
        log = OPLOG["juki"][0]
        last = conn.execute(select(log).order_by(log.c.seq.desc()).limit(1)).one()
    assert last.action == "municipal_report" and last.outcome != "granted" and code in last.detail


def test_o5_a_report_is_made_once_per_case_and_municipality(world):
    sid = suspension_under_investigation(world, "T-0050")
    world.svc.report_suspension_finding("juki", sid, NABARI, "correct", ["address"], OP, "T0001")
    with pytest.raises(JukinetError) as e:
        world.svc.report_suspension_finding("juki", sid, NABARI, "correct", ["address"], OP, "T0001")
    assert e.value.code == "REPORT_ALREADY_MADE"
    world.svc.decide_suspension("juki", sid, "suspend", "violation_found", OP, "T0001")
    with pytest.raises(JukinetError) as e:          # only while investigating
        world.svc.report_suspension_finding("juki", sid, TSU, "correct", ["address"], OP, "T0001")
    assert e.value.code == "STEP_NOT_ALLOWED"
    assert [r.report_id for r in world.svc.municipal_reports("juki", OP, "T0001")] == [f"juki-{sid}-{NABARI}"]
