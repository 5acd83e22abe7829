"""Fixtures of the 事務3 tests: one migrated installation per backend and test process, wiped between
tests; a few synthetic persons (incl. 外字 with an IVS) and provisions of their data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import delete

from jukinet.config import ProvisionConfig
from jukinet.disclosure.service import DisclosureService
from jukinet.domain.records import FuhyoRecord, derive_fuhyo
from jukinet.provision import catalogue as C
from jukinet.provision.service import ProvideCommand, ProvisionService
from jukinet.security.model import Operator
from jukinet.security.oplog import Actor
from jukinet.store import migrate
from jukinet.store.registers import Registers
from jukinet.store.schema import METADATA


from jukinet_testing import BACKENDS, make_installation  # noqa: E402

from provision import people as P  # noqa: E402  tests/provision/people.py

KEEP = {"provision_requesters", "provision_affairs", "provision_grants"}
KATSURAGI = P.jcode(20)
#: 葛 + U+E0102 (Moji_Joho IVS, IPAmj glyph MJ022335 — not the default MJ022336): the 外字 form of 葛
#: that must survive onto the form. (葛 U+E0100 is an Adobe-Japan1 sequence IPAmj does not register: it
#: falls back to the default glyph.)
KATSU_IVS = "葛\U000E0102"
KATSURAGI_NAME = f"{KATSU_IVS}城　𠮷子"


def op(oid="DISC-1", roles=("operator",), registers=("juki", "fuhyo"), affairs=("disclosure",)) -> Operator:
    return Operator(oid, f"{oid} 担当", "市町村課", tuple(roles), tuple(registers), tuple(affairs), "active", False)


OP = op()
SEARCHER = op("SRCH-1", affairs=("search",))
MANAGER = op("MGR-1", roles=("manager",), affairs=())
PROV = P.operator()


def seed(registers) -> None:
    P.seed(registers)
    with registers.juki_uow() as uow:
        rec = uow.repo.apply(P.juki(KATSURAGI, KATSURAGI_NAME, "カツラギ　ヨシコ", date(1961, 2, 3), sex="2",
                                    address="三重県名張市鴻之台1番地", kojin=P.kbango(20)))
        cur = uow.repo.get(KATSURAGI)
        uow.repo.apply(cur.replace(address="三重県名張市丸之内79番地", reason="転居", change_date=date(2023, 6, 1)),
                       previous=cur)
    with registers.fuhyo_uow() as uow:
        uow.repo.apply(derive_fuhyo(FuhyoRecord(
            juminhyo_code=KATSURAGI, name=KATSURAGI_NAME, name_kana="カツラギ　ヨシコ", birth_date=date(1961, 2, 3),
            sex="2", address_municipality_code="242080", address="三重県名張市丸之内79番地",
            change_date=date(2023, 6, 1), fuhyo_municipality_code="242080")))


def reset(registers, config) -> None:
    for store in migrate.STORES:
        engine = registers.engine(store)
        with engine.begin() as conn:
            for t in reversed(METADATA[store].sorted_tables):
                if t.name not in KEEP:
                    conn.execute(delete(t))
    config.provision = ProvisionConfig()
    config.provision.national_fallback = False


@pytest.fixture(scope="session", params=BACKENDS)
def installation(request, tmp_path_factory):
    config = make_installation(tmp_path_factory.mktemp(f"disc-{request.param}") / "data", request.param, request)
    registers = Registers(config)
    prov = ProvisionService(config, registers)
    C.ensure_default(registers, prov.oplog)
    yield request.param, config, registers
    registers.dispose()


@dataclass
class World:
    backend: str
    config: object
    registers: object
    svc: DisclosureService
    prov: ProvisionService

    def provide(self, code, requester="KOAN", affair="KOAN-UNTEN", **kw):
        return self.prov.provide(ProvideCommand(requester_code=requester, affair_code=affair, juminhyo_code=code,
                                                **kw), PROV, "T-PROV")


@pytest.fixture
def world(installation) -> World:
    backend, config, registers = installation
    reset(registers, config)
    prov = ProvisionService(config, registers)
    C.apply(registers, prov.oplog, C.load_default(), actor=Actor("test-reset", None), via="init")
    seed(registers)
    return World(backend, config, registers, DisclosureService(config, registers), prov)
