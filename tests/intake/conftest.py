"""Fixtures of the 事務1 tests: the dev PKI, the prefectural server and the national sims on free
ports (real HTTPS with mutual TLS), and an in-process app with a CS certificate injected."""

from __future__ import annotations

import pytest

from jukinet.server import PrefectureServer
from jukinet.sim.cs import CsClient
from jukinet.sim.national import start_national

from .helpers import MUNIS, ensure_pki, use_free_ports


@pytest.fixture
def installation(config):
    use_free_ports(config)
    ensure_pki(config)
    return config


@pytest.fixture
def national(installation):
    running = start_national(installation, synthetic=50)
    yield {reg: store for reg, (_, store) in zip(("juki", "fuhyo"), running)}
    for t, store in running:
        t.stop()
        store.close()


@pytest.fixture
def server(installation, registers):
    """The prefectural server over HTTPS, without the outbox worker (tests drive delivery)."""
    srv = PrefectureServer(installation, registers, outbox=False).start()
    yield srv
    srv.stop()


@pytest.fixture
def cs(installation, server):
    clients = {code: CsClient(installation, code) for code in MUNIS}
    yield clients
    for c in clients.values():
        c.close()



@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One SQLite installation + server + CS clients for a module's checks that are decided before
    the register is read (formats, unknown items): no fresh database per case."""
    from types import SimpleNamespace

    from jukinet_testing import make_installation

    from jukinet.store.registers import Registers

    config = make_installation(tmp_path_factory.mktemp("shared") / "data", "sqlite")
    use_free_ports(config)
    ensure_pki(config)
    registers = Registers(config)
    srv = PrefectureServer(config, registers, outbox=False).start()
    clients = {code: CsClient(config, code) for code in MUNIS}
    yield SimpleNamespace(config=config, registers=registers, server=srv, cs=clients)
    for c in clients.values():
        c.close()
    srv.stop()
    registers.dispose()
