"""kill -9 in the middle of a notification stream, shared by the single server's test (U4, U5;
``tests/intake/test_faults.py``) and the center's (Q1; ``tests/center/test_q1_center_kill.py``).

Import it as ``from kill9 import KillLoop`` (a module with its own name, like ``jukinet_testing``).

* :class:`KillLoop` — the server process the test starts, a thread that kills it with SIGKILL after
  so many answers (at a random moment), the restart, and the shutdown at the end;
* :func:`send_until_answered` — the CS resends a chunk until it gets an answer (a lost connection or
  a 5xx: the server is restarted if it died, the clients reconnect);
* :func:`wait_drained`, :func:`assert_exactly_once`, :func:`assert_per_person_order` — what must hold
  afterwards in each register and at its national simulator.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from typing import Callable

import httpx
from sqlalchemy import func, select, text

from jukinet.outbox.worker import outbox_counts
from jukinet.store.tables_intake import INTAKE_TABLES


class KillLoop:
    """``spawn()`` starts the server process, ``wait_up()`` returns once it answers. :meth:`start` runs the
    killer: for each threshold (a number of answers, ``answered()``), after a random pause of up to
    ``max_pause`` s, SIGKILL — only a server that came up is killed."""

    def __init__(self, spawn: Callable[[], subprocess.Popen], wait_up: Callable[[], None], *,
                 rng: random.Random, max_pause: float, term_timeout: float):
        self.spawn, self.wait_up, self.rng = spawn, wait_up, rng
        self.max_pause, self.term_timeout = max_pause, term_timeout
        self.kills = 0
        self.lock, self.stopped, self.up = threading.Lock(), threading.Event(), threading.Event()
        self.procs = [spawn()]
        wait_up()
        self.up.set()

    def start(self, thresholds: list[int], answered: Callable[[], int]) -> None:
        threading.Thread(target=self._killer, args=(thresholds, answered), daemon=True).start()

    def _killer(self, thresholds: list[int], answered: Callable[[], int]) -> None:
        for threshold in thresholds:
            while answered() < threshold:          # kill after so many answers, at a random moment
                if self.stopped.wait(0.01):
                    return
            self.up.wait()                         # only a server that came up is killed
            if self.stopped.wait(self.rng.uniform(0.0, self.max_pause)):
                return
            with self.lock:
                p = self.procs[-1]
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
                    self.kills += 1
                    self.up.clear()

    def restart_if_dead(self) -> None:
        with self.lock:
            if self.procs[-1].poll() is not None:
                self.procs.append(self.spawn())
        self.wait_up()
        self.up.set()

    def stop(self) -> None:
        """No more kills (a kill under way is finished first)."""
        self.stopped.set()
        with self.lock:
            pass

    def shutdown(self) -> None:
        """Stop the killer and every process still running (SIGTERM, then SIGKILL)."""
        self.stopped.set()
        with self.lock:
            for p in self.procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(self.term_timeout)
                    except subprocess.TimeoutExpired:
                        p.kill()


def send_until_answered(loop: KillLoop, clients: dict, key, chunk: list, connect: Callable) -> list[dict]:
    """Send ``chunk`` with ``clients[key]`` (a :class:`~jukinet.sim.cs.CsClient`) until it is answered;
    on a lost connection or a 5xx every client is closed, the server restarted if it died and
    ``clients`` reconnected (``connect(key)``) in place. Returns the answers."""
    while True:
        try:
            c = clients[key]
            got = c.send_batch(chunk) if len(chunk) > 1 else [c.send(chunk[0])]
            if any((a["error"] or {}).get("code", "").startswith("HTTP_5") for a in got):
                raise httpx.TransportError("5xx")
            return got
        except httpx.HTTPError:
            for c in clients.values():
                c.close()
            loop.restart_if_dead()
            clients.update({k: connect(k) for k in list(clients)})


def wait_drained(registers, timeout: float = 120.0) -> None:
    """Until neither register's outbox has a pending entry (the restarted worker delivers what is left)."""
    deadline = time.time() + timeout
    while time.time() < deadline and (outbox_counts(registers, "juki").get("pending")
                                      or outbox_counts(registers, "fuhyo").get("pending")):
        time.sleep(0.2)


def assert_per_person_order(rows: list[dict]) -> None:
    """The national simulator got each person's changes in their order (none out of order)."""
    last: dict[str, int] = {}
    for m in rows:
        for code in filter(None, (m["juminhyo_code"], m.get("previous_juminhyo_code"))):
            assert last.get(code, 0) < m["update_seq"], "a later change overtook an earlier one"
        for code in filter(None, (m["juminhyo_code"], m.get("previous_juminhyo_code"))):
            last[code] = m["update_seq"]
        assert not m["out_of_order"]


def assert_exactly_once(registers, reg: str, store, where=()) -> list[int]:
    """Exactly once in register ``reg``: one idempotency row, one outbox row and one version per accepted
    notification, no gap in the 更新順番号 (nothing half-applied), all delivered, each received once by
    the national simulator ``store`` and in each person's order. ``where`` names the case in a failure.
    Returns the 更新順番号."""
    processed, outbox, _ = INTAKE_TABLES[reg]
    with registers.engine(reg).connect() as c:
        n_proc = c.execute(select(func.count()).select_from(processed)).scalar()
        seqs = [r[0] for r in c.execute(select(outbox.c.update_seq).order_by(outbox.c.update_seq))]
        counter = c.execute(text("SELECT value FROM counters WHERE name = 'update_seq'")).scalar()
        versions = c.execute(text(f"SELECT (SELECT count(*) FROM {reg}_current) + "
                                  f"(SELECT count(*) FROM {reg}_history)")).scalar()
    assert n_proc == len(seqs) == versions, where
    assert seqs == list(range(1, (counter or 0) + 1)), where
    assert outbox_counts(registers, reg) == ({"delivered": len(seqs)} if seqs else {}), where
    rows = store.dump()
    assert sorted(m["update_seq"] for m in rows) == seqs, where    # each reached the national sim once
    assert_per_person_order(rows)
    return seqs
