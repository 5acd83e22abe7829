"""Certificate revocation (ADR 0030): what a CRL costs on the CS channel.

1. Loading a CRL of N revoked certificates (parse + CA signature + serial set) against
   ``openssl crl -CAfile ca.pem -noout`` doing the same parse and signature check.
2. The per-request check (``RevocationChecker.check``) against the application's existing
   certificate re-check (``pki.identity_of``, cached) on the same certificate.

Usage: .venv/bin/python bench/crl_bench.py [N] [--db-url URL]   (a throwaway installation under /tmp)

Revocation touches no database: the CRL is a file and the check is in memory. ``--db-url`` (issue 16:
every benchmark takes it) initialises the throwaway installation on PostgreSQL — a throwaway database,
dropped at the end (bench/engines.py) — so the figures are the same on either engine by construction.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server, add_argument  # noqa: E402

from jukinet import pki  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.pki.crl import DevCa, RevocationChecker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=10000)
    add_argument(ap)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="crlbench-") as tmp, Server(a.db_url) as server:
        d = Path(tmp) / "data"
        db = ["--db-url", server.database()] if server.postgres else []
        subprocess.run([sys.executable, "-m", "jukinet.cli", "init", "--data-dir", str(d), *db], check=True,
                       capture_output=True)
        print(f"installation on {server.version()}")
        measure(Config.load(d), a.n)


def measure(config: Config, n: int) -> None:
    t = time.perf_counter()
    DevCa(config).publish([(random.getrandbits(120), "key_compromise", None) for _ in range(n)])
    print(f"publish {n} entries: {time.perf_counter() - t:.2f} s")
    crl, ca = config.resolve(config.tls.crl_file), config.resolve(config.tls.ca_cert)
    t = time.perf_counter()
    for _ in range(5):
        RevocationChecker(config).refresh(force=True)
    ours = (time.perf_counter() - t) / 5
    t = time.perf_counter()
    for _ in range(5):
        subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(ca), "-noout"], check=True,
                       capture_output=True)
    base = (time.perf_counter() - t) / 5
    print(f"load+verify CRL ({n} entries, {os.path.getsize(crl)} B): jukinet {ours * 1e3:.0f} ms, "
          f"openssl crl {base * 1e3:.0f} ms, ratio {ours / base:.2f}")
    checker = RevocationChecker(config)
    der = pki.load_cert(config.resolve(pki.cs_paths(config.tls.cs_dir, "242012")[0])).public_bytes(
        serialization.Encoding.DER)
    ca_cert = pki.load_cert(ca)
    k = 50000
    t = time.perf_counter()
    for _ in range(k):
        checker.check(der)
    chk = (time.perf_counter() - t) / k
    t = time.perf_counter()
    for _ in range(k):
        pki.identity_of(der, ca_cert)
    ident = (time.perf_counter() - t) / k
    print(f"per request: revocation check {chk * 1e6:.1f} µs, identity re-check {ident * 1e6:.1f} µs, "
          f"ratio {chk / ident:.2f}")


if __name__ == "__main__":
    main()
