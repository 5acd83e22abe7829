"""Security training records (G1; ADR 0034): who attended which course when, and the gate that keeps an
untrained operator from being activated or signing in (the bootstrap administrator's grace included)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.security import roles as R
from jukinet.security import training as TR
from jukinet.security.base import _ID, SecurityBase, now_utc
from jukinet.security.model import FORBIDDEN, Operator, refused, utc
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import operator_trainings, operators


class TrainingRecords(SecurityBase):
    def _grace_until(self, row) -> Optional[datetime]:
        """End of the bootstrap administrator's grace, for the account registered by ``bootstrap``."""
        if row is None or row.created_by != "bootstrap" or "admin" not in R.split(row.roles):
            return None
        return utc(row.created_at) + timedelta(days=self.cfg.bootstrap_training_grace_days)

    def _trained(self, conn: Connection, operator_id: str, now: datetime) -> bool:
        """May this operator be activated / sign in now: a record of the current 年度 (or the grace)."""
        if not self.cfg.training_required:
            return True
        fy = TR.fiscal_year(TR.today_jst(now))
        if conn.execute(select(operator_trainings.c.training_id).where(
                operator_trainings.c.operator_id == operator_id, operator_trainings.c.fiscal_year == fy)
                .limit(1)).first() is not None:
            return True
        row = conn.execute(select(operators.c.created_by, operators.c.created_at, operators.c.roles)
                           .where(operators.c.operator_id == operator_id)).first()
        until = self._grace_until(row)
        return until is not None and now < until

    def _require_trained(self, operator_id: str, terminal_id: str | None, action: str, now: datetime) -> None:
        with self.registers.admin_tx(write=False) as conn:
            ok = self._trained(conn, operator_id, now)
        if not ok:
            raise self.refuse(Actor(operator_id, terminal_id), action, TR.TRAINING_REQUIRED)

    def record_training(self, actor: Actor, operator_id: str, *, course: str, taken_on, by: Operator | None = None,
                        now: datetime | None = None) -> int:
        """Record that ``operator_id`` attended ``course`` on ``taken_on`` (G1). ``by``: the recording
        operator (web: always; CLI: when ``--by`` is given), who must hold the ``training`` permission.
        Every refusal is coded, changes nothing and is logged."""
        now = now or now_utc()
        target = operator_id if _ID.match(operator_id or "") else None
        try:
            if by is not None and not by.can("training"):
                raise refused(FORBIDDEN)
            course = TR.check_course(course)
            day = TR.parse_taken_on(taken_on, today=TR.today_jst(now))
            with self.registers.admin_tx() as conn:
                op = self._operator(conn, target) if target else None
                if op is None or op.status == "removed":
                    raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。", field="operator_id")
                fy = TR.fiscal_year(day)
                tid = conn.execute(insert(operator_trainings).values(
                    operator_id=op.operator_id, course=course, taken_on=day, fiscal_year=fy, recorded_at=now,
                    recorded_by=actor.operator_id or "cli")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="training_record", now=now,
                                  detail={"target": op.operator_id, "training_id": tid, "fiscal_year": fy,
                                          "taken_on": day.isoformat(), "course": course})
                return tid
        except JukinetError as e:
            self.log_refusal(actor, "training_record", e, detail={"target": target})
            raise

    def trainings(self, operator_id: str | None = None) -> list:
        """Training records, newest first (all operators, or one)."""
        t = operator_trainings
        q = select(t).order_by(t.c.taken_on.desc(), t.c.training_id.desc())
        if operator_id:
            q = q.where(t.c.operator_id == operator_id)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def training_status(self, now: datetime | None = None) -> dict[str, dict]:
        """Per operator: the current 年度, whether trained in it, the latest record, the grace if any."""
        now = now or now_utc()
        fy = TR.fiscal_year(TR.today_jst(now))
        t = operator_trainings
        with self.registers.admin_tx(write=False) as conn:
            rows = conn.execute(select(operators.c.operator_id, operators.c.created_by, operators.c.created_at,
                                       operators.c.roles)).all()
            recs = conn.execute(select(t).order_by(t.c.taken_on, t.c.training_id)).all()
        latest: dict = {}
        current: set = set()
        for r in recs:
            latest[r.operator_id] = r
            if r.fiscal_year == fy:
                current.add(r.operator_id)
        out = {}
        for r in rows:
            until = self._grace_until(r)
            grace = until if (r.operator_id not in current and until is not None and now < until) else None
            out[r.operator_id] = {"fiscal_year": fy, "fy_label": TR.fiscal_year_label(fy),
                                  "trained": r.operator_id in current, "latest": latest.get(r.operator_id),
                                  "grace_until": grace}
        return out

