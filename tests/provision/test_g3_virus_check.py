"""G3: every file brought in or handed out on media is virus-checked by the real ClamAV (clamscan from
Debian, pointed at a signature file with the EICAR test signature — the public database cannot be
downloaded here); an infected file, a missing or failing scanner are coded refusals that change
nothing and are logged (fail closed). The result medium's handover to the requesting body, its
return and its destruction after the manager's prior approval are recorded (ADR 0040). Both engines."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from jukinet.cli import app as cli_app
from jukinet.errors import JukinetError
from jukinet.media.service import MediaService
from jukinet.provision.batch import BatchCommand, BatchService
from jukinet.security.service import Security
from jukinet.store.tables_media import media_items, media_movements, media_scans
from jukinet.store.tables_provision import provision_media
from jukinet.store.tables_security import OPLOG
from jukinet.viruscheck import EICAR, VirusScanner

from . import people as P
from .test_cli import add_operator

CONDITIONS = f"依頼番号,住民票コード,氏名,生年月日\nX1,{P.TARO},山田太郎,1980-04-01\n"


def _scans(world) -> list:
    with world.registers.admin_tx(write=False) as conn:
        return conn.execute(select(media_scans).order_by(media_scans.c.scan_id)).all()


def _count(world, table) -> int:
    with world.registers.admin_tx(write=False) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _last_admin(world, action: str, chain: str = "admin"):
    log = OPLOG[chain][0]
    with world.registers.engine(chain).connect() as conn:
        return conn.execute(select(log).where(log.c.action == action).order_by(log.c.seq.desc()).limit(1)).first()


def _batch(world, path, **kw):
    return BatchService(world.svc).run(BatchCommand("SOMU", "SOMU-KENZEI", path, **kw), P.OPERATOR, "T0001")


def test_g3_clean_conditions_file_is_scanned_by_clamscan_and_recorded(world, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(CONDITIONS, encoding="utf-8")
    res = _batch(world, src)
    assert res.provided == 1
    s = _scans(world)[-1]
    assert (s.direction, s.purpose, s.engine, s.outcome, s.operator_id) == ("in", "batch_conditions", "clamscan",
                                                                           "clean", P.OPERATOR.operator_id)
    assert s.sha256 and s.size_bytes == len(CONDITIONS.encode())


def test_g3_infected_conditions_file_is_refused_before_any_lookup_and_logged(world, tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(CONDITIONS.encode() + EICAR + b"\n")     # a virus riding in a conditions file
    before = _count(world, provision_media)
    for call in (lambda: BatchService(world.svc).check(BatchCommand("SOMU", "SOMU-KENZEI", src), P.OPERATOR, "T0001"),
                 lambda: _batch(world, src)):
        with pytest.raises(JukinetError) as e:
            call()
        assert e.value.code == "MEDIA_INFECTED" and "ウイルス" in e.value.message
    assert _count(world, provision_media) == before                   # nothing written, nothing provided
    s = _scans(world)[-1]
    assert s.outcome == "infected" and s.signature.startswith("Jukinet.Test.EICAR") and s.code == "MEDIA_INFECTED"
    e = _last_admin(world, "provision_batch", "juki")            # the affair's register log, with the provision record
    assert e.outcome == "refused" and json.loads(e.detail)["code"] == "MEDIA_INFECTED"


@pytest.mark.parametrize("setting,code", [
    ({"clamscan_path": "/nonexistent/clamscan"}, "MEDIA_SCANNER_MISSING"),
    ({"database": "EMPTY"}, "MEDIA_SCAN_FAILED"),                           # no signatures: no verdict
    ({"scanner": "clamd", "clamdscan_path": "/nonexistent/clamdscan"}, "MEDIA_SCANNER_MISSING"),
    ({"scanner": "virustotal"}, "MEDIA_SCANNER_CONFIG"),
])
def test_g3_missing_or_failing_scanner_fails_closed(world, tmp_path, monkeypatch, setting, code):
    src = tmp_path / "in.csv"
    src.write_text(CONDITIONS, encoding="utf-8")
    for k, v in setting.items():
        if v == "EMPTY":
            (tmp_path / "empty-db").mkdir()
            v = str(tmp_path / "empty-db")
        monkeypatch.setattr(world.config.media, k, v)
    before = _count(world, provision_media)
    with pytest.raises(JukinetError) as e:
        _batch(world, src)
    assert e.value.code == code
    assert _count(world, provision_media) == before
    assert _scans(world)[-1].outcome == "failed" and _scans(world)[-1].code == code
    assert json.loads(_last_admin(world, "provision_batch", "juki").detail)["code"] == code


def test_g3_auto_uses_clamd_only_when_its_socket_exists(world, monkeypatch, tmp_path):
    cfg = world.config.media
    monkeypatch.setattr(cfg, "scanner", "auto")
    monkeypatch.setattr(cfg, "clamd_socket", str(tmp_path / "no-clamd.ctl"))
    assert VirusScanner(cfg).engine() == "clamscan"
    if shutil.which(cfg.clamdscan_path):       # clamdscan installed: a socket makes auto choose clamd
        sock = tmp_path / "clamd.ctl"
        sock.touch()
        monkeypatch.setattr(cfg, "clamd_socket", str(sock))
        assert VirusScanner(cfg).engine() == "clamd"


def test_g3_result_medium_handover_return_and_destruction_with_prior_approval(world, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(CONDITIONS, encoding="utf-8")
    res = _batch(world, src)
    media = MediaService(world.config, world.registers, Security(world.config, world.registers))
    on_medium = tmp_path / "usb" / f"{res.media_id}.jkm"
    on_medium.parent.mkdir()
    shutil.copy(res.output_path, on_medium)
    kw = dict(file=on_medium, medium="usb", label=f"USB-{res.media_id}", receiver="総務部 担当者")
    moves_before = _count(world, media_movements)
    # bad input: the wrong body, an unknown medium, a file that is not the one written, an infected one
    for mid, requester, path, code in [
            (res.media_id, "KENKO", on_medium, "MEDIA_WRONG_REQUESTER"),
            ("M20260101-DEADBEEF", "SOMU", on_medium, "MEDIA_UNKNOWN")]:
        with pytest.raises(JukinetError) as e:
            media.handover(P.OPERATOR, "T0001", mid, requester_code=requester, **{**kw, "file": path})
        assert e.value.code == code
    other = tmp_path / "other.jkm"
    other.write_bytes(on_medium.read_bytes()[:-1] + b"\x00")
    with pytest.raises(JukinetError) as e:
        media.handover(P.OPERATOR, "T0001", res.media_id, requester_code="SOMU", **{**kw, "file": other})
    assert e.value.code == "MEDIA_FILE_MISMATCH"
    infected = tmp_path / "eicar.jkm"
    infected.write_bytes(EICAR)
    with pytest.raises(JukinetError) as e:
        media.handover(P.OPERATOR, "T0001", res.media_id, requester_code="SOMU", **{**kw, "file": infected})
    assert e.value.code == "MEDIA_INFECTED"
    assert _count(world, media_movements) == moves_before and media.item(res.media_id) is None   # nothing changed
    assert json.loads(_last_admin(world, "media_handover").detail)["code"] == "MEDIA_INFECTED"
    # the real handover: scanned (out, result), SHA-256 of the written file, entered and handed over
    media.handover(P.OPERATOR, "T0001", res.media_id, requester_code="SOMU", **kw)
    item = media.item(res.media_id)
    assert (item.kind, item.status, item.requester_code, item.sha256) == ("result", "handed_over", "SOMU", res.sha256)
    s = _scans(world)[-1]
    assert (s.direction, s.purpose, s.media_id, s.outcome) == ("out", "result", res.media_id, "clean")
    media.return_(P.OPERATOR, "T0001", res.media_id, location="データ保管庫", counterpart="総務部")
    with pytest.raises(JukinetError) as e:            # destruction only after the manager's prior approval
        media.destroy(P.OPERATOR, "T0001", res.media_id, approval_id="", method="crush")
    assert e.value.code == "MEDIA_APPROVAL_REQUIRED"
    with pytest.raises(JukinetError) as e:            # an approval by someone who is not the 管理責任者
        media.approve(P.OPERATOR, "T0001", res.media_id, "destroy", "返却済のため")
    assert e.value.code == "MEDIA_APPROVER_NOT_MANAGER"
    aid = media.approve(P.MANAGER, None, res.media_id, "destroy", "返却済・利用目的達成のため")
    media.destroy(P.OPERATOR, "T0001", res.media_id, approval_id=aid, method="crush")
    assert media.item(res.media_id).status == "destroyed"
    kinds = [m.kind for m in reversed(media.movements(res.media_id))]
    assert kinds == ["register", "handover", "return", "destroy"]
    d = media.movements(res.media_id)[0]
    assert (d.approval_id, d.method, d.operator_id) == (aid, "crush", P.OPERATOR.operator_id)
    with pytest.raises(JukinetError) as e:            # the approval is used once
        media.destroy(P.OPERATOR, "T0001", res.media_id, approval_id=aid, method="crush")
    assert e.value.code in ("MEDIA_STATE", "MEDIA_APPROVAL_REQUIRED")


def test_g3_cli_scan_and_infected_exit_code(world, tmp_path):
    add_operator(world, "OPS-CLI", ["operations"], regs=(), affairs=())
    d = world.config.data_dir
    clean, bad = tmp_path / "clean.csv", tmp_path / "bad.csv"
    clean.write_text(CONDITIONS, encoding="utf-8")
    bad.write_bytes(EICAR)
    r = CliRunner().invoke(cli_app, ["media", "scan", str(clean), "--by", "OPS-CLI", "--data-dir", str(d)])
    assert r.exit_code == 0 and "検出なし (clamscan)" in r.stdout, r.output
    r = CliRunner().invoke(cli_app, ["media", "scan", str(bad), "--by", "OPS-CLI", "--data-dir", str(d)])
    assert r.exit_code == 3 and "MEDIA_INFECTED" in r.output
    r = CliRunner().invoke(cli_app, ["media", "scans", "--data-dir", str(d)])
    assert "Jukinet.Test.EICAR" in r.stdout and "infected" in r.stdout
