"""D3 (dates shown in 和暦), issue 19 (ADR 0042): every date and time an operator reads on the roster,
operation-log and operations screens is 和暦 in JST — no ISO date or UTC time left on them."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from jukinet.web import pages
from operator_site import site  # noqa: F401  (fixture)

ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


def test_d3_a_stored_instant_is_shown_in_wareki_on_the_day_in_japan():
    late = datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc)      # 08:30 on the 27th in Japan
    f = pages.templates.env.filters
    assert f["jst"](late) == "令和8年11月27日 08:30:00"
    assert f["jst"](late.replace(tzinfo=None)) == "令和8年11月27日 08:30:00"     # stored naive = UTC
    assert f["jst_day"](late) == "令和8年11月27日" and f["wareki_month"]("2019-05") == "令和元年5月"


def _visible(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)          # the text a person reads, not attributes


def test_d3_roster_oplog_and_ops_screens_show_no_iso_dates(site):
    for persona, path in (("admin", "/roster"), ("auditor", "/audit"), ("operations", "/ops"),
                          ("admin", "/roster/training")):
        r = site.client(persona).get(path)
        assert r.status_code == 200, path
        text = _visible(r.text)
        assert not ISO.search(text), (path, ISO.search(text).group(0))
        assert "令和" in text, path
