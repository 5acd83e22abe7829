"""一括提供 (P4) with its media register and the managers' approvals (A5), on every backend."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from jukinet.errors import JukinetError
from jukinet.provision import approvals
from jukinet.provision import batch as batch_module
from jukinet.provision.batch import BatchCommand, BatchService
from jukinet.provision.media import decrypt_file, read_chunks
from jukinet.store.tables_provision import PROVISION_RECORDS, provision_media
from jukinet.store.tables_security import OPLOG

from . import people as P
from .conftest import OUTSIDER

HEADER = "依頼番号,住民票コード,個人番号,氏名,生年月日,性別,住所\n"


def write(tmp_path, text: str, encoding="utf-8", name="conditions.csv"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def run(world, path, *, op=P.OPERATOR, requester="SOMU", affair="SOMU-KENZEI", **kw):
    return BatchService(world.svc).run(BatchCommand(requester, affair, path, **kw), op, "T0001")


def result_rows(res) -> list[dict]:
    out = io.BytesIO()
    with open(res.output_path, "rb") as f:
        decrypt_file(f, out, res.password)
    return list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"))))


def media_rows(world):
    with world.registers.admin_tx(write=False) as conn:
        return [dict(r._mapping) for r in conn.execute(select(provision_media).order_by(provision_media.c.created_at))]


def records(world, register="juki"):
    t = PROVISION_RECORDS[register]
    with world.registers.engine(register).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.record_id))]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_p4_batch_file_to_encrypted_result_utf8_and_shift_jis(world, tmp_path, encoding):
    text = (HEADER
            + f"A-1,{P.TARO},,山田太郎,昭和55年4月1日,,\n"
            + f"A-2,,{P.kbango(2)},,,,\n"
            + "A-3,,,サトウ　イチロウ,1970-01-01,男,三重県四日市市諏訪町1番5号\n"
            + "\n"
            + "A-4,,,東京　花子,1990-02-02,女,\n"
            + f"A-5,{P.jcode(777)},,,,,\n"
            + "A-6,,,佐藤　一郎,1970-01-01,,津市広明町13番地\n"
            + "A-7,,,佐藤 一郎,1970-01-01,,\n")
    res = run(world, write(tmp_path, text, encoding), purpose="令和8年度 県税の賦課")
    assert res.encoding == ("cp932" if encoding == "cp932" else "utf-8")
    assert (res.rows, res.provided, res.not_found, res.ambiguous, res.errors, res.national) == (7, 5, 1, 1, 0, 1)
    raw = res.output_path.read_bytes()
    assert raw.startswith(b"JKNMEDIA") and P.TARO.encode() not in raw and "山田".encode() not in raw
    rows = result_rows(res)
    assert [r["依頼番号"] for r in rows] == ["A-1", "A-2", "A-3", "A-4", "A-5", "A-6", "A-7"]
    assert [r["結果"] for r in rows] == ["提供", "提供", "提供", "提供", "該当なし", "提供", "複数該当"]
    assert rows[5]["住民票コード"] == P.ICHIRO_TSU and rows[5]["突合_住所"] == "一致"
    a1 = rows[0]
    assert a1["住民票コード"] == P.TARO and a1["個人番号"] == P.TARO_NO and a1["氏名"] == "山田\u3000太郎"
    assert (a1["突合_氏名"], a1["突合_生年月日"], a1["突合_性別"]) == ("一致", "一致", "")
    assert rows[1]["住民票コード"] == P.HANAKO and rows[2]["住民票コード"] == P.ICHIRO_YOK
    assert rows[3]["照会先"] == "全国サーバ" and rows[3]["住民票コード"] == OUTSIDER["juminhyo_code"]
    assert rows[0]["行番号"] == "2" and rows[3]["行番号"] == "6"        # line numbers of the file
    m = media_rows(world)[-1]
    assert m["media_id"] == res.media_id and m["status"] == "written" and m["operator_id"] == "OP-PROV"
    assert (m["rows_total"], m["rows_provided"], m["rows_not_found"], m["rows_national"]) == (7, 5, 1, 1)
    assert m["sha256"] == res.sha256 and m["size_bytes"] == len(raw) and m["key_id"] == res.key_id
    import hashlib
    assert hashlib.sha256(raw).hexdigest() == res.sha256
    assert m["purpose"] == "令和8年度 県税の賦課" and m["container"] == "jukinet.media/1"
    recs = records(world)
    assert len(recs) == 7 and {r["media_id"] for r in recs} == {res.media_id}
    assert sorted(r["row_no"] for r in recs if r["source"] != "national") == [2, 3, 4, 7, 8, 9]
    assert all(r["oplog_seq"] for r in recs)
    log, _ = OPLOG["juki"]
    with world.registers.engine("juki").connect() as conn:
        entries = conn.execute(select(log).where(log.c.action == "provision_batch")).all()
    assert sum(json.loads(e.detail)["rows"] for e in entries) == 7


def test_p4_row_errors_are_reported_in_the_result_not_a_failed_file(world, tmp_path):
    text = (HEADER
            + f"B-1,{P.TARO[:-1]}0,,,,,\n"                      # check digit
            + "B-2,,,,,,\n"                                     # no key
            + "B-3,,,山田太郎,1980-02-30,,\n"                   # no such date
            + "B-4,,,山田太郎,1980-04-01\n"                     # columns
            + "B 5,,,山田太郎,1980-04-01,,\n"                   # request number
            + f"B-6,,{P.kbango(1)[:-1]}9,,,,\n"                 # 個人番号 check digit
            + f"B-7,{P.TARO},,,,,\n")
    res = run(world, write(tmp_path, text))
    assert (res.rows, res.provided, res.errors) == (7, 1, 6)
    rows = result_rows(res)
    assert [r["結果コード"] for r in rows] == ["JUMINHYO_CODE_CHECKSUM", "KEY_REQUIRED", "DATE_FORMAT", "ROW_COLUMNS",
                                              "REQUEST_NO_FORMAT", "KOJIN_BANGO_CHECKSUM", ""]
    assert all(r["メッセージ"] for r in rows[:6]) and rows[6]["結果"] == "提供"
    assert res.error_codes["KEY_REQUIRED"] == 1
    recs = records(world)
    assert [r["outcome"] for r in recs] == ["refused"] * 6 + ["provided"]
    assert recs[0]["reason_code"] == "JUMINHYO_CODE_CHECKSUM"


@pytest.mark.parametrize("content, encoding, code", [
    ("番号,住民票コード\nA,1\n", "utf-8", "FILE_HEADER"),
    ("依頼番号,氏名\nA,山田\n", "utf-8", "FILE_HEADER"),
    ("依頼番号,住民票コード\n", "utf-8", "FILE_EMPTY"),
    ("", "utf-8", "FILE_EMPTY"),
    ("依頼番号,住民票コード,住民票コード\nA,1,1\n", "utf-8", "FILE_HEADER"),
])
def test_q2_malformed_batch_file_is_refused_and_recorded(world, tmp_path, content, encoding, code):
    with pytest.raises(JukinetError) as e:
        run(world, write(tmp_path, content, encoding))
    assert e.value.code == code
    rec = records(world)[-1]
    assert rec["outcome"] == "refused" and rec["reason_code"] == code and rec["key_kind"] == "file"
    assert media_rows(world) == []


def test_q2_undecodable_file_is_refused(world, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes("依頼番号,氏名,生年月日\n".encode("utf-8") + b"A,\xff\xfe\xfd\x80,1980-04-01\n")
    for declared in ("auto", "utf-8"):   # the header reads as UTF-8: the bad row is an error row
        res = run(world, p, encoding=declared)
        assert res.errors == 1 and result_rows(res)[0]["結果コード"] == "ROW_ENCODING"
    q = tmp_path / "worse.csv"
    q.write_bytes(b"\x81\x7f\xff,\x80\n" + "A,山田".encode("utf-8") + b"\n")
    with pytest.raises(JukinetError) as e:
        run(world, q, encoding="auto")
    assert e.value.code == "FILE_ENCODING"
    with pytest.raises(JukinetError) as e:
        run(world, write(tmp_path, "依頼番号,住民票コード\n".encode("cp932").decode("latin-1") + "A,1\n", "latin-1"),
            encoding="utf-8")
    assert e.value.code == "FILE_ENCODING"
    with pytest.raises(JukinetError) as e:
        run(world, write(tmp_path, "依頼番号,住民票コード\nA,1\n", "utf-8"), encoding="latin-1")
    assert e.value.code == "ENCODING_UNKNOWN"


def test_a5_large_batch_needs_a_managers_prior_approval(world, tmp_path):
    world.config.provision.batch_approval_threshold = 3
    text = HEADER + "".join(f"C-{i},{P.TARO},,,,,\n" for i in range(4))
    path = write(tmp_path, text)
    with pytest.raises(JukinetError) as e:
        run(world, path)
    assert e.value.code == "APPROVAL_REQUIRED" and "管理責任者" in e.value.message
    assert records(world)[-1]["reason_code"] == "APPROVAL_REQUIRED" and media_rows(world) == []
    ap = approvals.request(world.registers, world.svc.oplog, world.config, P.OPERATOR, "T0001", requester_code="SOMU",
                           affair_code="SOMU-KENZEI", max_rows=10, purpose="県税の一斉調査 (令和8年度)")
    with pytest.raises(JukinetError) as e:
        run(world, path, approval_id=ap.approval_id)
    assert e.value.code == "APPROVAL_NOT_GRANTED"
    with pytest.raises(JukinetError) as e:           # an operator cannot approve
        approvals.decide(world.registers, world.svc.oplog, P.OPERATOR, "T0001", ap.approval_id, approve=True)
    assert e.value.code == "FORBIDDEN"
    self_mgr = P.operator("OP-PROV", roles=("operator", "manager"))
    with pytest.raises(JukinetError) as e:           # never one's own request
        approvals.decide(world.registers, world.svc.oplog, self_mgr, "T0001", ap.approval_id, approve=True)
    assert e.value.code == "APPROVAL_SELF"
    ok = approvals.decide(world.registers, world.svc.oplog, P.MANAGER, "T0002", ap.approval_id, approve=True)
    assert ok.status == "approved" and ok.decided_by == "MGR-1"
    with pytest.raises(JukinetError) as e:           # bound to requester and affair
        run(world, path, requester="SOMU", affair="SOMU-KENZEI-F", approval_id=ap.approval_id)
    assert e.value.code in ("APPROVAL_MISMATCH", "FORBIDDEN")
    res = run(world, path, approval_id=ap.approval_id)
    assert res.provided == 4 and res.approval_id == ap.approval_id
    assert media_rows(world)[-1]["approval_id"] == ap.approval_id
    assert media_rows(world)[-1]["purpose"] == "県税の一斉調査 (令和8年度)"
    used = approvals.get(world.registers, ap.approval_id)
    assert used.status == "used" and used.media_id == res.media_id
    with pytest.raises(JukinetError) as e:           # once
        run(world, path, approval_id=ap.approval_id)
    assert e.value.code == "APPROVAL_USED"


def test_a5_approval_is_bound_to_rows_and_expiry(world, tmp_path):
    world.config.provision.batch_approval_threshold = 1
    path = write(tmp_path, HEADER + "".join(f"D-{i},{P.TARO},,,,,\n" for i in range(3)))
    ap = approvals.request(world.registers, world.svc.oplog, world.config, P.OPERATOR, "T0001", requester_code="SOMU",
                           affair_code="SOMU-KENZEI", max_rows=2, purpose="照合", days=1)
    approvals.decide(world.registers, world.svc.oplog, P.MANAGER, "T0002", ap.approval_id, approve=True)
    with pytest.raises(JukinetError) as e:
        run(world, path, approval_id=ap.approval_id)
    assert e.value.code == "APPROVAL_ROWS_EXCEEDED"
    a = approvals.get(world.registers, ap.approval_id)
    later = datetime.now(timezone.utc) + timedelta(days=2)
    with pytest.raises(JukinetError) as e:
        approvals.check(a, requester_code="SOMU", affair_code="SOMU-KENZEI", rows=1, now=later)
    assert e.value.code == "APPROVAL_EXPIRED"
    with pytest.raises(JukinetError) as e:
        approvals.request(world.registers, world.svc.oplog, world.config, P.OPERATOR, "T0001", requester_code="SOMU",
                          affair_code="SOMU-KENZEI", max_rows=2, purpose="", days=1)
    assert e.value.code == "PURPOSE_REQUIRED"


def test_p4_batch_is_streamed_in_chunks(world, tmp_path):
    world.config.provision.batch_chunk_rows = 100
    world.config.provision.national_fallback = False
    world.config.provision.batch_approval_threshold = 10_000
    n = 2000
    text = HEADER + "".join(f"E-{i},{P.TARO if i % 2 else P.jcode(1000 + i)},,,,,\n" for i in range(n))
    path = write(tmp_path, text)
    tracemalloc.start()
    res = run(world, path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (res.rows, res.provided, res.not_found) == (n, n // 2, n // 2)
    assert peak < 8 * 1024 * 1024, peak           # one chunk at a time, not the file
    log, _ = OPLOG["juki"]
    with world.registers.engine("juki").connect() as conn:
        assert len(conn.execute(select(log).where(log.c.action == "provision_batch")).all()) == n // 100


def test_p4_result_file_is_authenticated_and_password_protected(world, tmp_path):
    res = run(world, write(tmp_path, HEADER + f"F-1,{P.TARO},,,,,\n"))
    raw = bytearray(res.output_path.read_bytes())
    with open(res.output_path, "rb") as f:
        with pytest.raises(JukinetError) as e:
            list(read_chunks(f, "WRONG-PASSW-ORD00-00000-00000"))
    assert e.value.code == "MEDIA_PASSWORD"
    raw[-5] ^= 1
    with pytest.raises(JukinetError) as e:
        list(read_chunks(io.BytesIO(bytes(raw)), res.password))
    assert e.value.code == "MEDIA_CORRUPT"
    assert res.password not in json.dumps(media_rows(world), default=str)


def test_p4_batch_refused_for_an_operator_out_of_scope(world, tmp_path):
    with pytest.raises(JukinetError) as e:
        run(world, write(tmp_path, HEADER + f"G-1,{P.TARO},,,,,\n"), op=P.SEARCHER)
    assert e.value.code == "FORBIDDEN"
    assert records(world)[-1]["reason_code"] == "FORBIDDEN" and media_rows(world) == []


def test_d3_a5_media_id_and_approval_id_carry_the_date_in_japan(world, tmp_path, monkeypatch):
    """23:30 UTC on 26 November is 08:30 on 27 November in Japan: the IDs say 20261127 (ADR 0042)."""
    late = datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc)
    monkeypatch.setattr(batch_module, "utcnow", lambda: late)   # the clock of the batch run
    res = run(world, write(tmp_path, HEADER + f"A-1,{P.TARO},,,,,\n"), purpose="令和8年度 県税の賦課")
    assert res.media_id.startswith("M20261127-"), res.media_id
    assert res.output_path.name.startswith("M20261127-")
    ap = approvals.request(world.registers, world.svc.oplog, world.config, P.OPERATOR, "T0001", requester_code="SOMU",
                           affair_code="SOMU-KENZEI", max_rows=2000, purpose="県税の賦課", now=late)
    assert ap.approval_id.startswith("AP20261127-"), ap.approval_id
