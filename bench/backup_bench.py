"""Encrypted backup and restore (A7): jukinet vs the bare engine and plain Unix tools, same run.

Usage: python bench/backup_bench.py [--data-dir DIR | --db-url URL] [--work DIR] [--residents N]

``--data-dir`` is a seeded installation (SQLite; e.g. the 1.8M-resident Mie one), used read-only: its
three database files and its keys/pki/audit files are first copied with ``cp`` into ``--work``
(default ``/work/bench-data/restore-tmp``, deleted at the end), and everything is measured on that
copy. Without ``--data-dir`` a fresh installation of N residents is seeded into ``--work``.

Each step runs as its own process; wall time and peak RSS (``wait4``) are recorded:

1. **jukinet backup** — ``jukinet backup --out FILE`` (consistent snapshot of the three databases,
   zlib level 1, AES-256-GCM chunks, data key wrapped with an RSA-3072 public key), and the same with
   ``compress_level = 0``;
2. **baseline** — Python's ``sqlite3`` online backup of the same three files (one step each) into a
   directory, then ``tar -cf`` of it; and the same tar piped through ``openssl enc -aes-256-ctr``
   (the cipher cost without authentication, compression or key wrapping);
3. **jukinet verify** and **jukinet restore** (private key, passphrase from the environment) into a
   new directory;
4. **baseline restore** — ``tar -xf`` of the plain tar (i.e. ``cp`` of the files).

Prints a markdown table with the ratios and the load average.

``--db-url URL`` (a PostgreSQL server where the bench may create databases and roles) measures the
PostgreSQL variant instead: N residents seeded into a throwaway database (or, with ``--data-dir``, an
installation already seeded on that server, read only: its config and keys are copied, its database dumped); ``jukinet backup`` (three ``pg_dump`` of one exported snapshot, encrypted) vs one
``pg_dump -Fc`` of the three schemas (and the same through ``openssl enc``); ``jukinet restore
--db-url`` vs ``pg_restore`` into an empty database. The databases and roles (unique names per run,
bench/engines.py) are dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from engines import Server, add_argument  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
VENV_BIN = Path(sys.executable).parent
STORES = ("juki", "fuhyo", "admin")


def run(argv, *, env=None, shell=False) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process (its children included for a shell)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv}\n{err[-2000:]}")
    return dt, ru.ru_maxrss * 1024


def copy_installation(src: Path, dst: Path) -> float:
    """cp the databases and the small trees; a config pointing at the copy (the source is untouched)."""
    from jukinet.config import Config
    from jukinet.store import provision

    dst.mkdir(parents=True)
    t0 = time.monotonic()
    for s in STORES:
        subprocess.run(["cp", str(src / f"{s}.sqlite3"), str(dst)], check=True)
        for ext in ("-wal",):
            if (src / f"{s}.sqlite3{ext}").exists():
                subprocess.run(["cp", str(src / f"{s}.sqlite3{ext}"), str(dst)], check=True)
    dt = time.monotonic() - t0
    for tree in ("keys", "pki", "audit"):
        if (src / tree).is_dir():
            shutil.copytree(src / tree, dst / tree)
    config = Config.load(src)
    config.data_dir = dst
    config.database = provision.sqlite_urls(dst)
    config.save()
    return dt


def seed(dst: Path, residents: int) -> None:
    jk = str(VENV_BIN / "jukinet")
    subprocess.run([jk, "init", "--data-dir", str(dst)], check=True, capture_output=True)
    subprocess.run([jk, "seed", "--data-dir", str(dst), "--residents", str(residents)], check=True,
                   capture_output=True)


BASELINE_SNAPSHOT = """
import sqlite3, sys
src, dst = sys.argv[1], sys.argv[2]
for s in ("juki", "fuhyo", "admin"):
    a = sqlite3.connect(f"{src}/{s}.sqlite3"); b = sqlite3.connect(f"{dst}/{s}.sqlite3")
    a.backup(b); b.close(); a.close()
"""


def postgres(a) -> int:
    """The PostgreSQL variant: jukinet backup/restore vs one ``pg_dump -Fc`` of the three schemas (as
    the administrator) and ``pg_restore`` into an empty database."""
    from jukinet.backup.keys import PASSPHRASE_ENV, PRIVATE_NAME, PUBLIC_NAME, generate_key_pair

    work = a.work
    if work.exists():
        raise SystemExit(f"{work} exists: remove it first")
    work.mkdir(parents=True)
    jk = str(VENV_BIN / "jukinet")
    env = dict(os.environ, **{PASSPHRASE_ENV: "bench"})
    rows = {}
    try:
        with Server(a.db_url) as server:    # three throwaway databases and their roles, dropped at the end
            restored, plain = (server.database(n) for n in ("restored", "plain"))
            inst = work / "installation"
            if a.data_dir:       # an installation already seeded on this server (e.g. 三重県 1.8M), read only:
                shutil.copytree(a.data_dir, inst)      # its config and keys copied, its database dumped
                from jukinet.config import Config
                name = make_url(Config.load(inst).database.juki_url).database
                src = server.url(name)
                a.residents = _residents(src)
            else:
                src = server.database("src")
                subprocess.run([jk, "init", "--data-dir", str(inst), "--db-url", src], check=True, capture_output=True)
                subprocess.run([jk, "seed", "--data-dir", str(inst), "--residents", str(a.residents)], check=True,
                               capture_output=True)
            generate_key_pair(work / "keys", passphrase="bench")
            shutil.copy(work / "keys" / PUBLIC_NAME, inst / "keys" / "backup-public.pem")
            rows["backup"] = run([jk, "backup", "--data-dir", str(inst), "--out", str(work / "b.jkb")])
            size = (work / "b.jkb").stat().st_size
            dump = ["pg_dump", "-Fc", "--compress=1", "-n", "juki", "-n", "fuhyo", "-n", "admin", "--no-owner"]
            rows["base_dump"] = run([*dump, "-f", str(work / "plain.dump"), src])
            plain_size = (work / "plain.dump").stat().st_size
            rows["base_enc"] = run(" ".join(dump) + f" '{src}' | openssl enc -aes-256-ctr -pbkdf2 -pass pass:bench"
                                   f" -out {work / 'plain.enc'}", shell=True)
            priv = str(work / "keys" / PRIVATE_NAME)
            rows["restore"] = run([jk, "restore", str(work / "b.jkb"), "--key", priv, "--data-dir",
                                   str(work / "restored"), "--db-url", restored], env=env)
            rows["base_restore"] = run(["pg_restore", "--no-owner", "-d", plain, str(work / "plain.dump")])
            ok = subprocess.run([jk, "audit", "verify", "--data-dir", str(work / "restored"), "--no-checkpoint"],
                                capture_output=True).returncode == 0
            version = server.version()
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"{version}, {a.residents:,} residents; restored copy passes `jukinet audit verify`: {ok}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| step | jukinet | time | peak RSS | size | baseline (same run) | time | size | ratio |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|")
    print(f"| backup | `jukinet backup` (3 pg_dumps of one snapshot + AES-256-GCM) | {rows['backup'][0]:.1f} s | "
          f"{rows['backup'][1] / 2**20:.0f} MB | {size / 2**20:,.1f} MiB | `pg_dump -Fc` of the 3 schemas | "
          f"{rows['base_dump'][0]:.1f} s | {plain_size / 2**20:,.1f} MiB | {rows['backup'][0] / rows['base_dump'][0]:.2f}× |")
    print(f"| | | | | | `pg_dump \\| openssl enc -aes-256-ctr` | {rows['base_enc'][0]:.1f} s | | "
          f"{rows['backup'][0] / rows['base_enc'][0]:.2f}× |")
    print(f"| restore | `jukinet restore --db-url` | {rows['restore'][0]:.1f} s | {rows['restore'][1] / 2**20:.0f} MB | | "
          f"`pg_restore` into an empty database | {rows['base_restore'][0]:.1f} s | | "
          f"{rows['restore'][0] / rows['base_restore'][0]:.2f}× |")
    return 0 if ok else 1


def _residents(url: str) -> int:
    """Current residents in the juki schema of the database at ``url`` (for the table's caption)."""
    out = subprocess.run(["psql", "-Atc", "SELECT count(*) FROM juki.juki_current WHERE NOT deleted", url],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/restore-tmp"))
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--keep", action="store_true", help="do not delete --work at the end")
    add_argument(ap)     # PostgreSQL: measure the PostgreSQL variant (N residents seeded into a throwaway database)
    a = ap.parse_args()
    if a.db_url:
        return postgres(a)
    from jukinet.backup.keys import PASSPHRASE_ENV, PRIVATE_NAME, PUBLIC_NAME, generate_key_pair

    work = a.work
    if work.exists():
        raise SystemExit(f"{work} exists: remove it first")
    work.mkdir(parents=True)
    try:
        inst = work / "installation"
        if a.data_dir:
            cp_in = copy_installation(a.data_dir, inst)
            print(f"copied the databases in {cp_in:.1f} s", file=sys.stderr)
        else:
            seed(inst, a.residents)
        generate_key_pair(work / "keys", passphrase="bench")
        shutil.copy(work / "keys" / PUBLIC_NAME, inst / "keys" / "backup-public.pem")
        db_bytes = sum((inst / f"{s}.sqlite3").stat().st_size for s in STORES)
        jk = str(VENV_BIN / "jukinet")
        env = dict(os.environ, **{PASSPHRASE_ENV: "bench"})
        rows = {}

        # warm the page cache for everyone alike
        subprocess.run(f"cat {inst}/*.sqlite3 > /dev/null", shell=True, check=True)
        rows["backup"] = run([jk, "backup", "--data-dir", str(inst), "--out", str(work / "b.jkb")])
        size = (work / "b.jkb").stat().st_size
        from jukinet.config import Config

        c = Config.load(inst)
        c.backup.compress_level = 0
        c.save()
        rows["backup0"] = run([jk, "backup", "--data-dir", str(inst), "--out", str(work / "b0.jkb")])
        size0 = (work / "b0.jkb").stat().st_size
        (work / "b0.jkb").unlink()

        (work / "plain").mkdir()
        rows["base_snapshot"] = run([sys.executable, "-c", BASELINE_SNAPSHOT, str(inst), str(work / "plain")])
        rows["base_tar"] = run(["tar", "-cf", str(work / "plain.tar"), "-C", str(work / "plain"), "."])
        plain_size = (work / "plain.tar").stat().st_size
        rows["base_enc"] = run(f"tar -cf - -C {work / 'plain'} . | openssl enc -aes-256-ctr -pbkdf2 -pass pass:bench "
                               f"-out {work / 'plain.tar.enc'}", shell=True)
        (work / "plain.tar.enc").unlink()
        shutil.rmtree(work / "plain")

        priv = str(work / "keys" / PRIVATE_NAME)
        rows["verify"] = run([jk, "backup", "verify", str(work / "b.jkb"), "--key", priv], env=env)
        rows["restore"] = run([jk, "restore", str(work / "b.jkb"), "--key", priv, "--data-dir",
                               str(work / "restored")], env=env)
        (work / "untar").mkdir()
        rows["base_restore"] = run(["tar", "-xf", str(work / "plain.tar"), "-C", str(work / "untar")])
        ok = subprocess.run([jk, "audit", "verify", "--data-dir", str(work / "restored"), "--no-checkpoint"],
                            capture_output=True).returncode == 0
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    def s(k):
        return f"{rows[k][0]:.1f} s"

    def m(k):
        return f"{rows[k][1] / 2**20:.0f} MB"

    base_backup = rows["base_snapshot"][0] + rows["base_tar"][0]
    base_backup_enc = rows["base_snapshot"][0] + rows["base_enc"][0]
    load = os.getloadavg()
    print(f"databases: {db_bytes / 2**30:.2f} GiB; restored copy passes `jukinet audit verify`: {ok}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| step | jukinet | time | peak RSS | size | baseline (same run) | time | peak RSS | ratio |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|")
    print(f"| backup | `jukinet backup` (zlib 1 + AES-256-GCM) | {s('backup')} | {m('backup')} | "
          f"{size / 2**20:,.0f} MiB | sqlite3 online backup + `tar -cf` | {base_backup:.1f} s | "
          f"{max(rows['base_snapshot'][1], rows['base_tar'][1]) / 2**20:.0f} MB | {rows['backup'][0] / base_backup:.2f}× |")
    print(f"| backup, no compression | `compress_level = 0` | {s('backup0')} | {m('backup0')} | {size0 / 2**20:,.0f} MiB | "
          f"sqlite3 online backup + `tar \\| openssl enc -aes-256-ctr` | {base_backup_enc:.1f} s | "
          f"{rows['base_enc'][1] / 2**20:.0f} MB | {rows['backup0'][0] / base_backup_enc:.2f}× |")
    print(f"| verify | `jukinet backup verify` | {s('verify')} | {m('verify')} | | | | | |")
    print(f"| restore | `jukinet restore` (SQLite) | {s('restore')} | {m('restore')} | | `tar -xf` (cp) | "
          f"{s('base_restore')} | {m('base_restore')} | {rows['restore'][0] / rows['base_restore'][0]:.2f}× |")
    print(f"\nplain tar: {plain_size / 2**20:,.0f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
