"""個人番号 on the operator screens (A3 least privilege): masked by default, shown in full only as a
deliberate, logged action, and only for a stated purpose that needs the number.

The rule itself (:func:`mask`, :data:`NUMBER_PURPOSES`) lives in :mod:`jukinet.security.number_display`
so that the provision side uses it too; it is re-exported here.

* :func:`mask` — every screen shows ``●●●●●●●●1234`` (the last four digits, enough to tell two
  numbers apart when talking with the resident).
* :data:`NUMBER_PURPOSES` — the stated purposes (:data:`jukinet.security.roles.PURPOSES`) whose work
  concerns the number itself: checking an application that carries it, investigating a request to
  correct it, a consistency check with a CS, answering a provision query about it. Not an inquiry
  by a resident (「住民・本人からの問合せへの対応」) and not an audit check.
* :func:`reveal` — the full number of one person (D1 only: D2 never holds it), in one transaction
  with its operation-log entry (``kojin_bango_reveal``, the 住民票コード as a keyed digest). A purpose
  that does not need the number is refused (:data:`NOT_NEEDED`); the caller logs the refusal.

>>> mask("123456789018")
'●●●●●●●●9018'
>>> mask(None), mask("")
('', '')
>>> revealable("inquiry"), revealable("correction"), revealable("")
(False, True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from jukinet.errors import JukinetError
from jukinet.search.service import validate_purpose
from jukinet.security import number_display as ND
from jukinet.security.model import Refused
from jukinet.security.oplog import Actor, OperationLog

ACTION = ND.ACTION
MASK = ND.MASK
NUMBER_PURPOSES = ND.NUMBER_PURPOSES
NOT_NEEDED = ND.NOT_NEEDED
mask = ND.mask
revealable = ND.revealable


@dataclass(frozen=True)
class RevealCommand:
    purpose_code: str
    juminhyo_code: str
    case_ref: Optional[str] = None


def reveal(cmd: RevealCommand, registers, oplog: OperationLog, actor: Actor) -> str:
    """The full 個人番号 of one person in D1, logged in the same transaction (fail closed)."""
    purpose_code, case_ref = validate_purpose(cmd.purpose_code, cmd.case_ref)
    code = (cmd.juminhyo_code or "").strip()
    if not re.fullmatch(r"\d{11}", code):
        raise JukinetError("JUMINHYO_CODE_FORMAT", "住民票コードの形式が正しくありません。", field="juminhyo_code")
    if not revealable(purpose_code):
        raise Refused(*NOT_NEEDED[:2], status=NOT_NEEDED[2], field="purpose_code")
    with registers.uow("juki", write=True) as uow:
        record = uow.repo.get(code)
        number = record.kojin_bango if record is not None else None
        oplog.append(uow.conn, "juki", actor=actor, action=ACTION, purpose_code=purpose_code, case_ref=case_ref,
                     keys={"juminhyo_code": code}, result_count=1 if number else 0)
    if not number:
        raise JukinetError("NOT_FOUND", "該当する個人番号はありません。")
    return number
