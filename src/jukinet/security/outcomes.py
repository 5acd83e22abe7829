"""Outcomes of an operation-log entry (A4): granted, refused — and input errors, which are not refusals.

A **refusal** (``refused``) is the system saying no to a right or a purpose: no permission, a register
or affair out of scope, a purpose that does not allow the operation, an unregistered terminal, a
failed login. It counts against the operator in the monthly analysis (flag (f) 拒否).

An **input error** (``invalid``) is a form the system could not read: a date written wrongly, a check
digit that does not add up, a search with no condition or too broad, a required field left empty.
Nothing was accessed; it is recorded (every request is logged) but is *not* a refusal and does not
count against the operator — a typo is not misconduct.

The outcome is a value of the existing ``outcome`` column (``String(10)``), so the entry hash covers
it like any other outcome and no schema change is needed. Entries written before this distinction
(input errors recorded as ``refused``) are told apart by their code: :func:`is_input_error_entry`.

>>> from jukinet.errors import JukinetError
>>> from jukinet.security.model import Refused
>>> outcome_for(JukinetError("DATE_FORMAT", "生年月日の形式が正しくありません。"))
'invalid'
>>> outcome_for(JukinetError("JUMINHYO_CODE_CHECKSUM", "…")), outcome_for(JukinetError("SEARCH_TOO_BROAD", "…"))
('invalid', 'invalid')
>>> outcome_for(JukinetError("AFFAIR_NOT_GRANTED", "…")), outcome_for(Refused("FORBIDDEN", "…"))
('refused', 'refused')
>>> outcome_for(Refused("PURPOSE_FORMAT", "…"))    # a Refused is always a refusal, whatever its code
'refused'
"""

from __future__ import annotations

from typing import Optional

from jukinet.errors import JukinetError
from jukinet.security.model import Refused

GRANTED = "granted"
REFUSED = "refused"
INVALID = "invalid"

#: 操作ログ・月次分析に表示する結果の名称
LABELS = {GRANTED: "許可", REFUSED: "拒否", INVALID: "入力誤り"}

#: codes that only say the input could not be read (suffixes), and the same by name
_INPUT_SUFFIXES = ("_FORMAT", "_CHECKSUM", "_LENGTH", "_RANGE", "_TOO_LONG")
_INPUT_CODES = frozenset({
    "SEARCH_TOO_BROAD", "INPUT_INVALID", "TOO_LONG", "FIELD_REQUIRED", "PURPOSE_REQUIRED", "REGISTER_REQUIRED",
    "NAME_REQUIRED", "ITEMS_REQUIRED", "FILE_REQUIRED", "FILE_EMPTY", "TARGET_REQUIRED", "ROLE_REQUIRED",
    "MUNICIPALITY_REQUIRED", "NEW_CODE_REQUIRED", "WAREKI_OUT_OF_RANGE", "MATCH_UNKNOWN", "TEXT_NOT_ENCODABLE",
})


def is_input_error(code: Optional[str]) -> bool:
    """True when ``code`` names an input error (a form that could not be read), not a refusal."""
    if not code:
        return False
    return code in _INPUT_CODES or code.endswith(_INPUT_SUFFIXES)


def outcome_for(err: JukinetError) -> str:
    """The outcome to log for a request that ended in ``err``: ``invalid`` or ``refused``.

    A :class:`~jukinet.security.model.Refused` (rights, session, terminal) is always a refusal; any
    other error is an input error only when its code says so — anything unknown stays a refusal.
    """
    if isinstance(err, Refused):
        return REFUSED
    return INVALID if is_input_error(err.code) else REFUSED


def outcome_for_code(code: Optional[str]) -> str:
    """The same, when only the code is known (e.g. a provision record's reason code)."""
    return INVALID if is_input_error(code) else REFUSED


def is_input_error_entry(outcome: str, code: Optional[str]) -> bool:
    """An entry that records an input error: ``invalid``, or ``refused`` with an input-error code
    (entries written before input errors had an outcome of their own)."""
    return outcome == INVALID or (outcome == REFUSED and is_input_error(code))


def is_refusal_entry(outcome: str, code: Optional[str]) -> bool:
    """An entry that records a refusal of rights or purpose (what flag (f) counts)."""
    return outcome == REFUSED and not is_input_error(code)
