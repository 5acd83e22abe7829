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
from jukinet.disclosure import access, forms, reports
from jukinet.errors import JukinetError
from jukinet.provision.items import ITEMS  # noqa: F401 - also for the templates
from jukinet.provision.records import bind_keyring, provisions_for_person
from jukinet.keyring import KeyRing
from jukinet.security.model import FORBIDDEN, refused
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.outcomes import outcome_for
from jukinet.store.tables import fuhyo_current, juki_current
from jukinet.store.tables_disclosure import (CORRECTION_REQUESTS, CORRECTION_STEPS, DISCLOSURE_REQUESTS,
                                             MUNICIPAL_REPORTS, SUSPENSION_REQUESTS, SUSPENSION_STEPS,
                                             form_register, inquiries)
from jukinet.store.tables_media import media_approvals
from jukinet.store.tables_provision import provision_affairs, provision_requesters
from jukinet import geo
from jukinet import text as textrule

JST = timezone(timedelta(hours=9))
MATCH, MISMATCH = "一致", "不一致"
FOUR = {"name": "氏名", "birth_date": "生年月日", "sex": "性別", "address": "住所"}
OUTCOMES = {"matched": "一致", "partial": "一部不一致 (判断待ち)", "unmatched": "不一致"}
DECISIONS = {"accepted": "本人と認める", "rejected": "本人と認めない"}
DECISION_REASONS = {"id_document": "本人確認書類で確認", "gaiji_variant": "外字・異体字の表記差",
                    "old_address": "旧住所の記載", "not_confirmed": "本人と確認できない"}
FORM_TYPES = {"disclosure": "本人確認情報開示書", "provisions": "提供状況開示書", "correction_result": "調査結果通知書",
              "suspension_receipt": "利用停止請求受付票", "suspension_result": "利用停止決定等通知書",
              "municipal_report": "通報書 (市町村長あて)"}
FORM_PREFIX = {"disclosure": "D", "provisions": "P", "correction_result": "C", "suspension_receipt": "U",
               "suspension_result": "S", "municipal_report": "T"}
FORM_PURPOSES = {"disclosure_request": "開示請求に対する交付", "reissue": "再交付 (汚損・紛失)", "correction": "訂正等の申出への回答",
                 "suspension": "利用停止請求の受付・回答", "municipal_report": "市町村長への通報"}
DISPOSAL = {"shredded": "裁断", "returned": "返却", "dissolved": "溶解処理"}
CORRECTION_KINDS = {"correct": "訂正", "add": "追加", "delete": "削除"}
CSTATUS = {"received": "申出", "investigating": "調査中", "no_correction": "訂正不要", "reported": "市町村へ通報",
           "closed": "完了"}
TRANSITIONS = {"received": {"investigating"}, "investigating": {"no_correction", "reported"},
               "no_correction": {"closed"}, "reported": {"closed"}, "closed": set()}
# ---- O4: 利用停止請求 (個人情報保護法第98条〜第103条, 番号法第30条による読替え; PIA V.1) ----
SUSPENSION_KINDS = {"stop_use": "利用の停止", "erase": "消去", "stop_provision": "提供の停止"}
SUSPENSION_GROUNDS = {
    "outside_purpose": "利用目的以外の目的での利用・保有 (第98条第1項第1号)",
    "unlawful_acquisition": "偽りその他不正の手段による取得 (第98条第1項第1号)",
    "unlawful_provision": "法令の規定に違反した提供 (第98条第1項第2号)"}
#: which grounds support which kind (第1号: 利用の停止・消去, 第2号: 提供の停止)
KIND_GROUNDS = {"stop_use": {"outside_purpose", "unlawful_acquisition"},
                "erase": {"outside_purpose", "unlawful_acquisition"}, "stop_provision": {"unlawful_provision"}}
SSTATUS = {"received": "請求受付", "investigating": "調査中", "decided": "決定済み", "closed": "完了"}
STRANSITIONS = {"received": {"investigating"}, "investigating": set(), "decided": {"closed"}, "closed": set()}
SDECISIONS = {"suspend": "利用停止をする (全部)", "partial": "利用停止をする (一部)", "not_suspend": "利用停止をしない"}
SDECISION_REASONS = {"violation_found": "法令に違反する取扱いを確認した",
                     "no_violation": "法令に違反する取扱いは認められない",
                     "affairs_hindrance": "事務の適正な遂行に著しい支障 (第100条ただし書)"}
EXTENSION_REASONS = {"volume": "請求に係る記録が大量で事務処理上困難", "inquiry": "関係機関への照会に日数を要する",
                     "other_just": "その他正当な理由"}
SUSPENSION_DUE_DAYS = 30     # 利用停止決定等の期限: 請求があった日から30日以内 (第102条第1項)
EXTENSION_DAYS = 30          # 延長は30日以内 (第102条第2項), 1回
REQUEST_WINDOW_DAYS = 90     # 開示を受けた日から90日以内 (第98条第3項)
FEE_YEN = 0                  # 手数料は無料 (PIA V.1③)
COPY_FEE_YEN = 10            # 複写費用 A3 まで1枚10円
COPY_SIZES = ("A4", "B5", "B4", "A3")    # A3 までの用紙
MAX_COPY_SHEETS = 500

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

    def dispose(self, serial: str, method: str, op, terminal_id, approval_id: str | None = None) -> None:
        """廃棄 of an issued form — only with the 管理責任者's prior approval for that form (G3, PIA III.7 R3;
        ADR 0040): ``approval_id`` from ``media_approvals``, used once in the same transaction."""
        actor = self._require(op, terminal_id, "handle", None, "form_dispose")

        def work():
            if method not in DISPOSAL:
                raise JukinetError("DISPOSAL_UNKNOWN", "廃棄の方法を選択してください。", field="method")
            now = now_utc()
            with self.registers.admin_tx() as conn:
                r = conn.execute(select(form_register).where(form_register.c.serial == serial)).first()
                if r is None or r.status != "issued":
                    raise JukinetError("FORM_NOT_DISPOSABLE", "廃棄できる帳票ではありません。", field="serial")
                a = media_approvals
                taken = conn.execute(update(a).where(
                    a.c.approval_id == (approval_id or "").strip(), a.c.target_kind == "form", a.c.target_id == serial,
                    a.c.action == "destroy", a.c.status == "approved", a.c.approved_at <= now)
                    .values(status="used", used_at=now)).rowcount
                if taken != 1:
                    raise JukinetError("FORM_APPROVAL_REQUIRED", "帳票の廃棄には、その帳票についての管理責任者の事前承認"
                                                                 "(未使用の承認番号) が必要です。", field="approval_id")
                conn.execute(update(form_register).where(form_register.c.serial == serial).values(
                    status="disposed", disposed_at=now, disposed_by=actor.operator_id, disposal_method=method))
                self.oplog.append(conn, "admin", actor=actor, action="form_dispose",
                                  detail={"serial": serial, "method": method, "approval": approval_id})

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
             note_code: Optional[str] = None) -> Optional[str]:
        """One transition; to ``reported`` it also records the 通報 to the municipality (O5) in the same
        transaction and prints the 通報書; returns the 通報 id then."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "correction_step")

        made: list[str] = []

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
                    if not re.fullmatch(r"\d{6}", municipality_code or "") or geo.find(municipality_code) is None:
                        raise JukinetError("MUNICIPALITY_REQUIRED", "通報先の市町村コード (6桁) を入力してください。",
                                           field="municipality_code")
                    values["municipality_code"] = municipality_code
                    rid = reports.create(uow.conn, register, source="correction", case_id=correction_id,
                                         request_no=c.request_no, juminhyo_code=c.juminhyo_code,
                                         municipality_code=municipality_code, kind=c.kind,
                                         items=c._mapping["items"].split(","), created_by=actor.operator_id)
                    made.append(rid)
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
        for rid in made:     # O5: the 通報書 (the 通報 itself is committed with the step)
            self._report_document_quietly(register, rid, actor)
        return made[0] if made else None

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

    # ---- O4: 利用停止請求 -----------------------------------------------------------------------

    def _disclosed_on(self, register: str, request_no: str) -> Optional[date]:
        """The JST day the latest disclosure form of the request was issued (開示を受けた日)."""
        with self.registers.admin_tx(write=False) as conn:
            at = conn.execute(select(form_register.c.printed_at).where(
                form_register.c.register == register, form_register.c.request_no == request_no,
                form_register.c.form_type.in_(("disclosure", "provisions")), form_register.c.status == "issued")
                .order_by(form_register.c.printed_at.desc()).limit(1)).scalar()
        if at is None:
            return None
        return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(JST).date()

    @staticmethod
    def fee(copy_sheets: int) -> int:
        """手数料 (無料) + 複写費用 (A3 まで1枚10円)."""
        return FEE_YEN + COPY_FEE_YEN * int(copy_sheets)

    def open_suspension(self, register: str, request_no: str, kind: str, grounds: str, statement: str, op,
                        terminal_id, *, copy_sheets=0, copy_size: Optional[str] = None,
                        today: Optional[date] = None) -> str:
        """利用停止請求の受付: checks, the legal deadline, the fee; returns the 請求 id."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_open")

        def work():
            if kind not in SUSPENSION_KINDS:
                raise JukinetError("SUSPENSION_KIND_UNKNOWN", "請求の種類 (利用の停止・消去・提供の停止) を選択してください。",
                                   field="kind")
            if grounds not in SUSPENSION_GROUNDS:
                raise JukinetError("SUSPENSION_GROUNDS_UNKNOWN", "請求の理由を選択してください。", field="grounds")
            if grounds not in KIND_GROUNDS[kind]:
                raise JukinetError("SUSPENSION_GROUNDS_MISMATCH",
                                   "提供の停止は違法な提供を、利用の停止・消去は目的外の利用・保有または不正な取得を理由とします。",
                                   field="grounds")
            try:
                sheets = int(str(copy_sheets).strip() or 0)
            except ValueError:
                sheets = -1
            if not 0 <= sheets <= MAX_COPY_SHEETS:
                raise JukinetError("COPY_SHEETS_RANGE", f"写しの枚数は0〜{MAX_COPY_SHEETS}枚です。", field="copy_sheets")
            size = (copy_size or "").strip().upper() or None
            if sheets and size is None:
                size = "A4"
            if size is not None and size not in COPY_SIZES:
                raise JukinetError("COPY_SIZE_OVER_A3", "写しの用紙は A3 までです (A4・B5・B4・A3)。", field="copy_size")
            if not sheets:
                size = None
            if not (statement or "").strip():
                raise JukinetError("FIELD_REQUIRED", "請求の内容を入力してください。", field="statement")
            textrule.check(statement, "請求の内容", field="statement")     # e.g. NUL, a lone surrogate (Q2)
            day = today or today_jst()
            st, sp = SUSPENSION_REQUESTS[register], SUSPENSION_STEPS[register]
            with self.registers.uow(register) as uow:
                r = self._request(uow.conn, register, request_no)
            disclosed = self._disclosed_on(register, request_no)
            if disclosed is None:
                raise JukinetError("DISCLOSURE_NOT_EXECUTED",
                                   "利用停止請求は開示を受けた保有個人情報について行います。先に開示書を交付してください。",
                                   field="request_no")
            if (day - disclosed).days > REQUEST_WINDOW_DAYS:
                raise JukinetError("SUSPENSION_PERIOD_EXPIRED",
                                   f"開示を受けた日から{REQUEST_WINDOW_DAYS}日を過ぎた利用停止請求は受け付けられません。",
                                   field="request_no")
            at = now_utc()
            sid = f"{register[0].upper()}S{at.astimezone(JST):%Y%m%d%H%M%S}{int(at.microsecond / 1000):03d}"
            fee = self.fee(sheets)
            with self.registers.uow(register) as uow:
                if uow.conn.execute(select(st.c.suspension_id).where(st.c.suspension_id == sid)).first():
                    raise JukinetError("SUSPENSION_BUSY", "同時に受け付けた請求があります。もう一度お試しください。")
                seq = self.oplog.append(uow.conn, register, actor=actor, action="suspension_open",
                                        purpose_code="suspension", case_ref=request_no,
                                        detail={"suspension_id": sid, "kind": kind, "grounds": grounds,
                                                "copy_sheets": sheets, "fee_yen": fee})
                uow.conn.execute(insert(st).values(
                    suspension_id=sid, request_no=request_no, juminhyo_code=r.juminhyo_code, kind=kind,
                    grounds=grounds, statement=statement.strip()[:2000], copy_sheets=sheets, copy_size=size,
                    fee_yen=fee, status="received", received_at=at,
                    due_date=day + timedelta(days=SUSPENSION_DUE_DAYS), extended=0, assignee=actor.operator_id,
                    updated_at=at))
                uow.conn.execute(insert(sp).values(suspension_id=sid, at=at, operator_id=actor.operator_id,
                                                   terminal_id=actor.terminal_id, from_status=None,
                                                   to_status="received", oplog_seq=seq))
            return sid

        return self._guard(actor, "suspension_open", register, work)

    def _suspension(self, conn, register: str, suspension_id: str):
        st = SUSPENSION_REQUESTS[register]
        s = conn.execute(select(st).where(st.c.suspension_id == (suspension_id or ""))).first()
        if s is None:
            raise JukinetError("SUSPENSION_NOT_FOUND", "この利用停止請求はありません。", field="suspension_id")
        return s

    def _suspension_step(self, conn, register, actor, s, to_status, values, *, note=None, detail=None,
                         action: str = "suspension_step") -> None:
        st, sp = SUSPENSION_REQUESTS[register], SUSPENSION_STEPS[register]
        seq = self.oplog.append(conn, register, actor=actor, action=action, purpose_code="suspension",
                                case_ref=s.request_no, detail={"suspension_id": s.suspension_id, "from": s.status,
                                                               "to": to_status, **(detail or {})})
        conn.execute(update(st).where(st.c.suspension_id == s.suspension_id).values(
            status=to_status, updated_at=now_utc(), **values))
        conn.execute(insert(sp).values(suspension_id=s.suspension_id, at=now_utc(), operator_id=actor.operator_id,
                                       terminal_id=actor.terminal_id, from_status=s.status, to_status=to_status,
                                       note_code=note, oplog_seq=seq))

    def step_suspension(self, register: str, suspension_id: str, to_status: str, op, terminal_id, *,
                        assignee: Optional[str] = None) -> None:
        """請求受付 → 調査中 (担当者), 決定済み → 完了."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_step")

        def work():
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if to_status not in STRANSITIONS.get(s.status, set()):
                    raise JukinetError("STEP_NOT_ALLOWED", "この状態からは進められません。", field="to_status")
                values = {"assignee": assignee[:32]} if assignee else {}
                self._suspension_step(uow.conn, register, actor, s, to_status, values)

        self._guard(actor, "suspension_step", register, work)

    def decide_suspension(self, register: str, suspension_id: str, decision: str, reason: str, op,
                          terminal_id) -> None:
        """利用停止決定等 (調査中 → 決定済み), with who and when."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_decide")

        def work():
            if decision not in SDECISIONS or reason not in SDECISION_REASONS:
                raise JukinetError("DECISION_UNKNOWN", "決定と理由を選択してください。", field="decision")
            if (decision == "not_suspend") != (reason != "violation_found"):
                raise JukinetError("DECISION_REASON_MISMATCH", "決定と理由が合っていません。", field="reason")
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status != "investigating":
                    raise JukinetError("STEP_NOT_ALLOWED", "調査中の請求についてのみ決定できます。", field="to_status")
                self._suspension_step(uow.conn, register, actor, s, "decided",
                                      {"decision": decision, "decision_reason": reason,
                                       "decided_by": actor.operator_id, "decided_at": now_utc()},
                                      note=decision, detail={"decision": decision, "reason": reason},
                                      action="suspension_decide")

        self._guard(actor, "suspension_decide", register, work)

    def extend_suspension(self, register: str, suspension_id: str, reason: str, op, terminal_id, *,
                          today: Optional[date] = None) -> date:
        """期限の延長 (第102条第2項): once, by 30 days, before the deadline has passed; the new due date."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_extend")

        def work():
            if reason not in EXTENSION_REASONS:
                raise JukinetError("EXTENSION_REASON_UNKNOWN", "延長の理由を選択してください。", field="reason")
            st = SUSPENSION_REQUESTS[register]
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status not in ("received", "investigating"):
                    raise JukinetError("EXTENSION_NOT_ALLOWED", "決定前の請求についてのみ期限を延長できます。", field="suspension_id")
                if s.extended:
                    raise JukinetError("EXTENSION_ALREADY_MADE", "期限の延長は1回 (30日以内) までです。", field="suspension_id")
                if (today or today_jst()) > s.due_date:
                    raise JukinetError("EXTENSION_TOO_LATE", "期限を過ぎてからは延長できません。", field="suspension_id")
                due = s.due_date + timedelta(days=EXTENSION_DAYS)
                self.oplog.append(uow.conn, register, actor=actor, action="suspension_extend",
                                  purpose_code="suspension", case_ref=s.request_no,
                                  detail={"suspension_id": s.suspension_id, "reason": reason, "due": due.isoformat()})
                uow.conn.execute(update(st).where(st.c.suspension_id == s.suspension_id).values(
                    due_date=due, extended=1, extension_reason=reason, updated_at=now_utc()))
                uow.conn.execute(insert(SUSPENSION_STEPS[register]).values(
                    suspension_id=s.suspension_id, at=now_utc(), operator_id=actor.operator_id,
                    terminal_id=actor.terminal_id, from_status=s.status, to_status=s.status,
                    note_code=f"extend:{reason}"[:24]))
            return due

        return self._guard(actor, "suspension_extend", register, work)

    def suspensions(self, register: str, op, terminal_id, limit: int = 200) -> list:
        register = self._register(register)
        self._require(op, terminal_id, "handle", register, "suspensions")
        st = SUSPENSION_REQUESTS[register]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(st.c.suspension_id, st.c.request_no, st.c.kind, st.c.grounds,
                                           st.c.copy_sheets, st.c.copy_size, st.c.fee_yen, st.c.status,
                                           st.c.received_at, st.c.due_date, st.c.extended, st.c.extension_reason,
                                           st.c.decision, st.c.decision_reason, st.c.decided_by, st.c.decided_at,
                                           st.c.assignee)
                                    .order_by(st.c.received_at.desc()).limit(limit)).all()

    def suspension_steps(self, register: str, suspension_id: str) -> list:
        sp = SUSPENSION_STEPS[self._register(register)]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(sp).where(sp.c.suspension_id == suspension_id).order_by(sp.c.step_id)).all()

    def suspension_receipt(self, register: str, suspension_id: str, op, terminal_id, *, copies: int = 1) -> Issued:
        """利用停止請求受付票: the request, the deadline and the fees (手数料 無料, 複写費用)."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_receipt")

        def work():
            with self.registers.uow(register, write=False) as uow:
                s = self._suspension(uow.conn, register, suspension_id)

            def render(serial):
                with self.registers.uow(register) as uow:
                    person = uow.repo.get(s.juminhyo_code)
                    self.oplog.append(uow.conn, register, actor=actor, action="suspension_receipt",
                                      purpose_code="suspension", case_ref=s.request_no,
                                      detail={"suspension_id": suspension_id, "serial": serial})
                return forms.suspension_receipt(
                    person.name, suspension_id=suspension_id, kind=SUSPENSION_KINDS[s.kind],
                    grounds=SUSPENSION_GROUNDS[s.grounds], received=_jst_date(s.received_at), due=s.due_date,
                    copy_sheets=s.copy_sheets, copy_size=s.copy_size, unit_yen=COPY_FEE_YEN, fee_yen=s.fee_yen,
                    serial=serial, prefecture=self.config.prefecture_name, request_no=s.request_no,
                    issued=today_jst(), font=self.font,
                    register_label="本人確認情報" if register == "juki" else "附票本人確認情報")

            return self._issue("suspension_receipt", register, s.request_no, "suspension", copies, actor, render)

        return self._guard(actor, "suspension_receipt", register, work)

    def suspension_letter(self, register: str, suspension_id: str, op, terminal_id, *, copies: int = 1) -> Issued:
        """利用停止決定通知書 / 利用停止をしない旨の決定通知書 (after the decision)."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_letter")

        def work():
            with self.registers.uow(register, write=False) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status not in ("decided", "closed"):
                    raise JukinetError("SUSPENSION_NOT_DECIDED", "決定した請求にのみ決定通知書を作成できます。",
                                       field="suspension_id")
                rep = uow.conn.execute(select(MUNICIPAL_REPORTS[register].c.municipality_code).where(
                    MUNICIPAL_REPORTS[register].c.source == "suspension",
                    MUNICIPAL_REPORTS[register].c.case_id == suspension_id)).scalars().all()

            def render(serial):
                with self.registers.uow(register) as uow:
                    person = uow.repo.get(s.juminhyo_code)
                    self.oplog.append(uow.conn, register, actor=actor, action="suspension_letter",
                                      purpose_code="suspension", case_ref=s.request_no,
                                      detail={"suspension_id": suspension_id, "serial": serial})
                return forms.suspension_letter(
                    person.name, suspension_id=suspension_id, kind=SUSPENSION_KINDS[s.kind],
                    decision=s.decision, decision_label=SDECISIONS[s.decision],
                    reason=SDECISION_REASONS[s.decision_reason], received=_jst_date(s.received_at),
                    reported_to=[_municipality(c) for c in rep], serial=serial,
                    prefecture=self.config.prefecture_name, request_no=s.request_no, issued=today_jst(),
                    font=self.font)

            return self._issue("suspension_result", register, s.request_no, "suspension", copies, actor, render)

        return self._guard(actor, "suspension_letter", register, work)

    # ---- O5: 通報 to the municipality ------------------------------------------------------------

    def report_suspension_finding(self, register: str, suspension_id: str, municipality_code: str, kind: str,
                                  items: list[str], op, terminal_id) -> str:
        """The investigation of a 利用停止請求 found the record wrong: 通報 to the municipality (O5)."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "municipal_report")

        def work():
            if not re.fullmatch(r"\d{6}", municipality_code or "") or geo.find(municipality_code) is None:
                raise JukinetError("MUNICIPALITY_REQUIRED", "通報先の市町村コード (6桁) を入力してください。",
                                   field="municipality_code")
            if kind not in CORRECTION_KINDS:
                raise JukinetError("KIND_UNKNOWN", "誤りの種類 (訂正・追加・削除) を選択してください。", field="kind")
            its = [i for i in items if i in ITEMS[register]]
            if not its or len(its) != len(items):
                raise JukinetError("ITEMS_REQUIRED", "誤りのある項目を選択してください。", field="items")
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status != "investigating":
                    raise JukinetError("STEP_NOT_ALLOWED", "調査中の請求についてのみ通報できます。", field="suspension_id")
                rid = reports.create(uow.conn, register, source="suspension", case_id=suspension_id,
                                     request_no=s.request_no, juminhyo_code=s.juminhyo_code,
                                     municipality_code=municipality_code, kind=kind, items=its,
                                     created_by=actor.operator_id)
                self.oplog.append(uow.conn, register, actor=actor, action="municipal_report",
                                  purpose_code="suspension", case_ref=s.request_no,
                                  detail={"report_id": rid, "municipality_code": municipality_code, "items": its})
            return rid

        rid = self._guard(actor, "municipal_report", register, work)
        self._report_document_quietly(register, rid, actor)
        return rid

    def _report_document_quietly(self, register: str, rid: str, actor: Actor) -> None:
        """Print the 通報書 right after the 通報 is committed; a failure (e.g. no font) leaves the 通報
        queued for the CS and the document to be printed from the screen."""
        try:
            self._report_document(register, rid, actor, purpose="municipal_report")
        except Exception as e:  # noqa: BLE001 - the 通報 itself is committed; the code only is logged
            self._log_refusal(actor, "municipal_report_document",
                              e if isinstance(e, JukinetError) else JukinetError("FORM_FAILED", "帳票を作成できません。"),
                              register, {"report_id": rid})

    def _report_document(self, register: str, rid: str, actor: Actor, *, purpose: str) -> Issued:
        t = MUNICIPAL_REPORTS[register]
        with self.registers.uow(register, write=False) as uow:
            r = uow.conn.execute(select(t).where(t.c.report_id == (rid or ""))).first()
        if r is None:
            raise JukinetError("REPORT_NOT_FOUND", "この通報はありません。", field="report_id")
        statement = None
        if r.source == "correction":
            cr = CORRECTION_REQUESTS[register]
            q = select(cr.c.statement).where(cr.c.correction_id == r.case_id)
        else:
            sr = SUSPENSION_REQUESTS[register]
            q = select(sr.c.statement).where(sr.c.suspension_id == r.case_id)

        def render(serial):
            nonlocal statement
            with self.registers.uow(register) as uow:
                statement = uow.conn.execute(q).scalar()
                person = uow.repo.get(r.juminhyo_code)
                self.oplog.append(uow.conn, register, actor=actor, action="municipal_report_document",
                                  purpose_code=r.source, case_ref=r.request_no,
                                  detail={"report_id": rid, "serial": serial})
                uow.conn.execute(update(t).where(t.c.report_id == rid, t.c.form_serial.is_(None))
                                 .values(form_serial=serial))     # a reprint keeps the original's serial
            labels = ITEMS[register]
            its = r._mapping["items"].split(",")
            held = [(labels.get(i, i), _item_value(person, i)) for i in its]
            return forms.municipal_report(
                person.name, report_id=rid, juminhyo_code=r.juminhyo_code,
                municipality=_municipality(r.municipality_code), source=reports.SOURCES[r.source],
                case_id=r.case_id, kind=CORRECTION_KINDS.get(r.kind, r.kind), held=held, statement=statement or "",
                register_label="本人確認情報" if register == "juki" else "附票本人確認情報", serial=serial,
                prefecture=self.config.prefecture_name, request_no=r.request_no, issued=today_jst(), font=self.font)

        return self._issue("municipal_report", register, r.request_no, purpose, 1, actor, render)

    def report_document(self, register: str, rid: str, op, terminal_id) -> Issued:
        """The 通報書 (re)printed from the screen."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "municipal_report_document")
        with self.registers.uow(register, write=False) as uow:
            t = MUNICIPAL_REPORTS[register]
            serial = uow.conn.execute(select(t.c.form_serial).where(t.c.report_id == (rid or ""))).scalar()
        return self._guard(actor, "municipal_report_document", register,
                           lambda: self._report_document(register, rid, actor,
                                                         purpose="reissue" if serial else "municipal_report"))

    def municipal_reports(self, register: str, op, terminal_id, limit: int = 200) -> list:
        register = self._register(register)
        self._require(op, terminal_id, "registers", register, "municipal_reports")
        return reports.listing(self.registers, register, limit)

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


def _jst_date(v: datetime) -> date:
    return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(JST).date()


def _item_value(person, item: str) -> str:
    """The value the prefecture holds for one item (printed on the 通報書 only)."""
    if person is None:
        return ""
    v = getattr(person, item, None)
    if item == "kojin_bango":
        return "（記録あり）" if v else "（記録なし）"
    if isinstance(v, date):
        return wareki.to_wareki(v)
    if item == "sex":
        return {"1": "男", "2": "女"}.get(v, v or "")
    return "" if v is None else str(v)


def _municipality(code: Optional[str]) -> Optional[str]:
    m = geo.find(code)
    return m.name if m else code


def _jst(v) -> str:
    """An instant in the registers people read (CSV): 和暦 date and JST time (ADR 0042)."""
    return wareki.to_wareki_time(v)
