"""Issue 19 performance: p95 server time of every operator screen, beside the bare SQL that screen runs.

Usage: python bench/pages_bench.py [--db-url URL] [--data-dir DIR] [--residents N] [--samples K]

Seeds N residents (default 100,000; the seeder adds removed persons, history and the 附票) into a fresh
installation — SQLite files, or with ``--db-url`` a throwaway PostgreSQL database dropped at the end
(bench/engines.py) — or measures an installation given by ``--data-dir``. Operators of each role sign
in on one terminal (sessions made in-process); every screen is requested in-process (Starlette
TestClient, 127.0.0.1) K times: the whole server time of the request — session and terminal check,
authorization, the service, the operation-log entry (a write, hash-chained, on every logged screen),
the template — with the cookie an operator's browser sends.

The baseline is **the bare SQL of that same page**: every SELECT the page sent to the databases during
one request is captured (SQLAlchemy ``before_cursor_execute``: the statement and its bound
parameters, as the driver received them) and replayed with the bare driver (``sqlite3`` /
``psycopg``, autocommit) K times. Writes (the log entry, the session touch) are not replayed — they
cannot be repeated honestly (the hash chain) — so the ratio also contains the cost of logging.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, pct  # noqa: E402
from inprocess import main, signed_in, terminal, timed  # noqa: E402

from jukinet.store.tables import juki_current  # noqa: E402
from jukinet.web import auth as A  # noqa: E402
from jukinet.web.app import create_app  # noqa: E402

#: persona -> (roles, registers, affairs)
PERSONAS = {
    "gyomu": (["operator"], ["juki", "fuhyo"], ["search", "provision", "disclosure", "national"]),
    "manager": (["manager"], ["juki", "fuhyo"], []),
    "auditor": (["auditor"], [], []),
    "admin": (["admin"], [], []),
    "operations": (["operations"], [], []),
}


class Capture:
    """The SELECTs the application sends, per register database, while ``on``."""

    def __init__(self, registers):
        self.on, self.stmts = False, []
        for store in ("juki", "fuhyo", "admin"):
            event.listen(registers.engine(store), "before_cursor_execute", self._hook(store))

    def _hook(self, store):
        def hook(conn, cursor, statement, parameters, context, executemany):
            if self.on and not executemany and statement.lstrip()[:6].upper() in ("SELECT", "WITH R", "WITH "):
                self.stmts.append((store, statement, parameters))
        return hook

    def of(self, fn):
        self.stmts, self.on = [], True
        try:
            fn()
        finally:
            self.on = False
        return list(self.stmts)


def run(inst, k: int, version: str) -> None:
    registers = inst.registers
    app = create_app(inst)
    sec = app.state.security
    tid, secret = terminal(sec)
    clients = {}
    run_id = secrets.token_hex(2).upper()       # a second run on the same --data-dir makes new operators
    for persona, (roles, regs, affairs) in PERSONAS.items():
        res = signed_in(sec, registers, tid, f"BENCH-{persona.upper()}-{run_id}", roles=roles, registers_in_scope=regs,
                        affairs=affairs, display_name=f"bench {persona}")
        c = TestClient(app, base_url="http://localhost:8700", client=("127.0.0.1", 40000), follow_redirects=False)
        c.cookies.set(A.TERMINAL_COOKIE, f"{tid}.{secret}")
        c.cookies.set(A.SESSION_COOKIE, res.token)
        clients[persona] = (c, sec.session_info(res.token).csrf_token)

    # a real person to look for: a current resident in the middle of the register
    with registers.juki_uow(write=False) as uow:
        jcode = uow.conn.execute(select(juki_current.c.juminhyo_code).where(juki_current.c.deleted.is_(False))
                                 .order_by(juki_current.c.update_seq).offset(1000).limit(1)).scalar_one()
        person = uow.repo.get(jcode)
    g, gcsrf = clients["gyomu"]
    search_form = {"csrf_token": gcsrf, "purpose_code": "inquiry", "registers": "juki", "name": person.name,
                   "name_match": "exact", "birth_from": person.birth_date.isoformat(), "birth_to": "", "sex": "",
                   "address": "", "case_ref": ""}
    assert g.post("/search", data=search_form).status_code in (200, 303)
    detail_form = {"csrf_token": gcsrf, "purpose_code": "inquiry", "register": "juki", "juminhyo_code": jcode,
                   "case_ref": ""}
    loc = g.post("/detail", data=detail_form).headers["location"]

    screens = [  # (screen, persona, method, url, form)
        ("検索 (画面)", "gyomu", "GET", "/search", None),
        ("詳細 (再表示; 16件まで保持)", "gyomu", "GET", loc, None),
        ("検索の実行 (4情報・ログ記録)", "gyomu", "POST", "/search", search_form),
        ("検索結果", "gyomu", "GET", "/search/results?page=1", None),
        ("詳細の表示 (ログ記録)", "gyomu", "POST", "/detail", detail_form),
        ("提供・移転 (1件)", "gyomu", "GET", "/provision", None),
        ("一括提供", "gyomu", "GET", "/provision/batch", None),
        ("媒体 (提供)", "gyomu", "GET", "/provision/media", None),
        ("全国サーバへの照会", "gyomu", "GET", "/query/national", None),
        ("開示 (受付・交付)", "gyomu", "GET", "/disclosure", None),
        ("帳票管理簿", "gyomu", "GET", "/disclosure/forms", None),
        ("訂正等の申出", "gyomu", "GET", "/disclosure/corrections", None),
        ("問合せ記録", "gyomu", "GET", "/disclosure/inquiries", None),
        ("メニュー", "gyomu", "GET", "/", None),
        ("操作ログ (監査)", "auditor", "GET", "/audit", None),
        ("操作ログ月次分析", "manager", "GET", "/audit/reports", None),
        ("事前承認", "manager", "GET", "/provision/approvals", None),
        ("提供記録", "manager", "GET", "/provision/records", None),
        ("操作者の棚卸し", "admin", "GET", "/roster/inventory", None),
        ("統計", "manager", "GET", "/stats", None),
        ("事故の記録", "manager", "GET", "/incidents", None),
        ("操作者・端末 (名簿)", "admin", "GET", "/roster", None),
        ("研修の記録", "admin", "GET", "/roster/training", None),
        ("提供先・事務カタログ", "admin", "GET", "/provision/catalogue", None),
        ("媒体管理簿", "operations", "GET", "/media", None),
        ("運用状況", "operations", "GET", "/ops", None),
    ]
    cap = Capture(registers)
    bare = {s: Bare.of(registers, s) for s in ("juki", "fuhyo", "admin")}
    results = []
    for name, persona, method, url, form in screens:
        c, _ = clients[persona]

        def call(c=c, method=method, url=url, form=form):
            r = c.post(url, data=form) if method == "POST" else c.get(url)
            if r.status_code not in (200, 303):
                raise SystemExit(f"{method} {url}: {r.status_code} {r.text[:300]}")
        call()                                   # warm (templates compiled, caches filled)
        stmts = cap.of(call)

        def replay(stmts=stmts):
            for store, sql, params in stmts:
                b = bare[store]
                b.conn.execute(sql, params).fetchall()
        replay()
        page = timed(call, k)
        base = timed(replay, k)
        results.append((name, method, url.split("?")[0] if not url.startswith("/detail/view") else "/detail/view/…",
                        page, base, len(stmts)))
        print(f"  {name}: p95 {pct(page, 95):.1f} ms", file=sys.stderr)
    for b in bare.values():
        b.conn.close()
    with registers.juki_uow(write=False) as uow:
        current = uow.conn.execute(select(func.count()).select_from(juki_current)).scalar_one()
    print(f"\n{version}; juki_current rows {current:,}; load average {os.getloadavg()[0]:.2f}; K = {k}\n")
    print("| 画面 | request | page p50 / p95 | bare SQL p50 / p95 (SELECTs) | ratio (p95) |")
    print("|---|---|---:|---:|---:|")
    worst = 0.0
    for name, method, url, page, base, n in results:
        p95 = pct(page, 95)
        worst = max(worst, p95)
        print(f"| {name} | {method} {url} | {pct(page, 50):.1f} / {p95:.1f} ms | {pct(base, 50):.2f} / "
              f"{pct(base, 95):.2f} ms ({n}) | {p95 / max(pct(base, 95), 1e-3):.1f}× |")
    print(f"\nworst p95: {worst:.1f} ms (goal ≤ 100 ms); {'OK' if worst <= 100 else 'OVER'}")


if __name__ == "__main__":
    main(run, prefix="jukinet-pages-bench-", residents=100_000, samples=60)
