"""O4/O5 where the auditor looks: the monthly report (操作ログ月次分析報告書, A4) carries a section on
利用停止請求 past their legal deadline and 通報 the municipality's CS never acknowledged, with their
numbers (office references only, no resident data), as they stood at the end of the month."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from pypdf import PdfReader
from sqlalchemy import update

from jukinet.audit.service import AuditService, parse_month
from jukinet.store.tables_disclosure import MUNICIPAL_REPORTS, SUSPENSION_REQUESTS, SUSPENSION_STEPS

from .conftest import KATSURAGI, KATSURAGI_NAME, OP
from .test_disclosure import intake


def test_o4_o5_monthly_report_shows_overdue_requests_and_unacknowledged_reports(world):
    # two requests: one decided in time, one left open past its deadline; one 通報 never acknowledged
    for no in ("M-1", "M-2"):
        intake(world, no)
        world.svc.disclosure_form("juki", no, OP, "T0001")
    late = world.svc.open_suspension("juki", "M-1", "stop_use", "outside_purpose", "目的外利用", OP, "T0001")
    done = world.svc.open_suspension("juki", "M-2", "stop_use", "outside_purpose", "目的外利用", OP, "T0001")
    world.svc.step_suspension("juki", late, "investigating", OP, "T0001")
    rid = world.svc.report_suspension_finding("juki", late, "242080", "correct", ["address"], OP, "T0001")
    world.svc.step_suspension("juki", done, "investigating", OP, "T0001")
    world.svc.decide_suspension("juki", done, "not_suspend", "no_violation", OP, "T0001")

    # move it back: received 25 Sep 2026 (due 25 Oct), the decided one decided 4 Oct, the 通報 made 3 Oct
    sep25 = datetime(2026, 9, 25, 1, 0, tzinfo=timezone.utc)
    oct1 = datetime(2026, 10, 1, 1, 0, tzinfo=timezone.utc)
    st, mr, sp = SUSPENSION_REQUESTS["juki"], MUNICIPAL_REPORTS["juki"], SUSPENSION_STEPS["juki"]
    with world.registers.engine("juki").begin() as conn:
        conn.execute(update(st).values(received_at=sep25, due_date=(sep25 + timedelta(days=30)).date()))
        conn.execute(update(st).where(st.c.suspension_id == done).values(decided_at=oct1 + timedelta(days=3)))
        conn.execute(update(sp).values(at=sep25))
        conn.execute(update(mr).values(created_at=oct1 + timedelta(days=2)))

    svc = AuditService(world.config, world.registers)
    month = parse_month("2026-10", today=datetime(2026, 12, 7).date())
    _a, _names, pdf, csv_bytes = svc.render(month, now=datetime(2026, 12, 7, tzinfo=timezone.utc))
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).replace("\n", "")
    assert "5. 利用停止請求・市町村への通報" in text and "要確認 2 件" in text
    assert late in text and rid in text and done not in text
    assert "本人確認情報 0 1 0 1" in text                      # received 0, decided 1, extended 0, overdue 1
    assert "令和8年10月25日" in text                           # the deadline that passed
    assert KATSURAGI not in text and "目的外利用" not in text and KATSURAGI_NAME not in text
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))))
    assert any(r[0] == "期限超過" and late in r[-1] for r in rows)
    assert any(r[0] == "通報未確認" and rid in r[-1] for r in rows)

    # the month after: nothing received, but both still count (deadline passed, not acknowledged)
    nov = svc.render(parse_month("2026-11", today=datetime(2026, 12, 7).date()),
                     now=datetime(2026, 12, 7, tzinfo=timezone.utc))[2]
    ntext = "".join(p.extract_text() for p in PdfReader(io.BytesIO(nov)).pages).replace("\n", "")
    assert late in ntext and rid in ntext
    # a report rendered twice for a closed month has the same bytes (the signed SHA-256 holds)
    assert svc.render(month, now=datetime(2026, 12, 8, tzinfo=timezone.utc))[2] == pdf
