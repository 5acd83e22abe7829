"""The incident register (事故発生時手順, G4; PIA III.7 R1⑧ 「事故発生時手順の策定・周知」; ADR 0041).

An incident (事故) — a leak, a lost medium, an intrusion, an improper operation, an outage — is
**opened** with what happened and when (発生日時, 発見日時); each **step** taken (初動対応, 調査,
是正) and each **notification** (報告・連絡: to whom and which body — 管理責任者, 市町村, 機構,
個人情報保護委員会, 本人 …) is recorded with its time; a 管理責任者 **closes** it with the cause
and the measures against recurrence (原因・再発防止策). Every action is in the operation log
(``incident_*``), and the incident is **linked to the operation-log entries involved** (chain +
seq): the log screen shows the incident next to the entry, the incident shows its entries.

Refusals, coded and logged, nothing changed: a date in the future (``INCIDENT_DATE_FUTURE``), an
unknown incident (``INCIDENT_NOT_FOUND``) or log entry (``OPLOG_ENTRY_NOT_FOUND``), a step on a
closed incident (``INCIDENT_CLOSED``), closing by someone who is not a 管理責任者
(``APPROVAL_NOT_MANAGER``) or before any notification was recorded (``INCIDENT_NOT_NOTIFIED``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import func, insert, select, update

from jukinet.audit import records as RC
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.security.model import Operator, utc
from jukinet.security.oplog import CHAINS, Actor, OperationLog
from jukinet.security.oplog import entry as oplog_entry
from jukinet.store.tables_governance import incident_events, incident_links, incidents

CATEGORIES = {"leak": "漏えい・滅失・毀損", "loss": "媒体・帳票の紛失", "intrusion": "不正アクセス",
              "misuse": "目的外利用・不適切な操作", "outage": "システム障害", "other": "その他"}
SEVERITIES = {"minor": "軽微", "serious": "重大"}
#: to whom an incident is reported (報告・連絡先)
PARTIES = {"manager": "管理責任者", "ciso": "セキュリティ統括責任者", "municipality": "市町村",
           "jlis": "地方公共団体情報システム機構", "ppc": "個人情報保護委員会", "person": "本人",
           "police": "警察", "contractor": "委託先", "other": "その他"}
EVENT_KINDS = {"open": "事故の登録", "step": "対応", "notify": "報告・連絡", "close": "終結"}
STATUSES = {"open": "対応中", "closed": "終結"}


@dataclass
class IncidentView:
    row: object
    events: list = field(default_factory=list)
    links: list = field(default_factory=list)

    @property
    def no(self) -> str:
        return self.row.incident_no

    @property
    def notified(self) -> list:
        return [e for e in self.events if e.kind == "notify"]


class IncidentService:
    def __init__(self, config: Config, registers):
        self.config = config
        self.registers = registers
        self.oplog = OperationLog(KeyRing(config.data_dir), config.data_dir)

    # ---- helpers ---------------------------------------------------------------------------------

    def _incident(self, conn, incident_no: str):
        row = conn.execute(select(incidents).where(incidents.c.incident_no == str(incident_no or "").strip())).first()
        if row is None:
            raise JukinetError("INCIDENT_NOT_FOUND", "その事故番号は登録されていません。", field="incident_no")
        return row

    def _open_incident(self, conn, incident_no: str):
        row = self._incident(conn, incident_no)
        if row.status == "closed":
            raise JukinetError("INCIDENT_CLOSED", "この事故は終結しています。記録を追加できません。", field="incident_no")
        return row

    def _event(self, conn, row, kind: str, at: datetime, text: str, actor: Actor, now: datetime,
               party: str | None = None, party_name: str | None = None) -> int:
        return conn.execute(insert(incident_events).values(
            incident_id=row.incident_id, kind=kind, at=at, party=party, party_name=party_name, text=text,
            recorded_at=now, recorded_by=actor.operator_id or "cli")).inserted_primary_key[0]

    def _run(self, actor: Actor, action: str, by: Optional[Operator], permission: str, work, detail=None):
        try:
            RC.require_permission(by, permission)
            return work()
        except JukinetError as e:
            RC.log_refusal(self.registers, self.oplog, actor, action, e, detail)
            raise

    # ---- use cases -------------------------------------------------------------------------------

    def open(self, actor: Actor, *, title: str, category: str, severity: str, occurred_at, discovered_at,
             summary: str, by: Optional[Operator] = None, now: datetime | None = None) -> str:
        """Open an incident; returns its number (INC-YYYY-NNNN)."""
        now = now or datetime.now(timezone.utc)

        def work():
            t = RC.check_text(title, code="INCIDENT_TITLE", label="件名", field="title", max_len=100)
            cat = RC.check_choice(category, CATEGORIES, code="INCIDENT_CATEGORY", label="事故の区分", field="category")
            sev = RC.check_choice(severity, SEVERITIES, code="INCIDENT_SEVERITY", label="重大度", field="severity")
            occ = RC.parse_moment(occurred_at, code="INCIDENT", label="発生日時", now=now, field="occurred_at")
            dis = RC.parse_moment(discovered_at, code="INCIDENT", label="発見日時", now=now, field="discovered_at")
            if dis < occ:
                raise JukinetError("INCIDENT_DATE_ORDER", "発見日時は発生日時より後にしてください。", field="discovered_at")
            text = RC.check_text(summary, code="INCIDENT_SUMMARY", label="概要", field="summary")
            with self.registers.admin_tx() as conn:
                year = RC.today_jst(now).year
                n = conn.execute(select(func.count()).select_from(incidents)
                                 .where(incidents.c.incident_no.like(f"INC-{year}-%"))).scalar_one()
                no = f"INC-{year}-{n + 1:04d}"
                iid = conn.execute(insert(incidents).values(
                    incident_no=no, title=t, category=cat, severity=sev, occurred_at=occ, discovered_at=dis,
                    summary=text, status="open", opened_at=now, opened_by=actor.operator_id or "cli")
                ).inserted_primary_key[0]
                row = conn.execute(select(incidents).where(incidents.c.incident_id == iid)).one()
                self._event(conn, row, "open", dis, text, actor, now)
                self.oplog.append(conn, "admin", actor=actor, action="incident_open", now=now,
                                  detail={"incident_no": no, "category": cat, "severity": sev})
                return no
        return self._run(actor, "incident_open", by, "incident", work)

    def add_step(self, actor: Actor, incident_no: str, *, at, text: str, by: Optional[Operator] = None,
                 now: datetime | None = None) -> int:
        """Record a step taken (初動対応, 調査, 是正 …)."""
        now = now or datetime.now(timezone.utc)

        def work():
            when = RC.parse_moment(at, code="INCIDENT", label="対応日時", now=now)
            body = RC.check_text(text, code="INCIDENT_STEP", label="対応の内容", field="text")
            with self.registers.admin_tx() as conn:
                row = self._open_incident(conn, incident_no)
                eid = self._event(conn, row, "step", when, body, actor, now)
                self.oplog.append(conn, "admin", actor=actor, action="incident_step", now=now,
                                  detail={"incident_no": row.incident_no, "event_id": eid})
                return eid
        return self._run(actor, "incident_step", by, "incident", work, {"incident_no": str(incident_no)[:20]})

    def notify(self, actor: Actor, incident_no: str, *, party: str, party_name: str, at, text: str = "",
               by: Optional[Operator] = None, now: datetime | None = None) -> int:
        """Record a notification (報告・連絡): the body (``party``), the person or office, when, what."""
        now = now or datetime.now(timezone.utc)

        def work():
            p = RC.check_choice(party, PARTIES, code="INCIDENT_PARTY", label="報告・連絡先", field="party")
            name = RC.check_text(party_name, code="INCIDENT_PARTY_NAME", label="報告・連絡先の担当者・部署",
                                 field="party_name", max_len=100)
            when = RC.parse_moment(at, code="INCIDENT", label="報告日時", now=now)
            body = RC.check_text(text, code="INCIDENT_NOTE", label="報告の内容", field="text", required=False)
            with self.registers.admin_tx() as conn:
                row = self._open_incident(conn, incident_no)
                eid = self._event(conn, row, "notify", when, body, actor, now, party=p, party_name=name)
                self.oplog.append(conn, "admin", actor=actor, action="incident_notify", now=now,
                                  detail={"incident_no": row.incident_no, "event_id": eid, "party": p})
                return eid
        return self._run(actor, "incident_notify", by, "incident", work, {"incident_no": str(incident_no)[:20]})

    def link(self, actor: Actor, incident_no: str, chain: str, seq, *, by: Optional[Operator] = None,
             now: datetime | None = None) -> int:
        """Tie the incident to an operation-log entry involved (chain + seq)."""
        now = now or datetime.now(timezone.utc)

        def work():
            if chain not in CHAINS:
                raise JukinetError("OPLOG_CHAIN_INVALID", "操作ログの系列を選択してください。", field="chain")
            try:
                n = int(str(seq).strip())
            except ValueError:
                raise JukinetError("OPLOG_SEQ_INVALID", "操作ログの番号 (seq) は数字で入力してください。",
                                   field="seq") from None
            with self.registers.engine(chain).connect() as c:
                if n < 1 or oplog_entry(c, chain, n) is None:
                    raise JukinetError("OPLOG_ENTRY_NOT_FOUND", "その操作ログの項目はありません。", field="seq")
            with self.registers.admin_tx() as conn:
                row = self._open_incident(conn, incident_no)
                if conn.execute(select(incident_links.c.link_id).where(
                        incident_links.c.incident_id == row.incident_id, incident_links.c.chain == chain,
                        incident_links.c.seq == n)).first() is not None:
                    raise JukinetError("INCIDENT_LINK_EXISTS", "その操作ログの項目は既に関連付けられています。", field="seq")
                lid = conn.execute(insert(incident_links).values(
                    incident_id=row.incident_id, chain=chain, seq=n, recorded_at=now,
                    recorded_by=actor.operator_id or "cli")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="incident_link", now=now,
                                  detail={"incident_no": row.incident_no, "chain": chain, "seq": n})
                return lid
        return self._run(actor, "incident_link", by, "incident", work, {"incident_no": str(incident_no)[:20]})

    def close(self, actor: Actor, incident_no: str, *, at, cause: str, prevention: str, by: Optional[Operator],
              now: datetime | None = None) -> None:
        """Close the incident (管理責任者 only) with its cause and the measures against recurrence."""
        now = now or datetime.now(timezone.utc)

        def work():
            RC.require_manager(by)
            when = RC.parse_moment(at, code="INCIDENT", label="終結日時", now=now)
            c = RC.check_text(cause, code="INCIDENT_CAUSE", label="原因", field="cause")
            p = RC.check_text(prevention, code="INCIDENT_PREVENTION", label="再発防止策", field="prevention")
            with self.registers.admin_tx() as conn:
                row = self._open_incident(conn, incident_no)
                if conn.execute(select(func.count()).select_from(incident_events).where(
                        incident_events.c.incident_id == row.incident_id,
                        incident_events.c.kind == "notify")).scalar_one() == 0:
                    raise JukinetError("INCIDENT_NOT_NOTIFIED",
                                       "報告・連絡の記録がないため終結できません。報告先と日時を先に記録してください。")
                self._event(conn, row, "close", when, f"原因: {c}\n再発防止策: {p}", actor, now)
                conn.execute(update(incidents).where(incidents.c.incident_id == row.incident_id).values(
                    status="closed", closed_at=when, closed_by=by.operator_id, cause=c, prevention=p))
                self.oplog.append(conn, "admin", actor=actor, action="incident_close", now=now,
                                  detail={"incident_no": row.incident_no})
        return self._run(actor, "incident_close", by, "incident", work, {"incident_no": str(incident_no)[:20]})

    # ---- reading ---------------------------------------------------------------------------------

    def list(self, *, status: str | None = None) -> list:
        q = select(incidents).order_by(incidents.c.opened_at.desc(), incidents.c.incident_id.desc())
        if status:
            q = q.where(incidents.c.status == status)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def get(self, incident_no: str) -> IncidentView:
        with self.registers.admin_tx(write=False) as conn:
            row = self._incident(conn, incident_no)
            events = conn.execute(select(incident_events).where(incident_events.c.incident_id == row.incident_id)
                                  .order_by(incident_events.c.event_id)).all()
            links = conn.execute(select(incident_links).where(incident_links.c.incident_id == row.incident_id)
                                 .order_by(incident_links.c.chain, incident_links.c.seq)).all()
        entries = []
        for ln in links:
            with self.registers.engine(ln.chain).connect() as c:
                entries.append((ln.chain, ln.seq, oplog_entry(c, ln.chain, ln.seq)))
        return IncidentView(row, events, entries)

    def incidents_of_entries(self, chain: str, seqs) -> dict[int, list[str]]:
        """For the log screen: seq → incident numbers linked to that entry of ``chain``."""
        seqs = [int(s) for s in seqs]
        if not seqs:
            return {}
        with self.registers.admin_tx(write=False) as conn:
            rows = conn.execute(select(incident_links.c.seq, incidents.c.incident_no)
                                .join(incidents, incidents.c.incident_id == incident_links.c.incident_id)
                                .where(incident_links.c.chain == chain, incident_links.c.seq.in_(seqs))).all()
        out: dict[int, list[str]] = {}
        for seq, no in rows:
            out.setdefault(int(seq), []).append(no)
        return out

    def month(self, start_utc: datetime, end_utc: datetime) -> dict:
        """For the monthly report: incidents opened and closed in the month, and those still open at
        its end (with the number of notifications recorded)."""
        with self.registers.admin_tx(write=False) as conn:
            rows = conn.execute(select(incidents).where(incidents.c.opened_at < end_utc)
                                .order_by(incidents.c.incident_id)).all()
            notes = dict(conn.execute(select(incident_events.c.incident_id, func.count())
                                      .where(incident_events.c.kind == "notify")
                                      .group_by(incident_events.c.incident_id)).all())
        opened = [r for r in rows if utc(r.opened_at) >= start_utc]
        closed = [r for r in rows if r.closed_at is not None and start_utc <= utc(r.closed_at) < end_utc]
        still_open = [r for r in rows if r.closed_at is None or utc(r.closed_at) >= end_utc]
        return {"opened": opened, "closed": closed, "open": still_open, "notifications": notes}
