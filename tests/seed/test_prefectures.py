"""Any prefecture, Mie the default (issue 14, ADR 0035): ``init``/``seed --prefecture``, the synthetic
population, the CS and national simulators and the dev PKI of another prefecture (愛知県)."""

from __future__ import annotations

import inspect
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from intake.helpers import use_free_ports
from sqlalchemy import func, select
from typer.testing import CliRunner

from jukinet import geo, pki
from jukinet.cli import app
from jukinet.cli.serve import demo
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.outbox.worker import OutboxWorker
from jukinet.seed import populate
from jukinet.seed.generator import Generator
from jukinet.server import PrefectureServer
from jukinet.sim.demo import DemoPeers
from jukinet.sim.national import start_national
from jukinet.sim.synthetic import other_prefecture_people
from jukinet.store.tables import fuhyo_current, juki_current, juki_history

ROOT = Path(__file__).resolve().parents[2]
AICHI = geo.prefecture(23)
runner = CliRunner()


def _aichi(config: Config, municipalities=("231061", "232114")) -> Config:
    config.prefecture_code, config.prefecture_name = AICHI.code, AICHI.name
    use_free_ports(config)   # saves the config
    pki.ensure_dev_pki(config.tls, config.data_dir, config.prefecture_code, municipalities=list(municipalities))
    return config


def _rows(engine, table):
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(select(table))]


def test_q1_seed_aichi_has_only_aichi_codes_and_real_town_names(config, registers):
    _aichi(config)
    report = populate(registers, 600, seed=11, prefecture=23)
    assert report.prefecture_code == "230006" and report.residents == 600
    juki = _rows(registers.juki_engine, juki_current) + _rows(registers.juki_engine, juki_history)
    for r in juki:
        m = AICHI.by_code[r["municipality_code"]]              # KeyError: not an Aichi municipality
        town = {t.oaza_code: t for t in geo.towns(m.code)}[r["oaza_code"]]
        assert r["address"].startswith("愛知県" + m.county + m.name + town.name), r["address"]
    residents = [r for r in juki if not r["deleted"]]
    used = Counter(r["municipality_code"] for r in residents)
    assert len(used) >= 25
    # drawn by weight: 名古屋市's 16 wards (the proxy gives them ~30% of Aichi) far more than the 村
    nagoya = sum(n for c, n in used.items() if AICHI.by_code[c].designated_city == "名古屋市")
    villages = sum(n for c, n in used.items() if AICHI.by_code[c].kind == "村")
    assert nagoya > 100 and villages < 20
    fuhyo = _rows(registers.fuhyo_engine, fuhyo_current)
    assert fuhyo and all(r["fuhyo_municipality_code"] in AICHI for r in fuhyo)
    outside = [r for r in fuhyo if r["status"] == "現存" and r["address_municipality_code"]
               and r["address_municipality_code"] not in AICHI]
    assert len(outside) == report.fuhyo_other_prefecture > 0
    assert all(geo.by_code(r["address_municipality_code"]).prefecture != "愛知県" for r in outside)


def test_q1_seed_refuses_another_prefecture_than_the_installations(config, registers):
    with pytest.raises(JukinetError) as e:
        populate(registers, 10, prefecture=23)                 # the installation is Mie's
    assert e.value.code == "PREFECTURE_MISMATCH"
    with pytest.raises(JukinetError) as e:
        populate(registers, 10, prefecture=48)
    assert e.value.code == "PREFECTURE_UNKNOWN"
    with registers.juki_engine.connect() as c:
        assert c.execute(select(func.count()).select_from(juki_current)).scalar_one() == 0


def test_d1_seed_default_is_mie():
    assert Generator(10).prefecture.code == "240001"
    assert Config(data_dir=Path("x"), database=None).prefecture_code == "240001"
    batch = next(Generator(50, seed=1).batches(50))
    assert {r["municipality_code"][:2] for r in batch.juki} == {"24"}


def test_q1_cli_init_and_seed_another_prefecture(tmp_path):
    r = runner.invoke(app, ["init", "--data-dir", str(tmp_path), "--prefecture", "23"])
    assert r.exit_code == 0, r.output
    cfg = Config.load(tmp_path)
    assert (cfg.prefecture_code, cfg.prefecture_name) == ("230006", "愛知県")
    certs = {p.stem for p in cfg.resolve(cfg.tls.cs_dir).glob("*.pem")}
    assert certs == {m.code for m in AICHI.municipalities}      # the dev PKI: a CS per Aichi municipality
    r = runner.invoke(app, ["seed", "--data-dir", str(tmp_path), "--residents", "200", "--prefecture", "24"])
    assert r.exit_code == 2 and "PREFECTURE_MISMATCH" in r.output
    r = runner.invoke(app, ["seed", "--data-dir", str(tmp_path), "--residents", "200"])
    assert r.exit_code == 0 and "愛知県" in r.output, r.output


def test_q1_cli_init_refuses_an_unknown_prefecture(tmp_path):
    r = runner.invoke(app, ["init", "--data-dir", str(tmp_path), "--prefecture", "48"])
    assert r.exit_code == 2 and "PREFECTURE_UNKNOWN" in r.output
    assert not (tmp_path / "jukinet.toml").exists()


def test_q1_make_demo_still_seeds_mie():
    make_demo = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "jukinet demo" in line)
    assert "--prefecture" not in make_demo
    assert inspect.signature(demo).parameters["prefecture"].default.default == "24"
    assert pki.municipality_codes() == [m.code for m in geo.municipalities(24)]
    peers = DemoPeers.__new__(DemoPeers)
    DemoPeers.__init__(peers, type("I", (), {"config": Config(data_dir=Path("x"), database=None)})())
    assert peers.municipalities == ("242012", "242021", "242047", "243418")


def test_q1_sims_of_another_prefecture(config, registers):
    """A CS of 名古屋市中区 sends through the real channel to an Aichi installation; the national sim
    receives with the prefecture's code and its synthetic people live outside Aichi."""
    _aichi(config)
    populate(registers, 300, seed=3)
    srv = PrefectureServer(config, registers, outbox=False).start()
    running = start_national(config, synthetic=40)
    try:
        r = runner.invoke(app, ["sim", "cs", "--data-dir", str(config.data_dir), "--municipality", "231061",
                                "--events", "60", "--batch", "30", "--seed", "5"])
        assert r.exit_code == 0, r.output
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        assert Counter(x["status"] for x in lines) == {"accepted": 60}, [x for x in lines if x.get("error")][:3]
        r = runner.invoke(app, ["sim", "cs", "--data-dir", str(config.data_dir), "--municipality", "242012",
                                "--events", "1"])
        assert r.exit_code == 2 and "愛知県" in r.output          # a Mie CS is not one of ours
        worker = OutboxWorker(registers, config)
        worker.drain()
        worker.stop()
        got = running[0][1].dump() + running[1][1].dump()
        assert len(got) == 60 and {m["prefecture_code"] for m in got} == {"230006"}
    finally:
        srv.stop()
        for t, store in running:
            t.stop()
            store.close()
    people = other_prefecture_people(200, 7, date(2026, 1, 1), AICHI.code)
    assert people and not any(p.municipality_code in AICHI for p in people)
