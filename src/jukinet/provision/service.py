"""事務2 and 事務4 services: single provision/transfer (P1–P3, P5, P6) and national queries (N1).

:meth:`ProvisionService.provide` takes a :class:`ProvideCommand` (requester, affair, keys, the
items wanted) and the operator; it

1. resolves the requester and the affair in the catalogue (unknown, retired, or not granted to that
   requester → refused), checks the operator's scope (affair ``provision`` and the register) and
   the items (only the affair's), and validates the keys (check digits, 個人番号 as a key only for a
   番号法 affair and never for 附票);
2. looks the person up in the affair's register — and, when nobody is found there, asks the
   national server (P3; the result is marked 県外 / 全国サーバ);
3. returns only the affair's items, with the 突合 of whatever 4情報 the requester sent;
4. writes the provision record and the register's operation-log entry **in the same transaction**
   as the read (fail closed: if they cannot be written, nothing is returned).

Every refusal is recorded too (its own transaction: record + log entry) and then raised as a
:class:`~jukinet.errors.JukinetError` with a stable code and a Japanese message; nothing is provided.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from jukinet import wareki
from jukinet.errors import JukinetError
from jukinet.provision import access, catalogue as C, kojin_bango_link as link
from jukinet.provision import lookup
from jukinet.provision.items import FOUR_LABELS, ITEMS, Keys, check_items, match, national_view, parse_keys
from jukinet.provision.national import NationalClient, NationalRefused, NationalUnavailable, query_body
from jukinet.provision.records import Digests, Entry, bind_keyring, write
from jukinet.keyring import KeyRing
from jukinet.security import number_display as ND
from jukinet.security.model import Refused
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.outcomes import outcome_for_code
from jukinet.security.roles import PURPOSES
from jukinet.store.repository import utcnow
import re
from jukinet.store.tables_provision import provision_catalogue_changes as changes
from sqlalchemy import func, select

log = logging.getLogger("jukinet.provision")

MESSAGES = {
    "provided": "提供しました。",
    "not_found": "該当する本人確認情報はありません。",
    "ambiguous": "複数の者が該当したため提供できません。性別・住所を加えて照会してください。",
}


@dataclass(frozen=True)
class ProvideCommand:
    requester_code: str
    affair_code: str
    juminhyo_code: Optional[str] = None
    kojin_bango: Optional[str] = None
    name: Optional[str] = None
    birth_date: object = None
    sex: Optional[str] = None
    address: Optional[str] = None
    items: Optional[list[str]] = None
    case_ref: Optional[str] = None

    def raw_keys(self) -> dict:
        return {k: str(v) for k, v in (("juminhyo_code", self.juminhyo_code), ("kojin_bango", self.kojin_bango),
                                       ("four_name", self.name), ("four_birth_date", self.birth_date),
                                       ("four_sex", self.sex), ("four_address", self.address)) if v not in (None, "")}


@dataclass
class ProvisionResult:
    register: str
    kind: str                                  # provision (提供) | transfer (移転)
    requester: C.Requester
    affair: C.Affair
    outcome: str                               # provided | not_found | ambiguous | failed
    message: str
    items: tuple[str, ...] = ()                # the affair's items asked for
    values: dict = field(default_factory=dict)  # item -> value (provided only)
    match: dict = field(default_factory=dict)  # 4情報 item -> 一致 | 不一致
    source: Optional[str] = None               # local | national
    prefecture: Optional[str] = None           # national answers: the person's prefecture code
    removed: bool = False
    number_included: bool = False
    number_note: Optional[str] = None
    number_code: Optional[str] = None          # P7: why the 個人番号 was refused for this person
    candidates: int = 0
    reason_code: Optional[str] = None
    record_id: Optional[int] = None

    @property
    def provided(self) -> bool:
        return self.outcome == "provided"

    def labelled(self) -> list[tuple[str, str, object]]:
        table = ITEMS[self.register]
        return [(i, table[i], self.values.get(i)) for i in self.items]

    def match_labelled(self) -> list[tuple[str, str]]:
        return [(FOUR_LABELS[k], v) for k, v in self.match.items()]


@dataclass(frozen=True)
class NationalQueryCommand:
    register: str
    purpose_code: str
    juminhyo_code: Optional[str] = None
    kojin_bango: Optional[str] = None
    name: Optional[str] = None
    birth_date: object = None
    sex: Optional[str] = None
    address: Optional[str] = None
    case_ref: Optional[str] = None
    #: the full 個人番号 in the results: only for a purpose that needs it (ADR 0042); masked otherwise
    reveal_kojin_bango: bool = False


@dataclass
class NationalQueryResult:
    register: str
    outcome: str
    message: str
    results: list = field(default_factory=list)
    record_id: Optional[int] = None


@dataclass
class _Attempt:
    """What is known of an attempt so far (for the refusal record)."""

    register: str = "juki"
    kind: str = "provision"
    requester_code: Optional[str] = None
    affair_code: Optional[str] = None
    key_kind: str = "none"
    keys: dict = field(default_factory=dict)
    case_ref: Optional[str] = None
    purpose_code: Optional[str] = "provision"


def _case_ref(v: Optional[str]) -> Optional[str]:
    v = (v or "").strip() or None
    if v is not None and not re.fullmatch(r"[A-Za-z0-9\-]{1,32}", v):
        raise JukinetError("CASE_REF_FORMAT", "案件番号は英数字とハイフン32文字以内で入力してください。", field="case_ref")
    return v


class ProvisionService:
    def __init__(self, config, registers, *, national: Optional[NationalClient] = None,
                 keyring: Optional[KeyRing] = None):
        self.config = config
        self.registers = registers
        self.keyring = keyring or KeyRing(config.data_dir)
        self.oplog = OperationLog(self.keyring, config.data_dir)
        self.digests = Digests(self.keyring)
        self.national = national or NationalClient(config)
        self.temp = link.temp_store(config, self.keyring)
        self._catalogue: Optional[tuple] = None
        bind_keyring([registers.engine(r) for r in ("juki", "fuhyo")], self.keyring)   # not an open: digests only

    # ---- catalogue -----------------------------------------------------------------------------

    def catalogue(self) -> C.Spec:
        """The catalogue, re-read whenever it changed (every change adds a row to its change history)."""
        with self.registers.admin_tx(write=False) as conn:
            version = conn.execute(select(func.max(changes.c.change_id), func.count())).one()
            version = tuple(version)
            cached = self._catalogue
            if cached is not None and cached[0] == version:
                return cached[1]
            spec = C.read(conn)
        self._catalogue = (version, spec)
        return spec

    def resolve(self, requester_code: str, affair_code: str, spec: Optional[C.Spec] = None,
                att: Optional[_Attempt] = None) -> tuple[C.Requester, C.Affair]:
        spec = spec or self.catalogue()
        r = spec.requesters.get(requester_code or "")
        a = spec.affairs.get(affair_code or "")
        if att is not None:
            att.requester_code = r.code if r else None
            att.affair_code = a.code if a else None
            if a is not None:
                att.register = a.register
                if r is not None:
                    att.kind = "transfer" if r.transfer else "provision"
        if r is None:
            raise JukinetError("REQUESTER_UNKNOWN", "提供先・移転先の指定が正しくありません。", field="requester_code")
        if r.status != "active":
            raise JukinetError("REQUESTER_RETIRED", "この提供先・移転先は現在登録されていません。", field="requester_code")
        if a is None:
            raise JukinetError("AFFAIR_UNKNOWN", "事務の指定が正しくありません。", field="affair_code")
        if a.status != "active":
            raise JukinetError("AFFAIR_RETIRED", "この事務は現在提供の対象ではありません。", field="affair_code")
        if (r.code, a.code) not in spec.grants:
            raise JukinetError("AFFAIR_NOT_GRANTED", "この提供先・移転先には、指定された事務での提供が認められていません。",
                               field="affair_code")
        return r, a

    # ---- records -------------------------------------------------------------------------------

    def _entry(self, att: _Attempt, actor: Actor, channel: str, now: datetime, **kw) -> Entry:
        base = dict(at=now, operator_id=actor.operator_id, terminal_id=actor.terminal_id, channel=channel,
                    kind=att.kind, requester_code=att.requester_code, affair_code=att.affair_code,
                    purpose_code=att.purpose_code, case_ref=att.case_ref, key_kind=att.key_kind,
                    keys_digest=self.digests.keys(att.keys), person_digest=None, source=None, outcome="refused",
                    reason_code=None, items=(), number_included=False, match_result=None)
        base.update(kw)
        return Entry(**base)

    def _log_and_write(self, conn, att: _Attempt, actor: Actor, channel: str, now: datetime, *, action: str,
                       result_count: int, **kw) -> int:
        outcome = kw.get("outcome", "refused")
        seq = self.oplog.append(conn, att.register, actor=actor, action=action,
                                outcome=outcome_for_code(kw.get("reason_code")) if outcome == "refused" else "granted",
                                purpose_code=att.purpose_code, case_ref=att.case_ref, keys=att.keys,
                                result_count=result_count, now=now,
                                detail={"kind": att.kind, "requester": att.requester_code, "affair": att.affair_code,
                                        "outcome": outcome, "channel": channel,
                                        **({"code": kw["reason_code"]} if kw.get("reason_code") else {}),
                                        **({"items": ",".join(kw["items"])} if kw.get("items") else {}),
                                        **({"source": kw["source"]} if kw.get("source") else {}),
                                        **({"number_included": True} if kw.get("number_included") else {})})
        return write(conn, att.register, self._entry(att, actor, channel, now, oplog_seq=seq, **kw))

    def record_refusal(self, att: _Attempt, actor: Actor, channel: str, err: JukinetError, *,
                       action: str = "provision", now: Optional[datetime] = None, **kw) -> None:
        """A refused attempt: provision record + operation log, in a transaction of its own."""
        now = now or utcnow()
        try:
            with self.registers.uow(att.register) as uow:
                self._log_and_write(uow.conn, att, actor, channel, now, action=action, result_count=0,
                                    outcome="refused", reason_code=err.code[:40], **kw)
        except Exception as e:  # noqa: BLE001 - the attempt is refused anyway; the failure is reported
            log.error("provision refusal not recorded: %s", type(e).__name__)

    # ---- single provision (P2, P3, P5, P6) -------------------------------------------------------

    def provide(self, cmd: ProvideCommand, op, terminal_id: Optional[str], *, channel: str = "terminal",
                now: Optional[datetime] = None) -> ProvisionResult:
        now = now or utcnow()
        actor = Actor(op.operator_id if op is not None else None, terminal_id)
        att = _Attempt(keys=cmd.raw_keys())
        try:
            att.case_ref = _case_ref(cmd.case_ref)
            spec = self.catalogue()
            try:
                requester, affair = self.resolve(cmd.requester_code, cmd.affair_code, spec, att)
            finally:
                access.require(op, "provide", att.register if att.affair_code else None)
            items = check_items(affair.register, affair.items, cmd.items)
            keys = parse_keys(juminhyo_code=cmd.juminhyo_code, kojin_bango=cmd.kojin_bango, name=cmd.name,
                              birth_date=cmd.birth_date, sex=cmd.sex, address=cmd.address)
            att.key_kind, att.keys = keys.kind, keys.digest_keys()
            check_key_allowed(keys, affair)
        except JukinetError as e:
            self.record_refusal(att, actor, channel, e, now=now)
            raise
        register = affair.register
        with self.registers.uow(register) as uow:
            found = lookup.find(uow.conn, register, keys)
            if found or not self.config.provision.national_fallback:
                return self._finish(uow.conn, att, actor, channel, now, requester, affair, items, keys, found,
                                    source="local")
        try:
            answers = self.national.query(register, query_body(keys))
        except (NationalUnavailable, NationalRefused) as e:
            with self.registers.uow(register) as uow:
                rid = self._log_and_write(uow.conn, att, actor, channel, now, action="provision", result_count=0,
                                          outcome="failed", reason_code=e.code, source="national")
            return ProvisionResult(register, att.kind, requester, affair, "failed", e.message, items,
                                   reason_code=e.code, source="national", record_id=rid)
        views = lookup.narrow([national_view(register, d) for d in answers], keys.four, register)
        with self.registers.uow(register) as uow:
            return self._finish(uow.conn, att, actor, channel, now, requester, affair, items, keys, views,
                                source="national")

    def _finish(self, conn, att, actor, channel, now, requester, affair, items, keys: Keys, found: list, *,
                source: str) -> ProvisionResult:
        register = affair.register
        res = ProvisionResult(register, att.kind, requester, affair, "not_found", MESSAGES["not_found"], items,
                              source=source if found else None, candidates=len(found))
        person = None
        if len(found) > 1:
            res.outcome, res.message = "ambiguous", MESSAGES["ambiguous"]
        elif len(found) == 1:
            view = found[0]
            person = view.get("juminhyo_code")
            res.outcome, res.message = "provided", MESSAGES["provided"]
            res.values = {i: view.get(i) for i in items}
            res.match = match(view, keys.four)
            res.removed = bool(view.get("removed"))
            res.prefecture = view.get("prefecture") if source == "national" else None
            if "kojin_bango" in items and register == "fuhyo":
                res.values["kojin_bango"] = None
                if source == "national":
                    res.number_note = "県外の者の個人番号は、附票の提供に併せて提供できません。"
                else:
                    ref = f"P{wareki.japan_stamp(now, '%Y%m%d%H%M%S')}-{secrets.token_hex(4)}"   # JST (ADR 0042)
                    fetched = link.fetch(self.registers, self.oplog, self.temp, fuhyo_conn=conn, codes=[person],
                                         affair=affair, requester_code=requester.code, actor=actor, ref=ref,
                                         window_days=self.config.provision.kojin_bango_temp_days, now=now)
                    try:
                        res.values["kojin_bango"] = fetched.numbers.get(person)
                        link.record_receipt(conn, self.oplog, fetched, affair=affair, requester_code=requester.code,
                                            actor=actor, provided=1 if fetched.numbers else 0, now=now)
                    except Exception:
                        link.discard(self.temp, fetched)
                        raise
                    if person in fetched.refused:
                        refused = link.refusal(fetched.refused[person])
                        res.number_code, res.number_note = refused.code, refused.message
                    elif res.values["kojin_bango"] is None:
                        res.number_note = "本人確認情報ファイルに個人番号の記録がありません。"
            res.number_included = bool(res.values.get("kojin_bango"))
        provided_items = tuple(i for i in items if res.values.get(i) not in (None, ""))
        res.record_id = self._log_and_write(
            conn, att, actor, channel, now, action="provision", result_count=1 if res.provided else len(found),
            outcome=res.outcome, person_digest=self.digests.person(person), source=source if found else None,
            items=provided_items if res.provided else (), number_included=res.number_included,
            match_result=res.match or None, reason_code=res.number_code)
        return res

    # ---- national query (N1, 事務4) -------------------------------------------------------------

    def national_query(self, cmd: NationalQueryCommand, op, terminal_id: Optional[str], *,
                       channel: str = "terminal", now: Optional[datetime] = None) -> NationalQueryResult:
        now = now or utcnow()
        actor = Actor(op.operator_id if op is not None else None, terminal_id)
        reg = cmd.register if cmd.register in ("juki", "fuhyo") else "juki"
        att = _Attempt(register=reg, kind="national_query", purpose_code=None,
                       keys={k: str(v) for k, v in (("juminhyo_code", cmd.juminhyo_code), ("kojin_bango", cmd.kojin_bango),
                                                    ("four_name", cmd.name), ("four_birth_date", cmd.birth_date),
                                                    ("four_sex", cmd.sex), ("four_address", cmd.address))
                             if v not in (None, "")})
        try:
            if cmd.register not in ("juki", "fuhyo"):
                raise JukinetError("REGISTER_REQUIRED", "照会するファイルを選択してください。", field="register")
            access.require(op, "national", reg)
            if cmd.purpose_code not in PURPOSES:
                raise JukinetError("PURPOSE_REQUIRED", "照会の目的を選択してください。", field="purpose_code")
            att.purpose_code = cmd.purpose_code
            att.case_ref = _case_ref(cmd.case_ref)
            keys = parse_keys(juminhyo_code=cmd.juminhyo_code, kojin_bango=cmd.kojin_bango, name=cmd.name,
                              birth_date=cmd.birth_date, sex=cmd.sex, address=cmd.address)
            att.key_kind, att.keys = keys.kind, keys.digest_keys()
            if keys.kind == "kojin_bango" and reg == "fuhyo":
                raise JukinetError("KEY_NOT_ALLOWED", "附票全国サーバには個人番号で照会できません。", field="kojin_bango")
            if cmd.reveal_kojin_bango and reg == "fuhyo":
                raise JukinetError(*ND.NOT_HELD[:2], field="reveal_kojin_bango")
            if cmd.reveal_kojin_bango and not ND.revealable(cmd.purpose_code):
                raise Refused(*ND.NOT_NEEDED[:2], status=ND.NOT_NEEDED[2], field="reveal_kojin_bango")
        except JukinetError as e:
            self.record_refusal(att, actor, channel, e, action="national_query", now=now)
            raise
        try:
            answers = self.national.query(reg, query_body(keys))
        except (NationalUnavailable, NationalRefused) as e:
            with self.registers.uow(reg) as uow:
                rid = self._log_and_write(uow.conn, att, actor, channel, now, action="national_query",
                                          result_count=0, outcome="failed", reason_code=e.code, source="national")
            return NationalQueryResult(reg, "failed", e.message, record_id=rid)
        views = [national_view(reg, d) for d in answers]
        revealed = cmd.reveal_kojin_bango and any(v.get("kojin_bango") for v in views)
        outcome = "provided" if views else "not_found"
        with self.registers.uow(reg) as uow:
            rid = self._log_and_write(
                uow.conn, att, actor, channel, now, action="national_query", result_count=len(views), outcome=outcome,
                source="national", person_digest=self.digests.person(views[0]["juminhyo_code"]) if len(views) == 1 else None,
                items=tuple(sorted({k for v in views for k, x in v.items() if x not in (None, "") and k in ITEMS[reg]})),
                number_included=revealed)
        if not cmd.reveal_kojin_bango:
            views = [ND.mask_fields(v) for v in views]
        msg = f"{len(views)} 件の本人確認情報を受領しました。" if views else "全国サーバに該当する本人確認情報はありません。"
        return NationalQueryResult(reg, outcome, msg, views, rid)

    def close(self) -> None:
        self.national.close()


def check_key_allowed(keys: Keys, affair: C.Affair) -> None:
    """個人番号 as a search key: only for a 番号法 affair, and never for 附票 (D2 has no 個人番号)."""
    if keys.kind != "kojin_bango":
        return
    if affair.register == "fuhyo":
        raise JukinetError("KEY_NOT_ALLOWED", "附票本人確認情報は個人番号で照会できません。", field="kojin_bango")
    if not affair.kojin_bango_allowed:
        raise JukinetError("KEY_NOT_ALLOWED", "この事務では個人番号を照会に使えません (番号法の根拠がありません)。",
                           field="kojin_bango")


__all__ = ["ProvisionService", "ProvideCommand", "ProvisionResult", "NationalQueryCommand", "NationalQueryResult",
           "Refused", "check_key_allowed"]
