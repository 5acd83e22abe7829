"""ウイルスチェック: every file brought in or handed out on media is checked with ClamAV (G3; PIA
III.5 その他 「電子媒体を用いた情報移転の際には媒体のウイルスチェック…に留意する」; ADR 0040).

The scanner is Debian's ClamAV: ``clamdscan --fdpass`` against the running ``clamd`` (signatures
loaded once) or ``clamscan`` (loads them on each run), chosen by ``[media].scanner``
(``auto``: clamd when its socket exists, else clamscan). ``[media].database`` is handed to clamscan
as ``-d`` (a signature directory or file); empty means ClamAV's own directory, kept current by
``freshclam`` (operations.md says how production gets its signatures).

**Fail closed.** A file is accepted only when the scanner ran and answered *clean* (exit 0):

* a signature matched (exit 1)                         → ``MEDIA_INFECTED`` (the signature name is kept)
* a file over ClamAV's limits (Heuristics.Limits…)     → ``MEDIA_SCAN_INCOMPLETE``
* over ``[media].max_file_mb``                          → ``MEDIA_TOO_LARGE_TO_SCAN``
* no scanner installed                                  → ``MEDIA_SCANNER_MISSING``
* any other answer (no signatures, a crash, a timeout)  → ``MEDIA_SCAN_FAILED``

Every scan, whatever its outcome, is one row of ``media_scans`` (direction, purpose, SHA-256 and size
of the file — never its name or content). Callers log the refusal in the operation log.

>>> sig = test_signature()
>>> sig.split(":")[:2]
['44d88612fea8a8f36de82e1278abb02f', '68']
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, ContextManager, Optional

from sqlalchemy import insert

from jukinet.config import MediaConfig
from jukinet.errors import JukinetError
from jukinet.store.tables_media import media_scans

#: the EICAR anti-virus test file (not a virus; every scanner must detect it)
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
ENGINES = ("clamscan", "clamd")


def test_signature(name: str = "Jukinet.Test.EICAR") -> str:
    """A ClamAV MD5 hash signature (``.hdb`` line ``md5:size:name``) of the EICAR test file."""
    return f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{name}"


test_signature.__test__ = False   # not a pytest test


def test_body_signature(name: str = "Jukinet.Test.EICAR.Body") -> str:
    """A ClamAV body signature (``.ndb`` line ``name:0:*:hex``): the EICAR string anywhere in a file."""
    return f"{name}:0:*:{EICAR.hex()}"


test_body_signature.__test__ = False


def write_test_database(directory: Path) -> Path:
    """A signature directory with only the EICAR signatures — the whole-file MD5 (``.hdb``) and the
    string inside another file (``.ndb``) — for tests and acceptance (no download needed); clamscan
    ``-d`` takes the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "jukinet-test.hdb").write_text(test_signature() + "\n")
    (directory / "jukinet-test.ndb").write_text(test_body_signature() + "\n")
    return directory


@dataclass(frozen=True)
class ScanResult:
    outcome: str                 # clean | infected
    engine: str                  # clamscan | clamd
    signature: Optional[str]
    sha256: str
    size: int


class ScanFailed(JukinetError):
    """The scanner could not give a verdict: the file is refused (fail closed)."""


def _digest(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
            n += len(b)
    return h.hexdigest(), n


class VirusScanner:
    def __init__(self, cfg: MediaConfig, resolve: Callable[[str], Path] = Path):
        self.cfg = cfg
        self.resolve = resolve

    def engine(self) -> str:
        s = (self.cfg.scanner or "auto").lower()
        if s == "auto":
            return "clamd" if (shutil.which(self.cfg.clamdscan_path) and os.path.exists(self.cfg.clamd_socket)) \
                else "clamscan"
        if s not in ENGINES:
            raise ScanFailed("MEDIA_SCANNER_CONFIG", "ウイルスチェックの設定 [media].scanner は auto・clamd・clamscan の"
                                                     "いずれかです。ファイルは受け付けません。")
        return s

    def _command(self, engine: str, path: Path) -> list[str]:
        mb = f"{int(self.cfg.max_file_mb)}M"
        if engine == "clamd":
            exe = shutil.which(self.cfg.clamdscan_path)
            if not exe:
                raise ScanFailed("MEDIA_SCANNER_MISSING", "ウイルスチェックのソフトウェア (clamdscan) がありません。"
                                                         "ファイルは受け付けません。")
            return [exe, "--fdpass", "--no-summary", "--stdout", "--", str(path)]
        exe = shutil.which(self.cfg.clamscan_path)
        if not exe:
            raise ScanFailed("MEDIA_SCANNER_MISSING", "ウイルスチェックのソフトウェア (clamscan) がありません。"
                                                     "ファイルは受け付けません。")
        cmd = [exe, "--no-summary", "--stdout", f"--max-filesize={mb}", f"--max-scansize={mb}",
               "--alert-exceeds-max=yes"]
        if self.cfg.database:
            cmd.append(f"--database={self.resolve(self.cfg.database)}")
        return cmd + ["--", str(path)]

    def scan(self, path: Path) -> ScanResult:
        """Scan one file. Returns clean or infected; raises :class:`ScanFailed` when there is no verdict."""
        path = Path(path).absolute()
        engine = self.engine()
        try:
            sha, size = _digest(path)
        except OSError:
            raise ScanFailed("MEDIA_FILE_UNREADABLE", "ファイルを読み取れません。") from None
        if size > int(self.cfg.max_file_mb) * 1024 * 1024:
            raise ScanFailed("MEDIA_TOO_LARGE_TO_SCAN", "ファイルがウイルスチェックの上限を超えているため受け付けません。")
        cmd = self._command(engine, path)
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=float(self.cfg.timeout_seconds), check=False)
        except subprocess.TimeoutExpired:
            raise ScanFailed("MEDIA_SCAN_FAILED", "ウイルスチェックが時間内に終わりませんでした。ファイルは受け付けません。") from None
        except OSError:
            raise ScanFailed("MEDIA_SCANNER_MISSING", "ウイルスチェックのソフトウェアを起動できません。ファイルは受け付けません。") from None
        found = [ln.rsplit(": ", 1)[-1][:-len(" FOUND")].strip()
                 for ln in p.stdout.decode("utf-8", "replace").splitlines() if ln.endswith(" FOUND")]
        if p.returncode == 0 and not found:
            return ScanResult("clean", engine, None, sha, size)
        if p.returncode == 1 and found:
            sig = found[0][:120]
            if sig.startswith("Heuristics.Limits.Exceeded"):
                raise ScanFailed("MEDIA_SCAN_INCOMPLETE", "ファイルが大きすぎるか複雑すぎて最後まで検査できません。"
                                                         "ファイルは受け付けません。")
            return ScanResult("infected", engine, sig, sha, size)
        raise ScanFailed("MEDIA_SCAN_FAILED", "ウイルスチェックを実行できませんでした (ウイルス定義ファイルを確認してください)。"
                                             "ファイルは受け付けません。")


INFECTED_MESSAGE = "ウイルスが検出されたため、このファイルは受け付けません (媒体を隔離し、管理責任者に報告してください)。"


def scan_and_record(scanner: VirusScanner, admin_tx: Callable[[], ContextManager], path: Path, *, direction: str,
                    purpose: str, operator_id: Optional[str] = None, media_id: Optional[str] = None,
                    now: Optional[datetime] = None) -> ScanResult:
    """Scan ``path``, record the scan in ``media_scans`` whatever its outcome, and raise a coded refusal
    (``MEDIA_INFECTED`` or the failure's code) unless the file is clean."""
    now = now or datetime.now(timezone.utc)
    try:
        res = scanner.scan(path)
    except ScanFailed as e:
        with admin_tx() as conn:
            conn.execute(insert(media_scans).values(
                at=now, operator_id=operator_id, direction=direction, purpose=purpose, media_id=media_id,
                engine=_safe_engine(scanner), outcome="failed", code=e.code))
        raise
    with admin_tx() as conn:
        conn.execute(insert(media_scans).values(
            at=now, operator_id=operator_id, direction=direction, purpose=purpose, media_id=media_id, sha256=res.sha256,
            size_bytes=res.size, engine=res.engine, outcome=res.outcome, signature=res.signature,
            code="MEDIA_INFECTED" if res.outcome == "infected" else None))
    if res.outcome != "clean":
        raise JukinetError("MEDIA_INFECTED", INFECTED_MESSAGE, field="file")
    return res


def _safe_engine(scanner: VirusScanner) -> str:
    try:
        return scanner.engine()
    except JukinetError:
        return "unknown"
