"""Fixtures of the 事務1 tests: the dev PKI, the prefectural server and the national sims on free
ports (real HTTPS with mutual TLS), and an in-process app with a CS certificate injected."""

from __future__ import annotations

import pytest

from jukinet.intake.server import PrefectureServer
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
