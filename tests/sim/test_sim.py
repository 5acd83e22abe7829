"""The simulators: ``jukinet sim cs`` (send / events), ``jukinet sim national`` (store, dump, query)."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from typer.testing import CliRunner

from jukinet import pki
from jukinet.cli import app
from jukinet.outbox.worker import OutboxWorker

from intake.helpers import TSU, change, fuhyo_kisai, jcode, tennyu

runner = CliRunner()


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_u1_sim_cs_send_file_answers_every_line(installation, server, tmp_path):
    base = tennyu(jcode(1))
    notes = [base, base, change(base, "転居", name="別\u3000人", address="三重県津市栄町1丁目"),
             change(base, "転居", address="三重県津市栄町1丁目")]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(json.dumps(n, ensure_ascii=False) for n in notes) + "\nnot json\n", encoding="utf-8")
    r = runner.invoke(app, ["sim", "cs", "--data-dir", str(installation.data_dir), "--municipality", TSU,
                            "--send", str(f)])
    assert r.exit_code == 0, r.output
    lines = _lines(r.stdout)
    assert [x["status"] for x in lines] == ["accepted", "duplicate", "rejected", "accepted", "rejected"]
    assert lines[2]["error"]["code"] == "FORBIDDEN_CHANGE" and lines[4]["error"]["code"] == "BODY_NOT_JSON"
    assert [x["notification_id"] for x in lines[:4]] == [n["notification_id"] for n in notes]
    assert all(set(x) == {"notification_id", "status", "error"} for x in lines)


def test_u1_sim_cs_refuses_unknown_municipality(installation):
    r = runner.invoke(app, ["sim", "cs", "--data-dir", str(installation.data_dir), "--municipality", "131016",
                            "--events", "1"])
    assert r.exit_code == 2


def test_u5_sim_cs_events_are_realistic_and_accepted(installation, server, registers, national):
    from jukinet.seed import populate

    populate(registers, 400, seed=3)
    r = runner.invoke(app, ["sim", "cs", "--data-dir", str(installation.data_dir), "--municipality", TSU,
                            "--events", "300", "--batch", "50", "--seed", "5"])
    assert r.exit_code == 0, r.output
    lines = _lines(r.stdout)
    assert len(lines) == 300
    assert Counter(x["status"] for x in lines) == {"accepted": 300}, [x for x in lines if x["error"]][:3]
    worker = OutboxWorker(registers, installation)
    worker.drain()
    worker.stop()
    got = national["juki"].dump() + national["fuhyo"].dump()
    assert len(got) == 300
    reasons = Counter(m["reason"] for m in got)
    for reason in ("転居", "国内転入", "国内転出", "死亡", "住所変更"):
        assert reasons[reason] > 0, reasons
    assert all(not m["out_of_order"] for m in got)


def test_u5_national_dump_lists_in_order_of_receipt(installation, server, cs, registers, national):
    for i in range(3):
        assert cs[TSU].send(tennyu(jcode(10 + i)))["status"] == "accepted"
    assert cs[TSU].send(fuhyo_kisai(jcode(20)))["status"] == "accepted"
    worker = OutboxWorker(registers, installation)
    worker.drain()
    worker.stop()
    r = runner.invoke(app, ["sim", "national-dump", "--data-dir", str(installation.data_dir), "--register", "juki"])
    assert r.exit_code == 0
    lines = _lines(r.stdout)
    assert [x["juminhyo_code"] for x in lines] == [jcode(10), jcode(11), jcode(12)]
    assert [x["receipt_seq"] for x in lines] == [1, 2, 3]
    both = _lines(runner.invoke(app, ["sim", "national-dump", "--data-dir", str(installation.data_dir)]).stdout)
    assert len(both) == 4 and {x["register"] for x in both} == {"juki", "fuhyo"}


def _national_client(installation, cert=None):
    tls = installation.tls
    cert = cert or (installation.resolve(tls.server_cert), installation.resolve(tls.server_key))
    ctx = pki.client_context(cert[0], cert[1], installation.resolve(tls.ca_cert))
    return httpx.Client(verify=ctx, timeout=10)


def test_n1_national_sim_query_api(installation, national):
    store = national["juki"]
    p = store.db.execute("SELECT juminhyo_code, kojin_bango, name, name_kana, birth_date, sex, address "
                         "FROM persons LIMIT 1").fetchone()
    url = f"https://127.0.0.1:{installation.national.port}/national/v1/query"
    furl = f"https://127.0.0.1:{installation.national.fuhyo_port}/national/v1/query"
    with _national_client(installation) as c:
        by_code = c.post(url, json={"juminhyo_code": p[0]}).json()
        assert by_code["count"] == 1 and by_code["results"][0]["kojin_bango"] == p[1]
        assert c.post(url, json={"kojin_bango": p[1]}).json()["results"][0]["juminhyo_code"] == p[0]
        four = c.post(url, json={"name": p[2], "birth_date": p[4], "sex": p[5], "address": p[6][:5]}).json()
        assert p[0] in [x["juminhyo_code"] for x in four["results"]]
        kana = c.post(url, json={"name": p[3], "birth_date": p[4]}).json()
        assert p[0] in [x["juminhyo_code"] for x in kana["results"]]
        bad = c.post(url, json={"juminhyo_code": "12345678901"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "JUMINHYO_CODE_CHECKSUM"
        refused = c.post(furl, json={"kojin_bango": p[1]})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "KOJIN_BANGO_NOT_ALLOWED"
        fuhyo = c.post(furl, json={"name": "x", "birth_date": "2000-01-01"}).json()
        assert fuhyo["count"] == 0
    # only a prefectural server may use it: a CS certificate is refused
    cs_cert = pki.cs_paths(installation.resolve(installation.tls.cs_dir), TSU)
    with _national_client(installation, cs_cert) as c:
        assert c.post(url, json={"juminhyo_code": p[0]}).status_code == 403


def test_u1_national_sim_requires_a_client_certificate(installation, national):
    import ssl

    ctx = ssl.create_default_context(cafile=str(installation.resolve(installation.tls.ca_cert)))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"https://127.0.0.1:{installation.national.port}/national/v1/health", verify=ctx)


def test_u5_outbox_command_delivers_standalone(installation, server, cs, registers, national):
    assert cs[TSU].send(tennyu(jcode(30)))["status"] == "accepted"
    r = runner.invoke(app, ["outbox", "--data-dir", str(installation.data_dir), "--once"])
    assert r.exit_code == 0, r.output
    assert [m["juminhyo_code"] for m in national["juki"].dump()] == [jcode(30)]
