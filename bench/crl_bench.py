"""Certificate revocation (ADR 0030): what a CRL costs on the CS channel.

1. Loading a CRL of N revoked certificates (parse + CA signature + serial set) against
   ``openssl crl -CAfile ca.pem -noout`` doing the same parse and signature check.
2. The per-request check (``RevocationChecker.check``) against the application's existing
   certificate re-check (``pki.identity_of``, cached) on the same certificate.

Usage: .venv/bin/python bench/crl_bench.py [N]   (a throwaway installation under /tmp)
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from jukinet import pki
from jukinet.config import Config
from jukinet.pki.crl import DevCa, RevocationChecker


def main(n: int = 10000) -> None:
    d = Path(tempfile.mkdtemp(prefix="crlbench-"))
    subprocess.run([str(Path(sys.executable).parent / "jukinet"), "init", "--data-dir", str(d)], check=True,
                   capture_output=True)
    config = Config.load(d)
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
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
