"""Q1 (issue 16): a register whose seed is running or was interrupted is not served. ``jukinet serve``,
``jukinet demo`` (and ``jukinet center serve``: tests/center) refuse to start with ``SEED_IN_PROGRESS`` and a Japanese
message naming the command that resumes the seed; ``/health`` reports it (503). A completed seed
serves. On every configured engine."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from jukinet.bootstrap import bootstrap
from jukinet.cli import app as cli
from jukinet.errors import JukinetError
from jukinet.seed import populate
from jukinet.server import PrefectureServer
from jukinet.store.registers import Registers
from jukinet.store.tables import fuhyo_seed_progress, juki_seed_progress
from jukinet.web.app import create_app

N, SEED = 60, 3


def _interrupt(regs: Registers, table=juki_seed_progress, engine_name: str = "juki") -> None:
    """What a seed killed after its batches (before its last step) leaves: ``complete`` not set."""
    with regs.engine(engine_name).begin() as c:
        c.execute(update(table).values(complete=False))


@pytest.fixture
def seeded(config):
    regs = Registers(config)
    populate(regs, N, seed=SEED)
    yield config, regs
    regs.dispose()


def test_q1_serve_refuses_a_seed_in_progress_and_names_the_resume_command(seeded):
    config, regs = seeded
    _interrupt(regs)
    d = str(config.data_dir)
    r = CliRunner().invoke(cli, ["serve", "--data-dir", d])
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert "SEED_IN_PROGRESS" in out and "投入が完了していません" in out
    assert f"jukinet seed --data-dir {d} --residents {N} --seed {SEED}" in out.replace("\n", "")
    with pytest.raises(JukinetError) as e:          # the server object itself refuses (serve, demo)
        PrefectureServer(config)
    assert e.value.code == "SEED_IN_PROGRESS"


def test_q1_health_reports_a_seed_in_progress(seeded):
    config, regs = seeded
    with bootstrap(config, registers=regs) as inst:
        client = TestClient(create_app(inst))
        ok = client.get("/health")
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
        assert "seed" not in ok.json()["registers"]["juki"]
        _interrupt(regs, fuhyo_seed_progress, "fuhyo")
        r = client.get("/health")
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    seed = r.json()["registers"]["fuhyo"]["seed"]
    assert seed["code"] == "SEED_IN_PROGRESS" and seed["complete"] is False and seed["residents"] == N
    assert "seed" not in r.json()["registers"]["juki"]


def test_q1_demo_refuses_a_seed_in_progress(seeded):
    config, regs = seeded
    _interrupt(regs)
    r = CliRunner().invoke(cli, ["demo", "--data-dir", str(config.data_dir)])
    assert r.exit_code == 2, r.output
    assert "SEED_IN_PROGRESS" in r.output and "jukinet seed" in r.output


def test_q1_resumed_seed_is_served(seeded):
    """After ``jukinet seed`` finished the seed (``complete``), the same installation starts."""
    config, regs = seeded
    with regs.engine("juki").begin() as c:
        c.execute(update(juki_seed_progress).values(complete=True))
    server = PrefectureServer(config, outbox=False)
    server.installation.close()
