"""事務3 services: request intake and 突合 (O1), disclosure forms, provision history (O3),
corrections (O2), the form register (A5) and the inquiry log (A10).

Each access to personal data is one transaction on the register's database that also appends the
register's operation-log entry (fail closed); a refusal is logged in a transaction of its own.
The form register and the inquiry log are in the admin database (no 本人確認情報).

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

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import insert, select, update

from jukinet import labels, wareki
from jukinet.disclosure import access, forms
from jukinet.errors import JukinetError
from jukinet.provision.items import ITEMS  # noqa: F401 - also for the templates
from jukinet.provision.records import bind_keyring, provisions_for_person
from jukinet.keyring import KeyRing
from jukinet.security.model import FORBIDDEN, refused
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.outcomes import outcome_for
from jukinet.store.tables import fuhyo_current, juki_current
from jukinet.store.tables_disclosure import (CORRECTION_REQUESTS, CORRECTION_STEPS, DISCLOSURE_REQUESTS,
                                             form_register, inquiries)
from jukinet.store.tables_provision import provision_affairs, provision_requesters
from jukinet import geo

JST = timezone(timedelta(hours=9))
MATCH, MISMATCH = "一致", "不一致"
FOUR = {"name": "氏名", "birth_date": "生年月日", "sex": "性別", "address": "住所"}
OUTCOMES = {"matched": "一致", "partial": "一部不一致 (判断待ち)", "unmatched": "不一致"}
DECISIONS = {"accepted": "本人と認める", "rejected": "本人と認めない"}
DECISION_REASONS = {"id_document": "本人確認書類で確認", "gaiji_variant": "外字・異体字の表記差",
                    "old_address": "旧住所の記載", "not_confirmed": "本人と確認できない"}
FORM_TYPES = {"disclosure": "本人確認情報開示書", "provisions": "提供状況開示書", "correction_result": "調査結果通知書"}
FORM_PREFIX = {"disclosure": "D", "provisions": "P", "correction_result": "C"}
FORM_PURPOSES = {"disclosure_request": "開示請求に対する交付", "reissue": "再交付 (汚損・紛失)", "correction": "訂正等の申出への回答"}
DISPOSAL = {"shredded": "裁断", "returned": "返却", "dissolved": "溶解処理"}
CORRECTION_KINDS = {"correct": "訂正", "add": "追加", "delete": "削除"}
CSTATUS = {"received": "申出", "investigating": "調査中", "no_correction": "訂正不要", "reported": "市町村へ通報",
           "closed": "完了"}
TRANSITIONS = {"received": {"investigating"}, "investigating": {"no_correction", "reported"},
               "no_correction": {"closed"}, "reported": {"closed"}, "closed": set()}
INQUIRY_CHANNELS = {"counter": "窓口", "phone": "電話", "letter": "文書", "mail": "電子メール"}
INQUIRY_CATEGORIES = {"disclosure": "開示の手続", "provision": "提供状況", "correction": "訂正等",
                      "security": "安全管理・漏えいの懸念", "other": "その他"}
DUE_DAYS = 30   # 住基法・条例の回答期限の目安 (30日以内)
_REQNO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
_SPACES = re.compile(r"[\s\u3000]+")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def today_jst() -> date:
    return now_utc().astimezone(JST).date()


def parse_date(text, field: str = "birth_date") -> date:
    if isinstance(text, date):
        return text
    s = (text or "").strip()
    try:
        return date.fromisoformat(s)
    except ValueError:
        pass
    try:
        return wareki.parse_wareki(s)
    except JukinetError:
        raise JukinetError("DATE_FORMAT", "日付は西暦 (YYYY-MM-DD) または和暦で入力してください。", field=field) from None


def _nospace(s: Optional[str]) -> str:
    return _SPACES.sub("", s or "")


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


@dataclass
class Issued:
    serial: str
    pages: int
    pdf: bytes
    sha256: str


class DisclosureService:
    def __init__(self, config, registers, *, keyring: Optional[KeyRing] = None):
        self.config = config
        self.registers = registers
        self.keyring = keyring or KeyRing(config.data_dir)
        self.oplog = OperationLog(self.keyring, config.data_dir)
        bind_keyring([registers.engine(r) for r in ("juki", "fuhyo")], self.keyring)
        self.font = getattr(getattr(config, "security", None), "font_path", None)

    # ---- access --------------------------------------------------------------------------------

    def _require(self, op, terminal_id, what: str, register: Optional[str], action: str) -> Actor:
        actor = Actor(op.operator_id if op else None, terminal_id)
        if not access.can(op, what, register):
            err = refused(FORBIDDEN)
            self._log_refusal(actor, action, err, register)
            raise err
        return actor

    def _log_refusal(self, actor: Actor, action: str, err: JukinetError, register: Optional[str],
                     detail: Optional[dict] = None) -> None:
        try:
            if register in ("juki", "fuhyo"):
                with self.registers.uow(register) as uow:
                    self.oplog.append(uow.conn, register, actor=actor, action=action, outcome=outcome_for(err),
                                      detail={"code": err.code, **(detail or {})})
            else:
                with self.registers.admin_tx() as conn:
                    self.oplog.append(conn, "admin", actor=actor, action=action, outcome=outcome_for(err),
                                      detail={"code": err.code, **(detail or {})})
        except Exception:  # noqa: BLE001 - refused anyway
            pass

    def _guard(self, actor: Actor, action: str, register: Optional[str], fn, *, detail: Optional[dict] = None):
        """Run ``fn``; a JukinetError is logged as a refusal (own transaction) and raised."""
        try:
            return fn()
        except JukinetError as e:
            self._log_refusal(actor, action, e, register, detail)
            raise

    @staticmethod
    def _register(register: str) -> str:
        if register not in ("juki", "fuhyo"):
            raise JukinetError("REGISTER_UNKNOWN", "ファイルの指定が正しくありません。", field="register")
        return register

    # ---- O1: intake and 突合 ------------------------------------------------------------------

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

    # ---- A5: form register ---------------------------------------------------------------------

    def _open_form(self, form_type: str, register: str, request_no: Optional[str], purpose: str, copies: int,
                   actor: Actor) -> tuple[int, str]:
        if purpose not in FORM_PURPOSES:
            raise JukinetError("PURPOSE_UNKNOWN", "交付の目的を選択してください。", field="purpose")
        if not 1 <= int(copies) <= 5:
            raise JukinetError("COPIES_RANGE", "部数は1〜5部です。", field="copies")
        at = now_utc()
        with self.registers.admin_tx() as conn:
            tmp = f"tmp-{hashlib.sha256(f'{at.isoformat()}{actor.operator_id}{request_no}'.encode()).hexdigest()[:16]}"
            fid = conn.execute(insert(form_register).values(
                serial=tmp, form_type=form_type, register=register, request_no=request_no,
                operator_id=actor.operator_id, terminal_id=actor.terminal_id, printed_at=at, purpose=purpose,
                copies=int(copies), status="issuing")).inserted_primary_key[0]
            serial = f"{FORM_PREFIX[form_type]}{at.astimezone(JST).year}-{fid:07d}"
            conn.execute(update(form_register).where(form_register.c.form_id == fid).values(serial=serial))
            self.oplog.append(conn, "admin", actor=actor, action="form_issue", case_ref=request_no,
                              detail={"serial": serial, "form_type": form_type, "copies": int(copies)})
        return fid, serial

    def _close_form(self, fid: int, rendered: Optional[forms.Rendered]) -> Optional[str]:
        with self.registers.admin_tx() as conn:
            if rendered is None:
                conn.execute(update(form_register).where(form_register.c.form_id == fid).values(status="void"))
                return None
            sha = hashlib.sha256(rendered.data).hexdigest()
            conn.execute(update(form_register).where(form_register.c.form_id == fid).values(
                status="issued", pages=rendered.pages, sha256=sha))
            return sha

    def _issue(self, form_type, register, request_no, purpose, copies, actor, render) -> Issued:
        fid, serial = self._open_form(form_type, register, request_no, purpose, copies, actor)
        rendered = None
        try:
            rendered = render(serial)
        finally:
            sha = self._close_form(fid, rendered)
        return Issued(serial, rendered.pages, rendered.data, sha)

    def forms(self, op, terminal_id, limit: int = 200) -> list:
        self._require(op, terminal_id, "registers", None, "form_register")
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(form_register).order_by(form_register.c.form_id.desc()).limit(limit)).all()

    def forms_csv(self, op, terminal_id) -> bytes:
        rows = self.forms(op, terminal_id, limit=100000)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["帳票番号", "種別", "ファイル", "請求番号", "操作者", "端末", "交付日時", "目的", "部数", "頁数",
                    "SHA-256", "状態", "廃棄日時", "廃棄者", "廃棄方法"])
        for r in reversed(rows):
            w.writerow([r.serial, FORM_TYPES.get(r.form_type, r.form_type), r.register, r.request_no or "",
                        r.operator_id, r.terminal_id or "", _jst(r.printed_at), FORM_PURPOSES.get(r.purpose, r.purpose),
                        r.copies, r.pages or "", r.sha256 or "", labels.status(r.status), _jst(r.disposed_at),
                        labels.actor(r.disposed_by) if r.disposed_by else "",
                        DISPOSAL.get(r.disposal_method, r.disposal_method or "")])
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    def dispose(self, serial: str, method: str, op, terminal_id) -> None:
        actor = self._require(op, terminal_id, "handle", None, "form_dispose")

        def work():
            if method not in DISPOSAL:
                raise JukinetError("DISPOSAL_UNKNOWN", "廃棄の方法を選択してください。", field="method")
            with self.registers.admin_tx() as conn:
                r = conn.execute(select(form_register).where(form_register.c.serial == serial)).first()
                if r is None or r.status != "issued":
                    raise JukinetError("FORM_NOT_DISPOSABLE", "廃棄できる帳票ではありません。", field="serial")
                conn.execute(update(form_register).where(form_register.c.serial == serial).values(
                    status="disposed", disposed_at=now_utc(), disposed_by=actor.operator_id, disposal_method=method))
                self.oplog.append(conn, "admin", actor=actor, action="form_dispose",
                                  detail={"serial": serial, "method": method})

        self._guard(actor, "form_dispose", None, work)

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

    # ---- O2: corrections -----------------------------------------------------------------------

    def open_correction(self, register: str, request_no: str, kind: str, items: list[str], statement: str,
                        op, terminal_id, *, due_days: int = DUE_DAYS) -> str:
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "correction_open")

        def work():
            if kind not in CORRECTION_KINDS:
                raise JukinetError("KIND_UNKNOWN", "申出の種類を選択してください。", field="kind")
            its = [i for i in items if i in ITEMS[register]]
            if not its or len(its) != len(items):
                raise JukinetError("ITEMS_REQUIRED", "申出の項目を選択してください。", field="items")
            at = now_utc()
            cr, st = CORRECTION_REQUESTS[register], CORRECTION_STEPS[register]
            with self.registers.uow(register) as uow:
                r = self._request(uow.conn, register, request_no)
                cid = f"{register[0].upper()}C{at.astimezone(JST):%Y%m%d%H%M%S}{int(at.microsecond / 1000):03d}"
                seq = self.oplog.append(uow.conn, register, actor=actor, action="correction_open",
                                        purpose_code="correction", case_ref=request_no,
                                        detail={"correction_id": cid, "kind": kind, "items": its})
                uow.conn.execute(insert(cr).values(
                    correction_id=cid, request_no=request_no, juminhyo_code=r.juminhyo_code, kind=kind,
                    items=",".join(its), statement=(statement or "")[:2000], status="received", received_at=at,
                    due_date=today_jst() + timedelta(days=due_days), assignee=actor.operator_id, updated_at=at))
                uow.conn.execute(insert(st).values(correction_id=cid, at=at, operator_id=actor.operator_id,
                                                   terminal_id=actor.terminal_id, from_status=None,
                                                   to_status="received", oplog_seq=seq))
            return cid

        return self._guard(actor, "correction_open", register, work)

    def step(self, register: str, correction_id: str, to_status: str, op, terminal_id, *,
             assignee: Optional[str] = None, municipality_code: Optional[str] = None,
             note_code: Optional[str] = None) -> None:
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "correction_step")

        def work():
            cr, st = CORRECTION_REQUESTS[register], CORRECTION_STEPS[register]
            with self.registers.uow(register) as uow:
                c = uow.conn.execute(select(cr).where(cr.c.correction_id == correction_id)).first()
                if c is None:
                    raise JukinetError("CORRECTION_NOT_FOUND", "この申出はありません。", field="correction_id")
                if to_status not in TRANSITIONS.get(c.status, set()):
                    raise JukinetError("STEP_NOT_ALLOWED", "この状態からは進められません。", field="to_status")
                values = {"status": to_status, "updated_at": now_utc()}
                if assignee:
                    values["assignee"] = assignee[:32]
                if to_status == "reported":
                    if not re.fullmatch(r"\d{6}", municipality_code or ""):
                        raise JukinetError("MUNICIPALITY_REQUIRED", "通報先の市町村コード (6桁) を入力してください。",
                                           field="municipality_code")
                    values["municipality_code"] = municipality_code
                if to_status == "no_correction":
                    values["result"] = "no_correction"
                if to_status == "closed" and c.status == "reported":
                    values["result"] = "corrected"
                seq = self.oplog.append(uow.conn, register, actor=actor, action="correction_step",
                                        purpose_code="correction", case_ref=c.request_no,
                                        detail={"correction_id": correction_id, "from": c.status, "to": to_status})
                uow.conn.execute(update(cr).where(cr.c.correction_id == correction_id).values(**values))
                uow.conn.execute(insert(st).values(correction_id=correction_id, at=now_utc(),
                                                   operator_id=actor.operator_id, terminal_id=actor.terminal_id,
                                                   from_status=c.status, to_status=to_status,
                                                   note_code=(note_code or None) and note_code[:20], oplog_seq=seq))

        self._guard(actor, "correction_step", register, work)

    def corrections(self, register: str, op, terminal_id) -> list:
        register = self._register(register)
        self._require(op, terminal_id, "handle", register, "corrections")
        cr = CORRECTION_REQUESTS[register]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(cr.c.correction_id, cr.c.request_no, cr.c.kind, cr.c["items"], cr.c.status,
                                           cr.c.received_at, cr.c.due_date, cr.c.assignee, cr.c.municipality_code,
                                           cr.c.result).order_by(cr.c.received_at.desc()).limit(200)).all()

    def steps(self, register: str, correction_id: str) -> list:
        st = CORRECTION_STEPS[register]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(st).where(st.c.correction_id == correction_id).order_by(st.c.step_id)).all()

    def correction_letter(self, register: str, correction_id: str, op, terminal_id, *, copies: int = 1) -> Issued:
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "correction_letter")
        cr = CORRECTION_REQUESTS[register]

        def work():
            with self.registers.uow(register, write=False) as uow:
                c = uow.conn.execute(select(cr).where(cr.c.correction_id == correction_id)).first()
                if c is None or c.status != "closed":
                    raise JukinetError("CORRECTION_NOT_CLOSED", "完了した申出にのみ結果通知書を作成できます。",
                                       field="correction_id")

            def render(serial):
                with self.registers.uow(register) as uow:
                    person = uow.repo.get(c.juminhyo_code)
                    self.oplog.append(uow.conn, register, actor=actor, action="correction_letter",
                                      purpose_code="correction", case_ref=c.request_no,
                                      detail={"correction_id": correction_id, "serial": serial})
                labels = ITEMS[register]
                return forms.correction_letter(
                    person.name, kind=CORRECTION_KINDS[c.kind], items="、".join(labels[i] for i in c._mapping["items"].split(",")),
                    result=c.result, municipality=_municipality(c.municipality_code),
                    received=c.received_at.astimezone(JST).date() if c.received_at.tzinfo else c.received_at.date(),
                    serial=serial, prefecture=self.config.prefecture_name, request_no=c.request_no,
                    issued=today_jst(), font=self.font)

            return self._issue("correction_result", register, c.request_no, "correction", copies, actor, render)

        return self._guard(actor, "correction_letter", register, work)

    # ---- A10: inquiries ------------------------------------------------------------------------

    def add_inquiry(self, channel: str, category: str, summary: str, op, terminal_id) -> int:
        actor = self._require(op, terminal_id, "handle", None, "inquiry_add")

        def work():
            if channel not in INQUIRY_CHANNELS or category not in INQUIRY_CATEGORIES:
                raise JukinetError("INQUIRY_KIND", "受付の方法と分類を選択してください。", field="category")
            if not (summary or "").strip():
                raise JukinetError("FIELD_REQUIRED", "概要を入力してください。", field="summary")
            with self.registers.admin_tx() as conn:
                iid = conn.execute(insert(inquiries).values(
                    received_at=now_utc(), channel=channel, category=category, summary=summary.strip()[:1000],
                    operator_id=actor.operator_id, status="open")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="inquiry_add",
                                  detail={"inquiry_id": iid, "category": category})
            return iid

        return self._guard(actor, "inquiry_add", None, work)

    def handle_inquiry(self, inquiry_id: int, handling: str, op, terminal_id, *, close: bool = True) -> None:
        actor = self._require(op, terminal_id, "handle", None, "inquiry_handle")

        def work():
            if not (handling or "").strip():
                raise JukinetError("FIELD_REQUIRED", "対応内容を入力してください。", field="handling")
            with self.registers.admin_tx() as conn:
                r = conn.execute(select(inquiries).where(inquiries.c.inquiry_id == int(inquiry_id))).first()
                if r is None:
                    raise JukinetError("INQUIRY_NOT_FOUND", "この問合せはありません。", field="inquiry_id")
                conn.execute(update(inquiries).where(inquiries.c.inquiry_id == r.inquiry_id).values(
                    handling=handling.strip()[:2000], handled_by=actor.operator_id,
                    status="closed" if close else "open", closed_at=now_utc() if close else None))
                self.oplog.append(conn, "admin", actor=actor, action="inquiry_handle",
                                  detail={"inquiry_id": r.inquiry_id, "closed": close})

        self._guard(actor, "inquiry_handle", None, work)

    def inquiries(self, op, terminal_id, limit: int = 200) -> list:
        self._require(op, terminal_id, "registers", None, "inquiries")
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(inquiries).order_by(inquiries.c.inquiry_id.desc()).limit(limit)).all()

    def inquiries_csv(self, op, terminal_id) -> bytes:
        rows = self.inquiries(op, terminal_id, limit=100000)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["番号", "受付日時", "方法", "分類", "概要", "受付者", "対応", "対応者", "状態", "完了日時"])
        for r in reversed(rows):
            w.writerow([r.inquiry_id, _jst(r.received_at), INQUIRY_CHANNELS.get(r.channel, r.channel),
                        INQUIRY_CATEGORIES.get(r.category, r.category), r.summary, r.operator_id, r.handling or "",
                        r.handled_by or "", "完了" if r.status == "closed" else "対応中", _jst(r.closed_at)])
        return ("\ufeff" + out.getvalue()).encode("utf-8")


def _municipality(code: Optional[str]) -> Optional[str]:
    m = geo.find(code)
    return m.name if m else code


def _jst(v) -> str:
    """An instant in the registers people read (CSV): 和暦 date and JST time (ADR 0042)."""
    return wareki.to_wareki_time(v)
