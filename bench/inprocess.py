"""What the in-process benchmarks of the operator side share (``ops_bench``, ``pages_bench``): the
command line that seeds — or opens — an installation on either engine and hands it to the
benchmark's ``run``, the timing loop, and operators signed in on one terminal without a browser.

    from inprocess import main, signed_in, terminal, timed

    def run(inst, k, version): ...
    if __name__ == "__main__":
        main(run, prefix="jukinet-x-bench-", residents=100_000, samples=60)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server, add_argument  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.security.oplog import Actor  # noqa: E402
from jukinet.store.tables_security import operators  # noqa: E402

ADMIN = Actor("bench", None)


def timed(fn, k: int) -> list[float]:
    """``k`` calls of ``fn``, each in milliseconds."""
    out = []
    for _ in range(k):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main(run, *, prefix: str, residents: int, samples: int) -> None:
    """``--data-dir`` (an installation to measure) or ``--residents`` N seeded into a fresh one (SQLite,
    or a throwaway database on ``--db-url``); then ``run(inst, samples, version)``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--residents", type=int, default=residents)
    ap.add_argument("--samples", type=int, default=samples)
    add_argument(ap)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, Server(a.db_url) as server:
        t0 = time.perf_counter()
        data_dir = a.data_dir or server.installation(Path(tmp) / "data", a.residents)
        seeded = time.perf_counter() - t0
        with bootstrap(data_dir) as inst:
            inst.ensure_default_catalogue()
            version = server.version() if not a.data_dir else inst.registers.juki_engine.dialect.name
            print(f"installation ready in {seeded:.0f} s", file=sys.stderr)
            run(inst, a.samples, version)


def terminal(sec) -> tuple[str, str]:
    """A registered and activated 操作端末: (terminal id, terminal secret)."""
    _, code = sec.add_terminal(ADMIN, "bench")
    return sec.activate_terminal(code)


def signed_in(sec, registers, terminal_id: str, operator_id: str, *, roles: list[str], registers_in_scope=(),
              affairs=(), display_name: str = "bench"):
    """An active, trained operator with a session on ``terminal_id`` (made in-process: no WebAuthn
    ceremony); returns the :class:`~jukinet.security.service.LoginResult`."""
    sec.register_operator(ADMIN, display_name=display_name, roles=roles, registers=list(registers_in_scope),
                          affairs=list(affairs), operator_id=operator_id)
    sec.record_training(ADMIN, operator_id, course="情報セキュリティ研修", taken_on=date.today())
    with registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == operator_id).values(status="active"))
        return sec._start_session(conn, sec._operator(conn, operator_id), terminal_id, "bench",
                                  datetime.now(timezone.utc))
