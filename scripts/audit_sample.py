"""A sample monthly access-log analysis report (A4) from synthetic data: docs/audit/monthly-report-sample.png.

Seeds a small throwaway installation (synthetic Mie residents), registers operators, and generates a
month of operator activity *through the real services* — 事務5 search and detail, 事務2 provision, a
refused out-of-scope search — on a simulated clock (last month, JST working days, with a few
irregularities: a night lookup, a holiday, repeated lookups of one person, a lookup of a person
sharing the operator's surname, a heavy day, lookups with no provision). Then renders the report and
converts page 1 with ``pdftoppm`` (poppler-utils).

The clock: the operation log stamps entries with ``datetime.now``; the script replaces that clock in
:mod:`jukinet.security.oplog` by a simulated one (the provision service takes ``now`` itself).

Usage: python scripts/audit_sample.py [--out docs/audit] [--pdf] [--residents 400]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))


class _Clock(datetime):
    current: datetime | None = None

    @classmethod
    def now(cls, tz=None):
        return cls.current if cls.current is not None else datetime.now(tz)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "audit")
    ap.add_argument("--pdf", action="store_true", help="also keep the PDF and CSV next to the PNG")
    ap.add_argument("--residents", type=int, default=400)
    a = ap.parse_args()
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm (poppler-utils) is needed")

    from sqlalchemy import func, select, update

    from disclosure_bench import install

    import jukinet.security.oplog as OL
    from jukinet.audit.analysis import JST, closed_day
    from jukinet.audit.service import AuditService, previous_month
    from jukinet.provision.service import ProvideCommand
    from jukinet.search import service as S
    from jukinet.security.model import Refused
    from jukinet.security.oplog import Actor
    from jukinet.security.service import Security
    from jukinet.seed import populate
    from jukinet.store.tables import juki_current
    from jukinet.store.tables_security import operators

    OL.datetime = _Clock
    rnd = random.Random(8)
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="audit-sample-") as tmp:
        config, registers, prov = install(Path(tmp) / "data")      # shipped catalogue, no national fallback
        populate(registers, a.residents, 1)
        sec = Security(config, registers)
        with registers.juki_uow(write=False) as uow:
            people = uow.conn.execute(select(juki_current.c.juminhyo_code, juki_current.c.name,
                                             juki_current.c.name_kana)).all()
            top = uow.conn.execute(select(func.substr(juki_current.c.name, 1, 2).label("s"), func.count())
                                   .group_by("s").order_by(func.count().desc())).first()[0]
        boss = Actor("bootstrap", None)
        roster = [("OP0101", "伊藤　美咲", ["operator"], ["juki"], ["search", "provision"]),
                  ("OP0102", "田中　健一", ["operator"], ["juki"], ["search", "provision"]),
                  ("OP0103", f"{top}　誠", ["operator"], ["juki"], ["search"]),
                  ("OP0201", "中村　由紀", ["manager"], ["juki", "fuhyo"], [])]
        for oid, name, roles, regs, affairs in roster:
            sec.register_operator(boss, display_name=name, department="市町村課", roles=roles, registers=regs,
                                  affairs=affairs, operator_id=oid)
        with registers.admin_tx() as conn:
            conn.execute(update(operators).values(status="active"))
        ops = {oid: sec.get_operator(oid) for oid, *_ in roster}

        month = previous_month()
        d = month.first_day
        days = []
        while d <= month.last_day:
            days.append(d)
            d += timedelta(days=1)
        working = [d for d in days if closed_day(d) is None]

        def at(day: date, hh: int, mm: int) -> datetime:
            t = datetime.combine(day, time(hh, mm), JST)
            _Clock.current = t
            return t

        def lookup_and_provide(oid: str, day: date, hh: int, mm: int, provide: bool = True) -> None:
            code, name, kana = rnd.choice(people)
            actor = Actor(oid, "T0001")
            at(day, hh, mm)
            S.search(S.SearchCommand(purpose_code="provision", registers=("juki",), name=kana, name_match="exact"),
                     registers, sec.oplog, actor)
            at(day, hh, mm + 2)
            S.detail(S.DetailCommand(purpose_code="provision", register="juki", juminhyo_code=code), registers,
                     sec.oplog, actor)
            if provide:
                t = at(day, hh, mm + 5)
                prov.provide(ProvideCommand(requester_code="KOAN", affair_code="KOAN-UNTEN", juminhyo_code=code),
                             ops[oid], "T0001", now=t)

        for day in working:
            for oid in ("OP0101", "OP0102"):
                for k in range(rnd.randint(2, 5)):
                    lookup_and_provide(oid, day, 9 + 2 * k, rnd.randint(0, 40))
        # irregularities
        lookup_and_provide("OP0102", working[3], 21, 40)                              # (c) at night
        holiday = next((d for d in days if closed_day(d) not in (None, "土曜日", "日曜日")), None) or \
            next(d for d in days if closed_day(d))
        lookup_and_provide("OP0101", holiday, 10, 0)                                  # (c) on a closed day
        for k in range(3):
            lookup_and_provide("OP0103", working[5 + k], 14, 0, provide=False)        # (a) OP0103 has no 事務2
        victim = rnd.choice(people)
        for k in range(5):                                                            # (b) one person, 5 times
            at(working[8 + k], 15, 10)
            S.detail(S.DetailCommand(purpose_code="inquiry", register="juki", juminhyo_code=victim[0]), registers,
                     sec.oplog, Actor("OP0103", "T0001"))
        kin = next(p for p in people if p[1].startswith(top + "\u3000"))
        at(working[10], 11, 0)                                                        # (d) same surname
        S.detail(S.DetailCommand(purpose_code="inquiry", register="juki", juminhyo_code=kin[0]), registers,
                 sec.oplog, Actor("OP0103", "T0001"))
        for k in range(105):                                                          # (e) a heavy day
            code, _name, kana = people[k % len(people)]
            at(working[12], 9 + k // 20, (k * 3) % 60)
            S.search(S.SearchCommand(purpose_code="inquiry", registers=("juki",), name=kana), registers, sec.oplog,
                     Actor("OP0101", "T0001"))
        at(working[12], 17, 0)
        prov.provide(ProvideCommand(requester_code="KOAN", affair_code="KOAN-UNTEN", juminhyo_code=code),
                     ops["OP0101"], "T0001", now=_Clock.current)
        for k in range(2):                                                            # (f) out of scope
            at(working[14], 10, 30 + k)
            try:
                sec.require(ops["OP0102"], "T0001", "search", "search", register="fuhyo")
            except Refused:
                pass
        _Clock.current = None

        g = AuditService(config, registers).generate(Actor("OP0201", "T0001"), month)
        registers.dispose()
        pdf = Path(tmp) / "report.pdf"
        pdf.write_bytes(g.pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "90", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                        str(a.out / "monthly-report-sample")], check=True)
        if a.pdf:
            (a.out / "monthly-report-sample.pdf").write_bytes(g.pdf)
            (a.out / "monthly-report-sample.csv").write_bytes(g.csv)
        print(f"{a.out / 'monthly-report-sample.png'}: {month.key}, log {g.analysis.entries} entries, "
              f"flags {g.analysis.flag_counts()}, sha256 {g.pdf_sha256}")


if __name__ == "__main__":
    main()
