"""A11: the servers connect to no other system (宛名システム, 庁内システム) — only to the national servers.

PIA III.3 R1: 都道府県サーバ・附票都道府県サーバ are not connected to other systems. Inbound, they
serve the municipal CS (mutual TLS), operators' terminals and other bodies' terminal software;
outbound, the only peers are the national server and the national fuhyo server (J-LIS). These
tests fail when a module starts making network connections that are not on the reviewed list, or
when the configuration grows another outbound peer.
"""

import ast
from dataclasses import fields
from pathlib import Path

import jukinet
from jukinet.config import Config

SRC = Path(jukinet.__file__).parent

NETWORK_CLIENTS = {"httpx", "requests", "urllib.request", "http.client", "smtplib", "ftplib", "aiohttp",
                   "urllib3", "paramiko", "ldap3"}

#: modules allowed to open outbound connections, and why
ALLOWED = {
    "outbox/worker.py": "forwards updates to the national servers (U5)",
    "provision/national.py": "queries the national servers (P3, N1)",
    "sim/cs.py": "simulator of a municipal CS (test/demo tooling, not the server)",
    "cluster/local.py": "the local development cluster's Patroni REST API on 127.0.0.1 (tooling, Q3; ADR 0037)",
    "cluster/replication.py": "GET-only reads of the prefecture's own database cluster's Patroni REST API "
                              "(`[cluster] patroni_urls`; the ops view, Q3; ADR 0044) — part of this system",
    "cli/reconcile.py": "`sim cs-snapshot`: the simulated CS sending its snapshot (tooling)",
    "center/move.py": "`center move` pausing and resuming the tenant at the running center's own control door "
                      "(loopback only, with the center's control token; ADR 0055) — part of this system",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_a11_only_reviewed_modules_open_outbound_connections():
    offenders = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        used = {n for n in _imports(path) if n in NETWORK_CLIENTS or n.split(".")[0] in {"requests", "aiohttp"}}
        if used and rel not in ALLOWED:
            offenders[rel] = sorted(used)
    assert offenders == {}, f"outbound network clients outside the reviewed list: {offenders}"


#: every section of jukinet.toml, reviewed: only ``national`` names a system we connect out to
CONFIG_SECTIONS = {
    "data_dir": "local", "database": "our own databases", "prefecture_code": "identity",
    "prefecture_name": "identity", "server": "where we listen", "national": "OUTBOUND: national servers",
    "tls": "our certificates and the CA", "intake": "CS intake (inbound)", "security": "operators (inbound)",
    "reconcile": "consistency checks (inbound from CS)", "retention": "local job", "provision": "local settings",
    "backup": "local job (files, public key)",
    "audit": "local analysis (A2, A4)",
    "media": "local: the media register and the ClamAV scanner on this host (G2, G3)",
    "observability": "metrics and logs (inbound scrape)",
    "cluster": "our own databases: the Patroni REST API (GET) and pgBackRest of the cluster the registers "
               "live on (Q3; ADR 0044) — part of this system, not another system",
}


def test_a11_the_only_configured_outbound_peers_are_the_national_servers():
    """A new config section fails this test until it is reviewed (and listed) above. ``cluster`` reaches
    the database hosts of this system (like ``database``), not another system."""
    assert {f.name for f in fields(Config)} == set(CONFIG_SECTIONS)
    assert [k for k, why in CONFIG_SECTIONS.items() if why.startswith("OUTBOUND")] == ["national"]
