"""The ``jukinet`` command (Typer). Every command takes ``--data-dir`` (default ./jukinet-data);
everything else is in ``DIR/jukinet.toml``, written by ``init``.

Commands are thin: they parse, open the installation through the composition root
(:mod:`jukinet.cli.common`, :mod:`jukinet.bootstrap`), call a service, and print. Errors are
printed as ``code: message`` (Japanese) and exit non-zero. One module per room:

=====================  ===================================================================
module                 commands
=====================  ===================================================================
``cli.install``        ``init``, ``seed``
``cli.serve``          ``serve``, ``demo``
``cli.migrate``        ``migrate`` (A7, Q2; ADR 0028)
``cli.security``       ``operator …``, ``terminal …``, ``audit verify|checkpoint`` (A1–A3)
``cli.audit``          ``audit report|watch``, ``operator inventory`` (A4, A2)
``cli.sim``            ``sim …``, ``outbox`` (事務1 simulators, the outbox worker)
``cli.reconcile``      ``reconcile``, ``sim cs-snapshot`` (事務6, C1)
``cli.ops``            ``retention …``, ``stats`` (A8, A9)
``cli.provision``      ``catalogue …``, ``provision …``, ``query …`` (事務2, 事務4)
``cli.disclosure``     ``disclosure suspension …``, ``disclosure reports`` (事務3: O4, O5; ADR 0039)
``cli.backup``         ``backup …``, ``restore`` (A7; ADR 0024)
``cli.keys``           ``keys …`` (個人番号 at rest; ADR 0025)
``cli.pki``            ``pki …`` (revocation; ADR 0030)
``cli.media``          ``media …`` (媒体管理簿, virus check; G2, G3; ADR 0040)
``cli.center``         ``center init|add|list|status|remove|serve`` (Q1; ADR 0036)
``cli.cluster``        ``cluster up|down|status|…|backup|restore`` (Q3; ADR 0037, 0044)
``cli.governance``     ``incident …``, ``inspection …``, ``contractor …`` (G4, G5; ADR 0041)
=====================  ===================================================================
"""

from __future__ import annotations

import sys

import typer

from jukinet.cli.audit import inventory_command, report_command, watch_command
from jukinet.cli.backup import backup_app, restore_command
from jukinet.cli.center import center_app
from jukinet.cli.cluster import cluster_app
from jukinet.cli.disclosure import disclosure_app
from jukinet.cli.governance import contractor_app, incident_app, inspection_app
from jukinet.cli.install import init, seed
from jukinet.cli.keys import keys_app
from jukinet.cli.media import media_app
from jukinet.cli.migrate import migrate_command
from jukinet.cli.ops import retention_app, stats_command
from jukinet.cli.pki import pki_app
from jukinet.cli.provision import catalogue_app, provision_app, query_app
from jukinet.cli.reconcile import cs_snapshot_command, reconcile_command
from jukinet.cli.security import audit_app, operator_app, terminal_app
from jukinet.cli.serve import demo, serve
from jukinet.cli.sim import outbox as outbox_command
from jukinet.cli.sim import sim_app

app = typer.Typer(help="jukinet — 都道府県サーバ・附票都道府県サーバ", no_args_is_help=True, add_completion=False)

app.command()(init)
app.command()(seed)
app.command()(serve)
app.command()(demo)
app.add_typer(operator_app, name="operator")                 # A1–A3: roster, terminals
app.add_typer(terminal_app, name="terminal")
app.add_typer(audit_app, name="audit")                       # A4: verify, checkpoint, report, watch
audit_app.command("report")(report_command)
audit_app.command("watch")(watch_command)
operator_app.command("inventory")(inventory_command)         # A2
app.add_typer(sim_app, name="sim")                           # 事務1: simulators
app.command("outbox")(outbox_command)
app.command("reconcile")(reconcile_command)                  # 事務6, C1
sim_app.command("cs-snapshot")(cs_snapshot_command)
app.add_typer(retention_app, name="retention")               # A8
app.command("stats")(stats_command)                          # A9
app.add_typer(catalogue_app, name="catalogue")               # 事務2 (P1)
app.add_typer(provision_app, name="provision")
app.add_typer(query_app, name="query")                       # 事務4 (N1)
app.add_typer(disclosure_app, name="disclosure")             # 事務3 (O4, O5; ADR 0039)
app.add_typer(backup_app, name="backup")                     # A7 (ADR 0024)
app.command("restore")(restore_command)
app.add_typer(keys_app, name="keys")                         # ADR 0025
app.add_typer(pki_app, name="pki")                           # U1, U6 (ADR 0030)
app.add_typer(media_app, name="media")                       # G2, G3 (ADR 0040)
app.command("migrate")(migrate_command)                      # A7, Q2 (ADR 0028)
app.add_typer(center_app, name="center")                     # Q1 (ADR 0036)
app.add_typer(cluster_app, name="cluster")                   # Q3 (ADR 0037): local HA cluster
app.add_typer(incident_app, name="incident")                 # G4 (ADR 0041): incident register
app.add_typer(inspection_app, name="inspection")             # G5: self-inspection, internal audit
app.add_typer(contractor_app, name="contractor")             # G5: contractor roster, monthly report


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
