"""開示請求 (O1, O3): request intake and 突合, the operator's decision on a partial match, the disclosure
form and the form of who received the person's data.

突合 rules (ADR 0019) — the written request's 4情報 against the register's current records:

* candidates: records (not removed) with the requested 生年月日;
* per item: 氏名 compared without spaces; 性別 exactly; 住所 without spaces, with the prefecture
  prepended when the request omits it (附票: 住所 or 最終住所);
* **matched**: exactly one candidate agrees on all four items;
* **partial**: no full match, and exactly one candidate agrees on 生年月日 and two of 氏名・性別・住所
  (e.g. the request wrote 吉田 for 𠮷田). Nothing is disclosed until an operator decides
  (accepted | rejected, with a reason code) — the decision is recorded with who and when;
* **unmatched**: anything else (none, or several candidates).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Optional

from sqlalchemy import insert, select, update

from jukinet import wareki
from jukinet.disclosure import forms
from jukinet.disclosure.base import JST, Issued, _nospace, now_utc, parse_date, today_jst
from jukinet.disclosure.form_register import FormRegister
from jukinet.errors import JukinetError
from jukinet.provision.items import ITEMS
from jukinet.provision.records import provisions_for_person
from jukinet.security.oplog import Actor
from jukinet.store.tables import fuhyo_current, juki_current
from jukinet.store.tables_disclosure import DISCLOSURE_REQUESTS
from jukinet.store.tables_provision import provision_affairs, provision_requesters

MATCH, MISMATCH = "一致", "不一致"
FOUR = {"name": "氏名", "birth_date": "生年月日", "sex": "性別", "address": "住所"}
OUTCOMES = {"matched": "一致", "partial": "一部不一致 (判断待ち)", "unmatched": "不一致"}
DECISIONS = {"accepted": "本人と認める", "rejected": "本人と認めない"}
DECISION_REASONS = {"id_document": "本人確認書類で確認", "gaiji_variant": "外字・異体字の表記差",
                    "old_address": "旧住所の記載", "not_confirmed": "本人と確認できない"}
_REQNO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")


@dataclass
class IntakeCommand:
    register: str
    request_no: str
    name: str
    birth_date: str
    sex: str
    address: str
    scope: str = "identity"     # identity | history | provisions


@dataclass
class IntakeResult:
    request_no: str
    register: str
    outcome: str
    match: dict
    candidates: int

    @property
    def outcome_label(self) -> str:
        return OUTCOMES[self.outcome]


class Disclosures(FormRegister):
    def _match(self, register: str, row, cmd: IntakeCommand, bd: date) -> dict:
        pref = self.config.prefecture_name
        want_addr = _nospace(cmd.address)
        if want_addr and not want_addr.startswith(pref):
            want_addr = pref + want_addr
        addrs = {_nospace(row.address)} if register == "juki" else {_nospace(row.address), _nospace(row.last_address)}
        return {"name": MATCH if _nospace(row.name) == _nospace(cmd.name) else MISMATCH,
                "birth_date": MATCH if row.birth_date == bd else MISMATCH,
                "sex": MATCH if row.sex == (cmd.sex or "").strip() else MISMATCH,
                "address": MATCH if want_addr and want_addr in addrs else MISMATCH}

    def intake(self, cmd: IntakeCommand, op, terminal_id: Optional[str]) -> IntakeResult:
        register = self._register(cmd.register)
        actor = self._require(op, terminal_id, "handle", register, "disclosure_intake")

        def work():
            if not _REQNO.match(cmd.request_no or ""):
                raise JukinetError("REQUEST_NO_FORMAT", "請求番号は英数字とハイフン (32文字以内) で入力してください。",
                                   field="request_no")
            if cmd.scope not in ("identity", "history", "provisions"):
                raise JukinetError("SCOPE_UNKNOWN", "開示の範囲の指定が正しくありません。", field="scope")
            for k in ("name", "birth_date", "sex", "address"):
                if not (getattr(cmd, k) or "").strip():
                    raise JukinetError("FIELD_REQUIRED", f"{FOUR[k]}を入力してください。", field=k)
            bd = parse_date(cmd.birth_date)
            t = juki_current if register == "juki" else fuhyo_current
            req = DISCLOSURE_REQUESTS[register]
            with self.registers.uow(register) as uow:
                conn = uow.conn
                if conn.execute(select(req.c.request_no).where(req.c.request_no == cmd.request_no)).first():
                    raise JukinetError("REQUEST_NO_DUPLICATE", "この請求番号は受付済みです。", field="request_no")
                q = select(t).where(t.c.birth_date == bd)
                q = q.where(t.c.deleted.is_(False)) if register == "juki" else q.where(t.c.status == "現存")
                rows = conn.execute(q).all()
                scored = [(r, self._match(register, r, cmd, bd)) for r in rows]
                full = [(r, m) for r, m in scored if all(v == MATCH for v in m.values())]
                near = [(r, m) for r, m in scored
                        if sum(v == MATCH for k, v in m.items() if k != "birth_date") >= 2]
                if len(full) == 1:
                    outcome, (row, match) = "matched", full[0]
                elif not full and len(near) == 1:
                    outcome, (row, match) = "partial", near[0]
                else:
                    outcome, row = "unmatched", None
                    match = {k: MISMATCH for k in FOUR}
                seq = self.oplog.append(conn, register, actor=actor, action="disclosure_intake",
                                        purpose_code="disclosure", case_ref=cmd.request_no,
                                        keys={"name": _nospace(cmd.name), "birth_date": bd.isoformat(),
                                              "sex": cmd.sex, "address": _nospace(cmd.address)},
                                        result_count=len(full) or len(near),
                                        detail={"outcome": outcome, "scope": cmd.scope})
                conn.execute(insert(req).values(
                    request_no=cmd.request_no, received_at=now_utc(), operator_id=actor.operator_id,
                    terminal_id=actor.terminal_id, scope=cmd.scope,
                    match_result=json.dumps(match, ensure_ascii=False, sort_keys=True),
                    outcome=outcome, juminhyo_code=row.juminhyo_code if row is not None else None, oplog_seq=seq))
            return IntakeResult(cmd.request_no, register, outcome, match, len(full) or len(near))

        return self._guard(actor, "disclosure_intake", register, work)

    def decide(self, register: str, request_no: str, decision: str, reason: str, op, terminal_id) -> None:
        """The operator's decision on a partial match (recorded with who and when)."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "disclosure_decide")

        def work():
            if decision not in DECISIONS or reason not in DECISION_REASONS:
                raise JukinetError("DECISION_UNKNOWN", "判断と理由を選択してください。", field="decision")
            req = DISCLOSURE_REQUESTS[register]
            with self.registers.uow(register) as uow:
                r = uow.conn.execute(select(req).where(req.c.request_no == request_no)).first()
                if r is None:
                    raise JukinetError("REQUEST_NOT_FOUND", "この請求番号は受け付けられていません。", field="request_no")
                if r.outcome != "partial" or r.decision is not None:
                    raise JukinetError("DECISION_NOT_PENDING", "この請求は判断を要しません。", field="request_no")
                self.oplog.append(uow.conn, register, actor=actor, action="disclosure_decide", case_ref=request_no,
                                  purpose_code="disclosure", detail={"decision": decision, "reason": reason})
                uow.conn.execute(update(req).where(req.c.request_no == request_no).values(
                    decision=decision, decision_reason=reason, decided_by=actor.operator_id, decided_at=now_utc()))

        self._guard(actor, "disclosure_decide", register, work)

    def requests(self, register: str, op, terminal_id, limit: int = 50) -> list:
        """The latest requests (numbers, outcome, decision — no personal data shown)."""
        register = self._register(register)
        self._require(op, terminal_id, "handle", register, "disclosure_requests")
        req = DISCLOSURE_REQUESTS[register]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(req.c.request_no, req.c.received_at, req.c.operator_id, req.c.scope,
                                           req.c.outcome, req.c.decision, req.c.match_result)
                                    .order_by(req.c.received_at.desc()).limit(limit)).all()

    @staticmethod
    def _usable(r) -> bool:
        return r is not None and (r.outcome == "matched" or (r.outcome == "partial" and r.decision == "accepted"))

    def _request(self, conn, register: str, request_no: str):
        req = DISCLOSURE_REQUESTS[register]
        r = conn.execute(select(req).where(req.c.request_no == request_no)).first()
        if r is None:
            raise JukinetError("REQUEST_NOT_FOUND", "この請求番号は受け付けられていません。", field="request_no")
        if not self._usable(r):
            raise JukinetError("REQUEST_NOT_MATCHED", "突合が一致していない請求には帳票を交付できません。", field="request_no")
        return r

    # ---- O1: disclosure form -------------------------------------------------------------------

    def disclosure_form(self, register: str, request_no: str, op, terminal_id, *, with_history: bool = False,
                        purpose: str = "disclosure_request", copies: int = 1) -> Issued:
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "disclosure_form")

        def work():
            with self.registers.uow(register, write=False) as uow:   # check first: no serial for a refusal
                self._request(uow.conn, register, request_no)

            def render(serial):
                with self.registers.uow(register) as uow:
                    r = self._request(uow.conn, register, request_no)
                    current = uow.repo.get(r.juminhyo_code)
                    history = uow.repo.history_of(r.juminhyo_code) if with_history else []
                    self.oplog.append(uow.conn, register, actor=actor, action="disclosure_form",
                                      purpose_code="disclosure", case_ref=request_no, result_count=1,
                                      detail={"serial": serial, "history": len(history)})
                    return forms.disclosure_form(register, current, history, serial=serial,
                                                 prefecture=self.config.prefecture_name, request_no=request_no,
                                                 issued=today_jst(), font=self.font)

            return self._issue("disclosure", register, request_no, purpose, copies, actor, render)

        return self._guard(actor, "disclosure_form", register, work)

    # ---- O3: who received my data --------------------------------------------------------------

    def provision_rows(self, juminhyo_code: str, actor: Actor, request_no: str, serial: Optional[str]) -> list:
        """Every provision of the person's data in both registers (provided only), oldest first."""
        with self.registers.admin_tx(write=False) as conn:
            rq = dict(conn.execute(select(provision_requesters.c.code, provision_requesters.c.name)).all())
            af = {a.code: a for a in conn.execute(select(provision_affairs))}
        out = []
        for reg in ("juki", "fuhyo"):
            with self.registers.uow(reg) as uow:
                entries = provisions_for_person(uow, juminhyo_code, provided_only=True)
                self.oplog.append(uow.conn, reg, actor=actor, action="disclosure_provisions",
                                  purpose_code="disclosure", case_ref=request_no, result_count=len(entries),
                                  detail={"serial": serial} if serial else None)
            for e in entries:
                a = af.get(e.affair_code)
                out.append((e.at, reg, e))
        out.sort(key=lambda x: x[0])
        rows = []
        for at, reg, e in out:
            a = af.get(e.affair_code)
            labels = ITEMS[reg]
            rows.append((wareki.to_wareki(at.astimezone(JST).date() if at.tzinfo else at.date()),
                         rq.get(e.requester_code, e.requester_code or "") + ("（全国サーバ）" if e.source == "national" else ""),
                         f"{a.name}（{a.basis}）" if a else (e.affair_code or ""),
                         e.kind_label, "、".join(labels.get(i, i) for i in e.items)))
        return rows

    def provisions_form(self, register: str, request_no: str, op, terminal_id, *,
                        purpose: str = "disclosure_request", copies: int = 1) -> Issued:
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "disclosure_provisions")

        def work():
            with self.registers.uow(register, write=False) as uow:
                r = self._request(uow.conn, register, request_no)
                person = uow.repo.get(r.juminhyo_code)

            def render(serial):
                rows = self.provision_rows(person.juminhyo_code, actor, request_no, serial)
                return forms.provisions_form(person.name, rows, serial=serial, prefecture=self.config.prefecture_name,
                                             request_no=request_no, issued=today_jst(), font=self.font)

            return self._issue("provisions", register, request_no, purpose, copies, actor, render)

        return self._guard(actor, "disclosure_provisions", register, work)
