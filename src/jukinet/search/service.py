"""事務5 services: 4情報 search and the detail view (S1, A3, A4).

Both take a command and the registers (the unit-of-work factory). For each register searched, one
transaction runs the query **and** appends the register's operation-log entry (who, terminal,
purpose, keyed digests of the keys, result count); if the entry cannot be written the transaction
fails and nothing is returned (fail closed).

* 氏名: kana (hiragana/katakana, any width) is searched on the 清音化 key (``name_seion``, D5);
  anything else on the 漢字氏名 as written (a space between surname and given name may be typed
  half- or full-width). ``exact`` or ``prefix``.
* 生年月日: one date, or a range (from/to). 性別: "1"/"2". 住所: prefix (the prefecture name may be
  left out for the own prefecture).
* At least one of 氏名, 生年月日, 住所 is required; 性別 alone is refused.
* Removed persons (消除者) only when asked. More than ``search_cap`` matches are **not listed**:
  the operator must narrow the conditions (least privilege: no browsing, A3).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Optional

from sqlalchemy.exc import SQLAlchemyError

from jukinet import kana
from jukinet.errors import JukinetError
from jukinet.search import queries
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.roles import PURPOSES, REGISTERS
from jukinet.store.faults import StorageUnavailable, is_storage_fault

_CASE_REF = re.compile(r"^[A-Za-z0-9\-]{0,32}$")
_SPACES = re.compile(r"\s+")
_PREF = re.compile(r"^.{2,3}[都道府県]")
_WIDE_DIGITS = str.maketrans("０１２３４５６７８９－", "0123456789-")


def _err(code: str, message: str, field: str) -> JukinetError:
    return JukinetError(code, message, field=field)


@dataclass(frozen=True)
class SearchCommand:
    purpose_code: str
    registers: tuple[str, ...] = ("juki",)
    name: Optional[str] = None
    name_match: str = "exact"           # exact | prefix
    birth_from: Optional[date] = None
    birth_to: Optional[date] = None
    sex: Optional[str] = None
    address: Optional[str] = None       # prefix
    include_removed: bool = False
    case_ref: Optional[str] = None
    page: int = 1


@dataclass(frozen=True)
class DetailCommand:
    purpose_code: str
    register: str
    juminhyo_code: str
    case_ref: Optional[str] = None


@dataclass(frozen=True)
class Hit:
    register: str
    juminhyo_code: str
    name: str
    name_kana: str
    birth_date: date
    sex: str
    address: Optional[str]
    removed: bool
    gaiji: bool
    sort_key: tuple = field(compare=False, repr=False, default=())
    status: str = ""   # 状態 as an operator reads it: 現存 / 消除 (住基), the 附票's own status


@dataclass
class RegisterResult:
    register: str
    count: int = 0
    over_cap: bool = False
    hits: list[Hit] = field(default_factory=list)


@dataclass
class SearchResult:
    command: SearchCommand
    page: int
    page_size: int
    cap: int
    registers: list[RegisterResult]

    @property
    def total(self) -> int:
        return sum(r.count for r in self.registers)

    @property
    def over_cap(self) -> bool:
        return any(r.over_cap for r in self.registers)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def page_hits(self) -> list[Hit]:
        if self.over_cap:
            return []
        hits = [h for r in self.registers for h in r.hits]
        hits.sort(key=lambda h: h.sort_key)
        start = (self.page - 1) * self.page_size
        return hits[start:start + self.page_size]


@dataclass
class DetailResult:
    register: str
    record: object
    history: list


def _as_date(v, field_name: str) -> Optional[date]:
    if v in (None, ""):
        return None
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v))
    except ValueError:
        raise _err("DATE_FORMAT", "生年月日の形式が正しくありません。", field_name)


def validate_purpose(purpose_code: str | None, case_ref: str | None) -> tuple[str, Optional[str]]:
    if purpose_code not in PURPOSES:
        raise _err("PURPOSE_REQUIRED", "検索の目的を選択してください。", "purpose_code")
    case_ref = (case_ref or "").strip() or None
    if case_ref is not None and not _CASE_REF.match(case_ref):
        raise _err("CASE_REF_FORMAT", "案件番号は英数字とハイフン32文字以内で入力してください。", "case_ref")
    return purpose_code, case_ref


@dataclass(frozen=True)
class _Plan:
    keys: dict
    params: dict
    detail: dict


def plan(cmd: SearchCommand, prefecture_name: str = "三重県") -> _Plan:
    """Validate a command and turn it into query parameters (and the keys to log as digests)."""
    validate_purpose(cmd.purpose_code, cmd.case_ref)
    if not cmd.registers or any(r not in REGISTERS for r in cmd.registers):
        raise _err("REGISTER_REQUIRED", "検索するファイルを選択してください。", "registers")
    if cmd.name_match not in ("exact", "prefix"):
        raise _err("MATCH_UNKNOWN", "氏名の一致方法が正しくありません。", "name_match")
    name = _SPACES.sub(" ", (cmd.name or "").strip())
    birth_from = _as_date(cmd.birth_from, "birth_from")
    birth_to = _as_date(cmd.birth_to, "birth_to")
    if birth_from and birth_to and birth_from > birth_to:
        raise _err("DATE_RANGE", "生年月日の範囲が正しくありません。", "birth_to")
    sex = cmd.sex or None
    if sex is not None and sex not in ("1", "2"):
        raise _err("SEX_FORMAT", "性別の指定が正しくありません。", "sex")
    address = (cmd.address or "").strip()
    if len(name) > 60 or len(address) > 120:
        raise _err("TOO_LONG", "検索条件が長すぎます。", "name" if len(name) > 60 else "address")
    if not (name or birth_from or birth_to or address):
        raise _err("SEARCH_TOO_BROAD", "氏名・生年月日・住所のいずれかを入力してください。", "name")
    if not isinstance(cmd.page, int) or cmd.page < 1:
        raise _err("PAGE_FORMAT", "ページの指定が正しくありません。", "page")
    params: dict = dict(name_prefix=cmd.name_match == "prefix", birth_from=birth_from, birth_to=birth_to, sex=sex,
                        include_removed=bool(cmd.include_removed))
    keys: dict = {"birth_from": birth_from, "birth_to": birth_to, "sex": sex}
    detail = {"name_match": cmd.name_match, "include_removed": bool(cmd.include_removed), "page": cmd.page}
    if name:
        if kana.is_kana(name):
            key = kana.seion(name)
            if not key:
                raise _err("KANA_FORMAT", "ふりがなはカタカナで入力してください。", "name")
            params["name_seion"] = key
            keys["name_seion"] = key
            detail["name_kind"] = "kana"
        else:
            params["names"] = sorted({name.replace(" ", "\u3000"), name})
            keys["name"] = name.replace(" ", "\u3000")
            detail["name_kind"] = "kanji"
    if address:
        forms = list(dict.fromkeys([address, address.translate(_WIDE_DIGITS)]))  # １３ and 13 both match
        variants = list(forms)
        if not _PREF.match(address) and not address.startswith(prefecture_name):
            variants += [prefecture_name + a for a in forms]
        params["addresses"] = variants
        keys["address"] = address
    return _Plan(keys, params, detail)


def _hit(register: str, row) -> Hit:
    m = row._mapping
    removed = bool(m["deleted"]) if register == "juki" else m["status"] != "現存"
    address = m["address"] if register == "juki" else (m["address"] or m["last_address"])
    bd = queries_date(m["birth_date"])
    status = ("消除" if removed else "現存") if register == "juki" else (m["status"] or "")
    # kana order (五十音順) of the 清音化 key, then 生年月日: the order an operator reads a list of names in
    return Hit(register, m["juminhyo_code"], m["name"], m["name_kana"], bd, m["sex"], address, removed,
               bool(m["gaiji_flag"]), (m["name_seion"] or "", bd, m["juminhyo_code"], register), status)


def queries_date(v) -> date:
    return date.fromisoformat(v) if isinstance(v, str) else v


@contextmanager
def _storage_errors():
    """A database error must not carry the search keys (its SQL parameters) into logs or tracebacks.
    A store that cannot take the search's log entry now (full, read-only, failing over) is the
    retryable 503 of :mod:`jukinet.store.faults`, not a refusal of the search."""
    try:
        yield
    except SQLAlchemyError as e:
        if is_storage_fault(e):
            raise StorageUnavailable() from None
        raise JukinetError("SEARCH_UNAVAILABLE", f"検索を実行できませんでした ({type(e).__name__})。") from None


def search(cmd: SearchCommand, registers, oplog: OperationLog, actor: Actor, *, cap: int = 200,
           page_size: int = 20, prefecture_name: str = "三重県") -> SearchResult:
    """Run the search on each register of the command, each in its own logged transaction."""
    p = plan(cmd, prefecture_name)
    results = []
    for register in cmd.registers:
        with _storage_errors(), registers.uow(register, write=True) as uow:
            dialect = uow.conn.dialect.name
            rows = uow.conn.execute(queries.build(register, dialect, limit=cap + 1, **p.params)).all()
            rr = RegisterResult(register)
            if len(rows) > cap:
                rr.over_cap, rr.count = True, cap + 1
            else:
                rr.hits = [_hit(register, r) for r in rows]
                rr.count = len(rr.hits)
            oplog.append(uow.conn, register, actor=actor, action="search", purpose_code=cmd.purpose_code,
                         case_ref=(cmd.case_ref or None), keys=p.keys, result_count=rr.count,
                         detail={**p.detail, "over_cap": rr.over_cap})
        results.append(rr)
    return SearchResult(cmd, cmd.page, page_size, cap, results)


def detail(cmd: DetailCommand, registers, oplog: OperationLog, actor: Actor) -> DetailResult:
    """The record of one person (current or removed) with every earlier version (履歴)."""
    validate_purpose(cmd.purpose_code, cmd.case_ref)
    if cmd.register not in REGISTERS:
        raise _err("REGISTER_REQUIRED", "ファイルの指定が正しくありません。", "register")
    code = (cmd.juminhyo_code or "").strip()
    if not re.fullmatch(r"\d{11}", code):
        raise _err("JUMINHYO_CODE_FORMAT", "住民票コードの形式が正しくありません。", "juminhyo_code")
    with _storage_errors(), registers.uow(cmd.register, write=True) as uow:
        record = uow.repo.get(code)
        history = uow.repo.history_of(code) if record is not None else []
        oplog.append(uow.conn, cmd.register, actor=actor, action="detail", purpose_code=cmd.purpose_code,
                     case_ref=cmd.case_ref or None, keys={"juminhyo_code": code},
                     result_count=(1 + len(history)) if record is not None else 0)
    if record is None:
        raise JukinetError("NOT_FOUND", "該当する本人確認情報はありません。")
    return DetailResult(cmd.register, record, list(reversed(history)))
