"""Fixtures of the 事務2/事務4 tests.

One migrated installation per backend and test process (``installation``), wiped between tests by
:func:`reset` (every table but the catalogue, which is put back to the shipped one), so that a test
costs milliseconds rather than a fresh database. ``world`` adds the provision service with a
stand-in national server (:class:`FakeNational`), the shipped catalogue and a few persons.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest
from sqlalchemy import delete

from jukinet.config import ProvisionConfig
from jukinet.provision import catalogue as C
from jukinet.provision.national import NationalUnavailable
from jukinet.provision.service import ProvisionService
from jukinet.security.oplog import Actor
from jukinet.store import migrate
from jukinet.store.registers import Registers
from jukinet.store.schema import METADATA

from jukinet_testing import BACKENDS, make_installation  # tests/jukinet_testing.py

from . import people as P

KEEP = {"provision_requesters", "provision_affairs", "provision_grants"}


class FakeNational:
    """The national servers' query API, answering from a fixed list (no network)."""

    def __init__(self):
        self.persons = {"juki": [], "fuhyo": []}
        self.calls = []
        self.down = False

    def query(self, register, body):
        self.calls.append((register, dict(body)))
        if self.down:
            raise NationalUnavailable()
        out = []
        for p in self.persons[register]:
            if "juminhyo_code" in body and p["juminhyo_code"] == body["juminhyo_code"]:
                out.append(p)
            elif "kojin_bango" in body and p.get("kojin_bango") == body["kojin_bango"]:
                out.append(p)
            elif "name" in body and p["name"].replace("\u3000", "") == body["name"].replace(" ", "").replace("\u3000", "") \
                    and p["birth_date"] == body["birth_date"]:
                out.append(p)
        return [dict(p) for p in out]

    def close(self):
        pass


OUTSIDER = {"juminhyo_code": P.jcode(900), "name": "東京　花子", "name_kana": None, "birth_date": "1990-02-02",
            "sex": "2", "address": "東京都千代田区永田町1丁目7番1号", "municipality_code": "131016",
            "prefecture": "東京都", "status": "現存", "kojin_bango": P.kbango(900)}


def reset(registers, config) -> None:
    """Empty every table except the catalogue (put back to the shipped one); remove the file areas."""
    for store in migrate.STORES:
        tables = [t for t in reversed(METADATA[store].sorted_tables) if t.name not in KEEP]
        engine = registers.engine(store)
        with engine.begin() as conn:   # DELETE: on small tables much faster than TRUNCATE on PostgreSQL
            for t in tables:
                conn.execute(delete(t))
    for d in (config.provision.media_dir, config.provision.kojin_bango_temp_dir, config.provision.kojin_bango_key_dir):
        shutil.rmtree(config.resolve(d), ignore_errors=True)
    config.provision = ProvisionConfig()


@pytest.fixture(scope="session", params=BACKENDS)
def installation(request, tmp_path_factory):
    config = make_installation(tmp_path_factory.mktemp(f"prov-{request.param}") / "data", request.param, request)
    registers = Registers(config)
    svc = ProvisionService(config, registers)
    C.ensure_default(registers, svc.oplog)
    yield request.param, config, registers
    registers.dispose()


@pytest.fixture
def backend_name(installation) -> str:
    return installation[0]


@dataclass
class World:
    backend: str
    config: object
    registers: object
    svc: ProvisionService
    national: FakeNational


@pytest.fixture
def world(installation) -> World:
    backend, config, registers = installation
    reset(registers, config)
    nat = FakeNational()
    nat.persons["juki"].append(dict(OUTSIDER))
    nat.persons["fuhyo"].append({k: v for k, v in OUTSIDER.items() if k != "kojin_bango"})
    svc = ProvisionService(config, registers, national=nat)
    C.apply(registers, svc.oplog, C.load_default(), actor=Actor("test-reset", None), via="init")
    P.seed(registers)
    return World(backend, config, registers, svc, nat)
