"""異動事由 (reasons for change) of both registers and the logical checks intake applies (U3).

The juki table follows 住民記録システム標準仕様書 §1.2.2 as DESIGN.md fixes it; the fuhyo table is
ours, of the same kind (ADR 0003). Each :class:`Reason` says its category (記載 / 修正 / 消除), what
must already be on file, and which items it may change. :func:`check_juki` and :func:`check_fuhyo`
are pure: they take what is on file and what was received, and either return the record to store
or raise :class:`ChangeRefused` with a stable code and a Japanese message that names the item,
never its value.

>>> sorted(JUKI_REASONS["転居"].may_change)
['address', 'oaza_code']
>>> sorted(r.name for r in JUKI_REASONS.values() if r.category == "消除")
['国内転出', '国外転出', '死亡', '職権消除']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Optional

from jukinet.domain.records import FuhyoRecord, JukiRecord
from jukinet.errors import JukinetError

#: Japanese labels of the items a notification carries (for messages; never the values).
FIELD_LABELS = {
    "juminhyo_code": "住民票コード",
    "name": "氏名",
    "name_kana": "ふりがな",
    "birth_date": "生年月日",
    "sex": "性別",
    "address": "住所",
    "oaza_code": "大字・字コード",
    "kojin_bango": "個人番号",
    "former_surname": "旧氏",
    "address_municipality_code": "住所市町村コード",
    "last_address": "最終住所",
    "old_juminhyo_code": "旧住民票コード",
    "fuhyo_municipality_code": "附票管理市町村コード",
    "status": "附票本人確認情報状態区分",
    "change_date": "異動年月日",
    "municipality_code": "市町村コード",
}

JUKI_ITEMS = ("name", "name_kana", "birth_date", "sex", "address", "oaza_code", "kojin_bango", "former_surname")
FUHYO_ITEMS = ("name", "name_kana", "birth_date", "sex", "address_municipality_code", "address",
               "last_address", "old_juminhyo_code", "status")


class ChangeRefused(JukinetError):
    """A notification that the reason table does not allow."""


# What must be on file before the change:
NO_CURRENT = "no_current"        # no current record with this code (a removed one may exist)
NO_RECORD = "no_record"          # no record with this code at all (出生)
CURRENT_HERE = "current_here"    # a current record, managed by the sender


@dataclass(frozen=True)
class Reason:
    """One 異動事由: its category, precondition, and the items it may change."""

    name: str
    category: str                 # 記載 | 修正 | 消除
    requires: str                 # NO_CURRENT | NO_RECORD | CURRENT_HERE
    may_change: frozenset = frozenset()
    former_surname: Optional[tuple[bool, bool]] = None  # (had one before, has one after) for 旧氏 reasons
    changes_code: bool = False    # 住民票コード変更


def _r(name, category, requires, may_change=(), **kw) -> Reason:
    return Reason(name, category, requires, frozenset(may_change), **kw)


_PERSON = ("name", "name_kana", "birth_date", "sex", "address", "oaza_code", "former_surname")

JUKI_REASONS: dict[str, Reason] = {r.name: r for r in (
    _r("国内転入", "記載", NO_CURRENT, JUKI_ITEMS),
    _r("国外転入", "記載", NO_CURRENT, JUKI_ITEMS),
    _r("職権記載", "記載", NO_CURRENT, JUKI_ITEMS),
    _r("出生", "記載", NO_RECORD, JUKI_ITEMS),
    _r("国内転出", "消除", CURRENT_HERE),
    _r("国外転出", "消除", CURRENT_HERE),
    _r("死亡", "消除", CURRENT_HERE),
    _r("職権消除", "消除", CURRENT_HERE),
    _r("転居", "修正", CURRENT_HERE, ("address", "oaza_code")),
    _r("軽微な修正", "修正", CURRENT_HERE, ("address", "oaza_code")),
    _r("職権修正", "修正", CURRENT_HERE, _PERSON),
    _r("誤記修正", "修正", CURRENT_HERE, _PERSON),
    _r("個人番号変更", "修正", CURRENT_HERE, ("kojin_bango",)),
    _r("住民票コード変更", "修正", CURRENT_HERE, (), changes_code=True),
    _r("旧氏記載", "修正", CURRENT_HERE, ("former_surname",), former_surname=(False, True)),
    _r("旧氏変更", "修正", CURRENT_HERE, ("former_surname",), former_surname=(True, True)),
    _r("旧氏削除", "修正", CURRENT_HERE, ("former_surname",), former_surname=(True, False)),
)}

#: 附票 reasons (ours; ADR 0003). 通知区分 is the category.
FUHYO_REASONS: dict[str, Reason] = {r.name: r for r in (
    _r("記載", "記載", NO_CURRENT, FUHYO_ITEMS),
    _r("住所変更", "修正", CURRENT_HERE, ("address_municipality_code", "address", "last_address")),
    _r("国外転出", "修正", CURRENT_HERE, ("address_municipality_code", "address", "last_address")),
    _r("職権修正", "修正", CURRENT_HERE,
       ("name", "name_kana", "birth_date", "sex", "address_municipality_code", "address", "last_address")),
    _r("住民票コード変更", "修正", CURRENT_HERE, ("old_juminhyo_code",), changes_code=True),
    _r("消除", "消除", CURRENT_HERE, ("status",)),
)}


def _refuse(code: str, message: str, field: str | None = None) -> ChangeRefused:
    return ChangeRefused(code, message, field=field)


def check_dates(change_date: date, birth_date: date, today: date) -> None:
    """異動年月日 is not in the future and not before 生年月日.

    >>> check_dates(date(2026, 11, 20), date(1980, 4, 1), date(2026, 11, 26))
    >>> check_dates(date(2026, 11, 27), date(1980, 4, 1), date(2026, 11, 26))
    Traceback (most recent call last):
    ...
    jukinet.domain.reasons.ChangeRefused: CHANGE_DATE_FUTURE: 異動年月日が未来の日付です。
    """
    if change_date > today:
        raise _refuse("CHANGE_DATE_FUTURE", "異動年月日が未来の日付です。", "change_date")
    if change_date < birth_date:
        raise _refuse("CHANGE_DATE_BEFORE_BIRTH", "異動年月日が生年月日より前です。", "change_date")
    if birth_date > today:
        raise _refuse("BIRTH_DATE_FUTURE", "生年月日が未来の日付です。", "birth_date")


def _changed(items, before, after) -> list[str]:
    return [f for f in items if getattr(before, f) != getattr(after, f)]


def _precondition(reason: Reason, current, any_record: bool, sender: str, manager_of) -> None:
    if reason.requires == NO_RECORD and any_record:
        raise _refuse("RECORD_EXISTS", "この住民票コードの記録が既にあります。", "juminhyo_code")
    if reason.requires == NO_CURRENT and current is not None:
        raise _refuse("ALREADY_CURRENT", "この住民票コードの現存する記録が既にあります。", "juminhyo_code")
    if reason.requires == CURRENT_HERE:
        if current is None:
            if any_record:
                raise _refuse("ALREADY_REMOVED", "対象の記録は既に消除されています。", "juminhyo_code")
            raise _refuse("NOT_FOUND", "対象の記録がありません。", "juminhyo_code")
        if manager_of(current) != sender:
            raise _refuse("OTHER_MUNICIPALITY", "他の市町村が管理する記録です。", "municipality_code")


def _check_items(reason: Reason, items, current, proposed) -> None:
    changed = _changed(items, current, proposed)
    forbidden = [f for f in changed if f not in reason.may_change]
    if forbidden:
        f = forbidden[0]
        raise _refuse("FORBIDDEN_CHANGE",
                      f"異動事由「{reason.name}」では{FIELD_LABELS[f]}を変更できません。", f)
    if reason.category == "修正" and not changed and not reason.changes_code:
        raise _refuse("NO_CHANGE", f"異動事由「{reason.name}」の変更内容がありません。")


def check_juki(reason_name: str, *, sender: str, current: Optional[JukiRecord], any_record: bool,
               proposed: JukiRecord, today: date, new_juminhyo_code: Optional[str] = None,
               new_code_in_use: bool = False) -> JukiRecord:
    """Check a 住民票 notification against the reason table; return the record to store.

    ``current`` is the current (not removed) record for the code, or None; ``any_record`` says
    whether any record, current or removed, exists for it. ``proposed`` is the record as received,
    with ``municipality_code`` set to the *sender* (never taken from the payload).
    """
    reason = JUKI_REASONS.get(reason_name)
    if reason is None:
        raise _refuse("REASON_UNKNOWN", "異動事由が正しくありません。", "reason")
    check_dates(proposed.change_date, proposed.birth_date, today)
    _precondition(reason, current, any_record, sender, lambda r: r.municipality_code)
    if reason.name == "出生" and proposed.birth_date != proposed.change_date:
        raise _refuse("BIRTH_DATE_MISMATCH", "出生の異動年月日は生年月日と同じ日でなければなりません。", "change_date")
    if new_juminhyo_code is not None and not reason.changes_code:
        raise _refuse("NEW_CODE_UNEXPECTED", "新しい住民票コードは住民票コード変更の場合のみ指定できます。",
                      "new_juminhyo_code")
    if reason.category == "記載":
        return proposed.replace(deleted=False, retention_flag=False)
    _check_items(reason, JUKI_ITEMS, current, proposed)
    if reason.former_surname is not None:
        before, after = current.former_surname is not None, proposed.former_surname is not None
        if (before, after) != reason.former_surname:
            raise _refuse("FORMER_SURNAME_STATE", f"異動事由「{reason.name}」と旧氏の記載状況が一致しません。",
                          "former_surname")
    if reason.changes_code:
        if new_juminhyo_code is None:
            raise _refuse("NEW_CODE_REQUIRED", "新しい住民票コードを指定してください。", "new_juminhyo_code")
        if new_juminhyo_code == current.juminhyo_code or new_code_in_use:
            raise _refuse("NEW_CODE_IN_USE", "新しい住民票コードは既に使用されています。", "new_juminhyo_code")
        return proposed.replace(juminhyo_code=new_juminhyo_code)
    if reason.category == "消除":
        return proposed.replace(deleted=True, retention_flag=True)
    return proposed


def check_fuhyo(reason_name: str, *, sender: str, current: Optional[FuhyoRecord], any_record: bool,
                proposed: FuhyoRecord, today: date, new_juminhyo_code: Optional[str] = None,
                new_code_in_use: bool = False) -> FuhyoRecord:
    """Check a 附票 notification against :data:`FUHYO_REASONS`; return the record to store.

    附票管理市町村コード must be the sender, for every reason.
    """
    reason = FUHYO_REASONS.get(reason_name)
    if reason is None:
        raise _refuse("REASON_UNKNOWN", "異動事由が正しくありません。", "reason")
    if proposed.fuhyo_municipality_code != sender:
        raise _refuse("FUHYO_MANAGER_MISMATCH", "附票管理市町村コードが送信元の市町村と一致しません。",
                      "fuhyo_municipality_code")
    check_dates(proposed.change_date, proposed.birth_date, today)
    _precondition(reason, current, any_record, sender, lambda r: r.fuhyo_municipality_code)
    expected_status = "消除" if reason.category == "消除" else "現存"
    if proposed.status != expected_status:
        raise _refuse("FUHYO_STATUS_MISMATCH", f"異動事由「{reason.name}」と附票本人確認情報状態区分が一致しません。",
                      "status")
    if reason.name == "国外転出" and (proposed.address is not None or proposed.address_municipality_code is not None
                                     or not proposed.last_address):
        raise _refuse("FUHYO_ABROAD_ADDRESS", "国外転出では住所を空とし、最終住所を記載してください。", "last_address")
    elif reason.name == "住所変更" and (proposed.address is None or proposed.last_address is not None):
        # a new address in Japan; a person returning from abroad loses the 最終住所 at the same time
        raise _refuse("FUHYO_ADDRESS_REQUIRED", "住所変更では新しい住所を記載し、最終住所は空としてください。", "address")
    elif reason.category != "消除" and (proposed.address is None) != (proposed.address_municipality_code is None):
        raise _refuse("FUHYO_ADDRESS_INCOMPLETE", "住所と住所市町村コードは両方を記載してください。", "address")
    if new_juminhyo_code is not None and not reason.changes_code:
        raise _refuse("NEW_CODE_UNEXPECTED", "新しい住民票コードは住民票コード変更の場合のみ指定できます。",
                      "new_juminhyo_code")
    notification_kind = reason.category
    if reason.category == "記載":
        return proposed.replace(reason=reason.name, notification_kind=notification_kind)
    _check_items(reason, FUHYO_ITEMS, current, proposed)
    if reason.changes_code:
        if new_juminhyo_code is None:
            raise _refuse("NEW_CODE_REQUIRED", "新しい住民票コードを指定してください。", "new_juminhyo_code")
        if new_juminhyo_code == current.juminhyo_code or new_code_in_use:
            raise _refuse("NEW_CODE_IN_USE", "新しい住民票コードは既に使用されています。", "new_juminhyo_code")
        if proposed.old_juminhyo_code != current.juminhyo_code:
            raise _refuse("OLD_CODE_MISMATCH", "旧住民票コードには変更前の住民票コードを記載してください。",
                          "old_juminhyo_code")
        return proposed.replace(juminhyo_code=new_juminhyo_code, reason=reason.name,
                                notification_kind=notification_kind)
    return proposed.replace(reason=reason.name, notification_kind=notification_kind)
