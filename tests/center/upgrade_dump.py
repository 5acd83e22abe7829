"""Run by tests/center/test_q1_center_upgrade.py in a subprocess, with ``PYTHONPATH`` at either the
previous release's ``src`` (extracted from git history) or today's: uses only what both releases have
(``bootstrap``, the repositories' ``get``/``history_of``, ``verify_all``, ``OPLOG``).

    python upgrade_dump.py DATA_DIR OUT.json [NOTIFICATIONS.json]

With NOTIFICATIONS.json, first does what an operator of that release did: the notifications of 津市's
CS through the release's own intake, and an operator registered (entries in its chains). Then writes
to OUT.json what an upgrade must keep: the rows of every table, every person's records (current and
history, the 個人番号 decrypted with the installation's keys), how many are stored encrypted and in clear,
and every operation-log entry (seq, hash, action) with each chain's verification.
"""

from __future__ import annotations

import dataclasses
import json
import sys


def _plain(v):
    if dataclasses.is_dataclass(v):
        return dataclasses.asdict(v)
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def _record(rec) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(rec), default=_plain, ensure_ascii=False))


def main(data_dir: str, out: str, notifications: str | None = None) -> None:
    from sqlalchemy import inspect, select, text

    from jukinet.bootstrap import bootstrap
    from jukinet.security.oplog import CHAINS, Actor, verify_all
    from jukinet.store.tables import fuhyo_current, fuhyo_history, juki_current, juki_history
    from jukinet.store.tables_security import OPLOG

    with bootstrap(data_dir) as inst:
        if notifications:
            from jukinet.intake.service import make_item
            from jukinet.pki.certs import PeerIdentity
            with open(notifications, encoding="utf-8") as f:
                items = json.load(f)
            answers = inst.intake_service().submit(PeerIdentity("cs", "242012"), [make_item(o) for o in items])
            assert all(a["status"] == "accepted" for a in answers), answers
            inst.security.register_operator(Actor("bootstrap", None), display_name="旧版 担当", roles=["operator"],
                                            registers=["juki"], affairs=["search"], operator_id="OP-PREVIOUS")
            for register in ("juki", "fuhyo"):     # a search of that release, in each register's own chain
                with inst.registers.uow(register) as uow:
                    inst.oplog.append(uow.conn, register, actor=Actor("OP-PREVIOUS", None), action="search",
                                      purpose_code="inquiry", keys={"name": "キュウハン"}, result_count=1)
        rows = {}
        for store in ("juki", "fuhyo", "admin"):
            with inst.registers.engine(store).connect() as conn:
                for table in sorted(inspect(conn).get_table_names()):
                    rows[f"{store}.{table}"] = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
        persons, clear, encrypted = {}, 0, 0
        for register, current, history in (("juki", juki_current, juki_history),
                                           ("fuhyo", fuhyo_current, fuhyo_history)):
            with inst.registers.uow(register, write=False) as uow:
                codes = set(uow.conn.execute(select(current.c.juminhyo_code)).scalars())
                codes |= set(uow.conn.execute(select(history.c.juminhyo_code)).scalars())
                persons[register] = {
                    code: {"current": _record(rec) if (rec := uow.repo.get(code)) is not None else None,
                           "history": [_record(h) for h in uow.repo.history_of(code)]}
                    for code in sorted(codes)}
                if register == "juki":      # at rest: ciphertext only, no column holds the number itself
                    for row in uow.conn.execute(select(juki_current)):
                        m = row._mapping
                        plain = (persons["juki"][m["juminhyo_code"]]["current"] or {}).get("kojin_bango")
                        if plain:
                            encrypted += int(m["kojin_bango_ct"] is not None)
                            clear += int(any(plain.encode() in (v if isinstance(v, bytes) else str(v).encode())
                                             for v in m.values() if v is not None))
        chains = {}
        for chain in CHAINS:
            log, _head = OPLOG[chain]
            with inst.registers.engine(chain).connect() as conn:
                chains[chain] = [[r.seq, r.entry_hash, r.action]
                                 for r in conn.execute(select(log.c.seq, log.c.entry_hash, log.c.action).order_by(log.c.seq))]
        reports = verify_all(inst.oplog, {c: inst.registers.engine(c) for c in CHAINS})
        verified = {r.chain: {"ok": r.ok, "head_seq": r.head_seq, "head_hash": r.head_hash,
                              "problems": [str(p) for p in r.problems]} for r in reports}
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "persons": persons, "kojin_bango_in_clear": clear,
                   "kojin_bango_encrypted": encrypted, "chains": chains,
                   "verified": verified}, f, ensure_ascii=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
