"""A full disk and a read-only database during intake (U4, Q2; issue 17, ADR 0038).

Made real, not mocked:

* SQLite, **full**: ``PRAGMA max_page_count`` pinned to the database's current size on every
  connection the pool hands out — the database cannot grow, exactly what a full file system does
  to it (``SQLITE_FULL``, "database or disk is full").
* SQLite, **read-only**: ``PRAGMA query_only`` on every connection (``SQLITE_READONLY``).
* PostgreSQL, **read-only**: ``ALTER DATABASE … SET default_transaction_read_only = on`` and the
  database's sessions terminated — what a failover to a standby does; the pool reconnects (pre-ping)
  into read-only sessions (SQLSTATE 25006). Undone the same way.

Checked, over the real HTTPS server with mutual TLS: the CS gets 503 ``STORAGE_UNAVAILABLE`` with
a Japanese message and ``Retry-After``; nothing of a refused notification is on file; everything
acknowledged before is still on file (U4); when the storage takes writes again the very same
notification is accepted without restarting anything; the CS simulator retries a 503 by itself.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from sqlalchemy import create_engine, event, text as sql
from sqlalchemy.engine import make_url

from jukinet_testing import PG_URL

from .helpers import TSU, jcode, tennyu

pytestmark = pytest.mark.xdist_group("intake_storage_faults")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
SQLITE_DEFAULT_MAX_PAGES = 4294967294


class SqliteFault:
    """Pins every pooled connection of the register databases to ``mode`` (None: healthy)."""

    def __init__(self, registers, mode: str):
        self.engines = [registers.engine(r) for r in ("juki", "fuhyo")]
        self.mode, self.on = mode, False
        for e in self.engines:
            event.listen(e, "checkout", self._apply)

    def _apply(self, dbapi_conn, _record, _proxy):
        cur = dbapi_conn.cursor()
        if self.on and self.mode == "full":
            pages = cur.execute("PRAGMA page_count").fetchone()[0]
            cur.execute(f"PRAGMA max_page_count = {pages}")
        else:
            cur.execute(f"PRAGMA max_page_count = {SQLITE_DEFAULT_MAX_PAGES}")
        cur.execute(f"PRAGMA query_only = {'ON' if self.on and self.mode == 'read_only' else 'OFF'}")
        cur.close()

    def start(self):
        self.on = True

    def stop(self):
        self.on = False

    def close(self):
        for e in self.engines:
            event.remove(e, "checkout", self._apply)


class PostgresReadOnly:
    """The register database made read-only for every (new) session, its open sessions ended."""

    def __init__(self, registers):
        self.db = registers.engine("juki").url.database
        self.admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")

    def _set(self, on: bool):
        with self.admin.connect() as c:
            c.execute(sql(f'ALTER DATABASE "{self.db}" ' + ("SET default_transaction_read_only = on" if on
                                                            else "RESET default_transaction_read_only")))
            c.execute(sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": self.db})

    def start(self):
        self._set(True)

    def stop(self):
        self._set(False)

    def close(self):
        self.admin.dispose()


#: (engine, fault): what can be made honestly here — PostgreSQL's full disk would need a small file
#: system for a tablespace (root and a mount CI does not have): see ADR 0038
CASES = [("sqlite", "full"), ("sqlite", "read_only")] + ([("postgres", "read_only")] if PG_URL else [])


@pytest.fixture(params=CASES, ids=[f"{b}-{m}" for b, m in CASES])
def case(request):
    return request.param


@pytest.fixture
def backend(case) -> str:
    """This module's engines come with their faults (overrides the conftest's ``backend``)."""
    return case[0]


@pytest.fixture
def fault(case, registers):
    engine, mode = case
    f = SqliteFault(registers, mode) if engine == "sqlite" else PostgresReadOnly(registers)
    yield f
    f.stop()
    f.close()


def on_file(registers) -> dict:
    out = {}
    with registers.engine("juki").connect() as c:
        for t in ("juki_current", "juki_history"):
            out[t] = sorted(map(repr, c.execute(sql(f"SELECT * FROM {t}")).all()))
    return out


def codes_on_file(registers) -> set:
    with registers.engine("juki").connect() as c:
        return {r[0] for r in c.execute(sql("SELECT juminhyo_code FROM juki_current"))}


def post(cs, path: str, body) -> "httpx.Response":  # noqa: F821
    return cs.http.post(path, content=json.dumps(body, ensure_ascii=False).encode(),
                        headers={"content-type": "application/json"})


def assert_storage_unavailable(r) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == "STORAGE_UNAVAILABLE" and _JAPANESE.search(err["message"])
    assert int(r.headers["retry-after"]) > 0


def test_u4_q2_full_or_read_only_storage_answers_503_loses_nothing_and_resumes(installation, server, registers, cs,
                                                                              fault):
    c = cs[TSU]
    acknowledged = []
    for i in range(3):
        n = tennyu(jcode(700 + i))
        assert c.send(n)["status"] == "accepted"
        acknowledged.append(n["juminhyo_code"])

    fault.start()
    before = on_file(registers)
    refused = None
    for i in range(300):   # a full database still takes rows while its last pages have room
        n = tennyu(jcode(710 + i))
        r = post(c, "/cs/v1/notifications", n)
        if r.status_code == 200:
            acknowledged.append(n["juminhyo_code"])
            before = on_file(registers)
            continue
        assert_storage_unavailable(r)
        refused = n
        break
    assert refused is not None, "the storage never refused a write"
    assert on_file(registers) == before                        # nothing of the refused one is on file
    batch = [tennyu(jcode(1000 + i)) for i in range(5)]
    assert_storage_unavailable(post(c, "/cs/v1/notifications:batch", {"notifications": batch}))
    assert on_file(registers) == before

    fault.stop()                                               # space returns: nothing restarted
    a = c.send(refused)
    assert a["status"] == "accepted", a                        # not "duplicate": it was never applied
    answers = c.send_batch(batch)
    assert [x["status"] for x in answers] == ["accepted"] * 5, answers
    assert set(acknowledged) | {refused["juminhyo_code"]} | {n["juminhyo_code"] for n in batch} \
        <= codes_on_file(registers)                            # U4: every acknowledged update is on file


def test_u4_q2_the_cs_simulator_retries_a_503_until_the_storage_returns(installation, server, registers, cs, fault):
    c = cs[TSU]
    c.retry_cap = 0.5
    fault.start()
    n = tennyu(jcode(800))
    if isinstance(fault, SqliteFault) and fault.mode == "full":
        # fill what room is left, so that the next write needs a new page
        for i in range(300):
            if post(c, "/cs/v1/notifications", tennyu(jcode(810 + i))).status_code != 200:
                break
    threading.Timer(1.2, fault.stop).start()
    t0 = time.monotonic()
    a = c.send(n)
    assert a["status"] == "accepted", a
    assert time.monotonic() - t0 >= 0.4                       # it was refused at least once, then retried
    assert n["juminhyo_code"] in codes_on_file(registers)
