"""A full PostgreSQL disk during intake (U4, Q2; issue 17, ADR 0051 — ADR 0038 did SQLite's).

Made real: the installation's database lives in a tablespace on a small tmpfs
(:mod:`jukinet_small_disk`), and a filler file written as root fills that file system to the last
page. PostgreSQL then refuses every write that needs a new page with SQLSTATE 53100 ("could not
extend file … No space left on device") — checked here with a probe write, so the refusals below
are the disk's and nothing else's.

Checked over the real HTTPS server with mutual TLS, single and batch: the CS gets 503
``STORAGE_UNAVAILABLE`` (the code and Japanese message of :class:`StorageUnavailable`, with
``Retry-After``); nothing of a refused notification is on file; every notification acknowledged
before is in the register and in the outbox (U4); when space returns (the filler removed while the
CS waits to resend) the CS's next resend of the very same notification is accepted — not
``duplicate``: it was never applied — without restarting anything.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import text as sql

from jukinet.store.faults import RETRY_AFTER_SECONDS, StorageUnavailable
import jukinet_small_disk as disk
from jukinet_small_disk import admin_url_of, until_refused, write_refusal

from .helpers import TSU, jcode, tennyu

pytestmark = pytest.mark.xdist_group("postgres_full_disk")
backend, config, small_disk, drill_server = disk.backend, disk.config, disk.small_disk, disk.drill_server    # fixtures: PostgreSQL on the small disk


def on_file(registers) -> dict:
    """Everything intake writes in the juki register (a refused notification must change none of it)."""
    out = {}
    with registers.engine("juki").connect() as c:
        for t in ("juki_current", "juki_history", "intake_notifications", "outbox", "counters"):
            out[t] = sorted(map(repr, c.execute(sql(f"SELECT * FROM {t}")).all()))
    return out


def codes_in(registers, table: str) -> set:
    with registers.engine("juki").connect() as c:
        return {r[0] for r in c.execute(sql(f"SELECT juminhyo_code FROM {table}"))}


def post(cs, path: str, body):
    return cs.http.post(path, content=json.dumps(body, ensure_ascii=False).encode(),
                        headers={"content-type": "application/json"})


def assert_storage_unavailable(r) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": StorageUnavailable().as_dict()}          # the one coded refusal, in Japanese
    assert int(r.headers["retry-after"]) == RETRY_AFTER_SECONDS


def test_u4_q2_postgres_full_disk_intake_answers_503_loses_nothing_and_resumes(small_disk, installation, server,
                                                                              registers, cs):
    c = cs[TSU]
    first = [tennyu(jcode(700 + i)) for i in range(3)]
    assert [c.send(n)["status"] for n in first] == ["accepted"] * 3
    acknowledged = [n["juminhyo_code"] for n in first]

    small_disk.fill()
    state, message = write_refusal(admin_url_of(registers.engine("juki")))
    assert state == "53100" and "could not extend file" in message, (state, message)   # the disk refuses

    sent = []

    def send_next():
        n = tennyu(jcode(710 + len(sent)))
        sent.append(n)
        r = post(c, "/cs/v1/notifications", n)
        if r.status_code == 200:
            assert r.json()["status"] == "accepted", r.text
            acknowledged.append(n["juminhyo_code"])
        return r

    r, before = until_refused(lambda: on_file(registers), send_next)
    assert_storage_unavailable(r)
    refused = sent[-1]
    assert on_file(registers) == before                        # nothing of the refused one is on file
    batch = [tennyu(jcode(2000 + i)) for i in range(5)]
    assert_storage_unavailable(post(c, "/cs/v1/notifications:batch", {"notifications": batch}))
    assert on_file(registers) == before
    # U4: every acknowledged notification is in the register and waits in the outbox for the national server
    assert set(acknowledged) <= codes_in(registers, "juki_current")
    assert set(acknowledged) <= codes_in(registers, "outbox")

    # the CS resends the refused notification as Retry-After says; space returns while it waits
    c.retry_cap, c.retries_503 = 0.5, 40
    threading.Timer(1.2, small_disk.free).start()
    t0 = time.monotonic()
    a = c.send(refused)
    assert a["status"] == "accepted", a                        # not "duplicate": it was never applied
    assert c.retries >= 1 and time.monotonic() - t0 >= 1.0     # refused while full, accepted once space returned
    answers = c.send_batch(batch)
    assert [x["status"] for x in answers] == ["accepted"] * 5, answers
    everything = set(acknowledged) | {refused["juminhyo_code"]} | {n["juminhyo_code"] for n in batch}
    assert everything <= codes_in(registers, "juki_current")
    assert everything <= codes_in(registers, "outbox")
    assert write_refusal(admin_url_of(registers.engine("juki"))) == ("", "")   # the disk takes writes again
