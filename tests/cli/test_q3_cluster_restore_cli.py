"""Q3 / Q2 (ADR 0044): ``jukinet cluster restore`` refuses what it cannot do with a code, before it
creates anything (the restore itself runs on a real cluster in tests/ha)."""

from typer.testing import CliRunner

from jukinet.cli import app

runner = CliRunner()


def test_q3_q2_cluster_restore_refuses_a_bad_time_and_a_missing_source(tmp_path):
    r = runner.invoke(app, ["cluster", "restore", "--from", str(tmp_path / "src"), "--dir", str(tmp_path / "new"),
                            "--to-time", "昨日の夜"])
    assert r.exit_code == 2 and "PITR_TIME_FORMAT" in r.output
    r = runner.invoke(app, ["cluster", "restore", "--from", str(tmp_path / "src"), "--dir", str(tmp_path / "new"),
                            "--to-time", "2026-12-07T21:30:00+09:00"])
    assert r.exit_code == 2 and "CLUSTER_NOT_FOUND" in r.output
    assert not (tmp_path / "new").exists()
