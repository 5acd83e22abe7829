"""How the 個人番号 is shown (A3 least privilege), for every door: screens, the terminal API, the
command line. It sits in ``security`` so that both 事務5 (search) and 事務2/4 (provision, national
query) use the one rule (ADR 0032, 0042).

* :func:`mask` — ``●●●●●●●●1234``: the last four digits only, enough to tell two numbers apart when
  talking with the resident.
* :data:`NUMBER_PURPOSES` — the stated purposes (:data:`jukinet.security.roles.PURPOSES`) whose work
  concerns the number itself: checking an application that carries it, investigating a request to
  correct it, a consistency check with a CS, answering a provision query about it. Not an inquiry by a
  resident (「住民・本人からの問合せへの対応」) and not an audit check.
* :data:`NOT_NEEDED` / :data:`NOT_HELD` — the coded answers to a request for the full number that the
  purpose does not need, or made of the 附票 file (D2 never holds a 個人番号).

>>> mask("123456789018")
'●●●●●●●●9018'
>>> mask(None), mask("")
('', '')
>>> revealable("inquiry"), revealable("correction"), revealable(""), revealable(None)
(False, True, False, False)
>>> mask_fields({"kojin_bango": "123456789018", "name": "x"})
{'kojin_bango': '●●●●●●●●9018', 'name': 'x'}
"""

from __future__ import annotations

from typing import Optional

MASK = "●"

#: the operation-log action of a deliberate display of the full number
ACTION = "kojin_bango_reveal"

#: stated purposes that need the full 個人番号 (see the module docstring)
NUMBER_PURPOSES = frozenset({"verify", "correction", "consistency", "provision"})

NOT_NEEDED = ("KOJIN_BANGO_NOT_NEEDED", "選択した検索の目的では、個人番号を表示できません。", 403)
NOT_HELD = ("KOJIN_BANGO_NOT_HELD", "附票本人確認情報には個人番号がありません。", 400)


def mask(number: Optional[str]) -> str:
    """``●●●●●●●●1234``: all but the last four digits hidden (idempotent)."""
    if not number:
        return ""
    return MASK * max(len(number) - 4, 0) + number[-4:]


def revealable(purpose_code: Optional[str]) -> bool:
    """Whether the stated purpose needs the full 個人番号."""
    return purpose_code in NUMBER_PURPOSES


def mask_fields(record: dict, field: str = "kojin_bango") -> dict:
    """A copy of ``record`` with its 個人番号 masked (other items untouched)."""
    if record.get(field):
        return {**record, field: mask(record[field])}
    return dict(record)


__all__ = ["ACTION", "MASK", "NUMBER_PURPOSES", "NOT_NEEDED", "NOT_HELD", "mask", "revealable", "mask_fields"]
