"""The operator side on a read-only database (A4, Q2; issue 17, ADR 0038): the operation log fails
closed — a search whose log entry cannot be written shows nothing and answers 503
``STORAGE_UNAVAILABLE`` (coded JSON, Japanese, ``Retry-After``), not a 500 — and the same search
works again as soon as the database takes writes, without a restart.

Read-only made real: SQLite ``PRAGMA query_only`` on every pooled connection; PostgreSQL
``ALTER DATABASE … SET default_transaction_read_only = on`` with the sessions ended (a failover).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, event, text as sql
from sqlalchemy.engine import make_url

from jukinet_testing import PG_URL
from operator_site import site  # noqa: F401  (fixture)

pytestmark = pytest.mark.xdist_group("web_storage_faults")
SEARCH = {"purpose_code": "inquiry", "name": "ヤマダ", "name_match": "prefix", "case_ref": "c-1"}


class ReadOnly:
    def __init__(self, registers, backend):
        self.backend, self.on = backend, False
        self.engines = [registers.engine(r) for r in ("juki", "fuhyo", "admin")]
        if backend == "sqlite":
            for e in self.engines:
                event.listen(e, "checkout", self._apply)
        else:
            self.dbs = {e.url.database for e in self.engines}
            self.admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")

    def _apply(self, dbapi_conn, _record, _proxy):
        dbapi_conn.execute(f"PRAGMA query_only = {'ON' if self.on else 'OFF'}")

    def set(self, on: bool):
        self.on = on
        if self.backend == "sqlite":
            return
        with self.admin.connect() as c:
            for db in self.dbs:
                c.execute(sql(f'ALTER DATABASE "{db}" ' + ("SET default_transaction_read_only = on" if on
                                                           else "RESET default_transaction_read_only")))
                c.execute(sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": db})

    def close(self):
        self.set(False)
        if self.backend == "sqlite":
            for e in self.engines:
                event.remove(e, "checkout", self._apply)
        else:
            self.admin.dispose()


def test_a4_q2_search_on_a_read_only_database_fails_closed_with_503_and_resumes(site, backend):
    api = site.api("operator_both")
    ok = api.post("/api/v1/search", json=SEARCH)
    assert ok.status_code == 200 and ok.json()["total"] > 0, ok.text[:300]
    ro = ReadOnly(site.registers, backend)
    try:
        ro.set(True)
        r = api.post("/api/v1/search", json=SEARCH)
        assert r.status_code == 503, (r.status_code, r.text[:300])
        err = r.json()["error"]
        assert err["code"] == "STORAGE_UNAVAILABLE" and re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", err["message"])
        assert "total" not in r.json() and "山田" not in r.text and int(r.headers["retry-after"]) > 0
        ro.set(False)
        again = api.post("/api/v1/search", json=SEARCH)
        assert again.status_code == 200 and again.json()["total"] == ok.json()["total"]
    finally:
        ro.close()
