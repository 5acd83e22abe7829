"""Retention rules of 事務2 (A8), registered in :mod:`jukinet.retention` when it loads its rules.

==============================  ======  ==============================================  ==============
rule                            store   rows                                             period
==============================  ======  ==============================================  ==============
``provision_records``           juki    提供・移転の記録 (拒否を含む) of D1                 7 years (config)
``provision_records_fuhyo``     fuhyo   the same of D2                                   7 years (config)
``fuhyo_kojin_bango_temp``      fuhyo   附票提供用の個人番号 in the temporary area          delivery window (< 1 year)
``provision_media_files``       juki    the server's copy of encrypted batch results     media_retention_days
==============================  ======  ==============================================  ==============

The provision record's retention date is the day (JST) of the attempt; it is erased on the first
run after the same calendar day 7 years later (PIA III(1).5 R1, III(2).5 R1: "7年分保存"), by the
same date rule as the registers (:func:`jukinet.retention.cutoff_date`). The temporary area
and the media files are files outside the databases; their rules erase the files whose window has
passed and record the counts like every other rule (the store named is where the run is recorded).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Connection

from jukinet.retention import (Cutoff, RetentionRule, TableRule, jst_midnight_after, load_rules,
                                   register_rule)
from jukinet.store.tables_provision import PROVISION_RECORDS, provision_media

BASIS = "PIA III(1).5 R1, III(2).5 R1: 提供・移転の記録は7年分保存 (P5)"


class _FileRule(RetentionRule):
    """Files in a directory of the data directory whose window has passed (no database rows)."""

    def available(self, conn: Connection) -> bool:
        return True

    def cutoff(self, today: date, config) -> Cutoff:
        """Files expired by now — or by the start of ``today`` (JST) when the job runs for a later day."""
        self.config = config
        return Cutoff(today, max(datetime.now(timezone.utc), jst_midnight_after(today - timedelta(days=1))))

    def _expired(self, cutoff: Cutoff) -> list[tuple[datetime, Path]]:
        raise NotImplementedError

    def eligible(self, conn: Connection, cutoff: Cutoff) -> int:
        return len(self._expired(cutoff))

    def by_year(self, conn: Connection, cutoff: Cutoff) -> dict[int, int]:
        out: dict[int, int] = {}
        for when, _ in self._expired(cutoff):
            y = (when + timedelta(hours=9)).year
            out[y] = out.get(y, 0) + 1
        return out

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        n = 0
        for _, p in self._expired(cutoff)[:limit]:
            p.unlink(missing_ok=True)
            n += 1
        return n


class KojinBangoTempRule(_FileRule):
    name = "fuhyo_kojin_bango_temp"
    store = "fuhyo"
    title = "附票提供用の個人番号一時領域"
    basis = "PIA II(2).6②, III(2).7 R2/R3: 提供後の一時的な保存、1年未満で自動消去 (P6)"

    def cutoff(self, today: date, config) -> Cutoff:
        self.period = f"{config.provision.kojin_bango_temp_days}日"
        return super().cutoff(today, config)

    def _expired(self, cutoff: Cutoff):
        from jukinet.provision.tempstore import TempStore
        from jukinet.security.keys import KeyRing

        store = TempStore(self.config.resolve(self.config.provision.kojin_bango_temp_dir), KeyRing(self.config.data_dir))
        return [(datetime.fromtimestamp(exp, timezone.utc), p) for exp, p in store.expired(cutoff.instant)]


class MediaFilesRule(_FileRule):
    """The server's copy of an encrypted batch result, ``media_retention_days`` after it was written
    (the media register keeps the entry and its digest; ``erased_at`` is set)."""

    name = "provision_media_files"
    store = "juki"
    title = "一括提供の結果ファイル (暗号化済み) のサーバ上の控え"
    basis = "ADR 0016: 受け渡しの後は保持しない (媒体管理簿の記録は残す)"

    def cutoff(self, today: date, config) -> Cutoff:
        self.period = f"{config.provision.media_retention_days}日"
        self.config = config
        d = today - timedelta(days=config.provision.media_retention_days + 1)
        return Cutoff(d, jst_midnight_after(d))

    def _expired(self, cutoff: Cutoff):
        d = self.config.resolve(self.config.provision.media_dir)
        if not d.exists():
            return []
        out = []
        for p in d.glob("*.jkm"):
            when = datetime.fromtimestamp(p.stat().st_mtime, timezone.utc)
            if when < cutoff.instant:
                out.append((when, p))
        return sorted(out)

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        files = self._expired(cutoff)[:limit]
        n = super().erase_batch(conn, cutoff, limit)
        if files:
            from jukinet.store.registers import Registers

            regs = Registers(self.config)
            try:
                with regs.admin_tx() as aconn:
                    aconn.execute(update(provision_media).where(
                        provision_media.c.media_id.in_([p.stem for _, p in files]),
                        provision_media.c.erased_at.is_(None)).values(erased_at=datetime.now(timezone.utc)))
            finally:
                regs.dispose()
        return n


load_rules()   # the built-in rules first (a no-op when ops.retention is loading us), then ours replace the planned ones
for _reg, _name in (("juki", "provision_records"), ("fuhyo", "provision_records_fuhyo")):
    register_rule(TableRule(_name, _reg, PROVISION_RECORDS[_reg], key="record_id", column="at", instant=True,
                            title=f"提供・移転の記録 (拒否を含む、{'本人確認情報' if _reg == 'juki' else '附票本人確認情報'})",
                            basis=BASIS, years_from_config="provision.record_years"))
register_rule(KojinBangoTempRule())
register_rule(MediaFilesRule())

__all__ = ["KojinBangoTempRule", "MediaFilesRule"]
