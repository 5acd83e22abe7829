"""事務3 services: request intake and 突合 (O1), disclosure forms, provision history (O3),
corrections (O2), 利用停止請求 (O4), 通報 to the municipality (O5), the form register (A5) and the
inquiry log (A10).

Each access to personal data is one transaction on the register's database that also appends the
register's operation-log entry (fail closed); a refusal is logged in a transaction of its own.
The form register and the inquiry log are in the admin database (no 本人確認情報).

**One module per concern, one class for the doors** (issue 13; ADR 0054):

======================  =========================================================================
``base``                config, registers, key ring, operation log; access check, refusal logging,
                        JST dates, :class:`Issued`, the kinds of error (shared by every part)
``form_register``       the form register (帳票管理簿, A5): serials, the register, 廃棄
``disclosures``         開示請求: intake and 突合 (the rules are there), decision, the disclosure form,
                        the provision-history form (O1, O3)
``reporting``           the 通報書 and the list of 通報 (O5; the 通報 outbox itself is ``reports``)
``corrections``         訂正等の申出 (O2)
``suspensions``         利用停止請求 (O4) and the 通報 of its finding (O5)
``inquiries``           the inquiry log (A10)
======================  =========================================================================

:class:`DisclosureService` composes them as **mixins**: each part is a class over
:class:`~jukinet.disclosure.base.DisclosureBase` deriving from the parts it builds on
(``disclosures`` and ``reporting`` print through ``form_register``; ``corrections`` and
``suspensions`` need a usable request from ``disclosures`` and print a 通報書 through
``reporting``), so each module imports what it calls. Mixins rather than collaborators because
the parts share one state and their private helpers (``_require``, ``_guard``, ``_issue``,
``_request``): the one object keeps every public method name and signature, and the web and CLI
keep calling ``inst.disclosure.<use case>``. The vocabularies the screens and the CLI read as
``service.X`` (``S.CORRECTION_KINDS`` …), ``IntakeCommand``, ``Issued``, ``today_jst`` and
``ITEMS`` are re-exported here.
"""

from __future__ import annotations

from jukinet import wareki
from jukinet.disclosure.base import (CORRECTION_KINDS, JST, DisclosureBase, Issued, now_utc, parse_date,
                                     today_jst)
from jukinet.disclosure.corrections import CSTATUS, DUE_DAYS, TRANSITIONS, Corrections
from jukinet.disclosure.disclosures import (DECISION_REASONS, DECISIONS, FOUR, MATCH, MISMATCH, OUTCOMES,
                                            Disclosures, IntakeCommand, IntakeResult)
from jukinet.disclosure.form_register import DISPOSAL, FORM_PREFIX, FORM_PURPOSES, FORM_TYPES, FormRegister
from jukinet.disclosure.inquiries import INQUIRY_CATEGORIES, INQUIRY_CHANNELS, Inquiries
from jukinet.disclosure.reporting import Reporting
from jukinet.disclosure.suspensions import (COPY_FEE_YEN, COPY_SIZES, EXTENSION_DAYS, EXTENSION_REASONS, FEE_YEN,
                                            KIND_GROUNDS, MAX_COPY_SHEETS, REQUEST_WINDOW_DAYS, SDECISION_REASONS,
                                            SDECISIONS, SSTATUS, STRANSITIONS, SUSPENSION_DUE_DAYS,
                                            SUSPENSION_GROUNDS, SUSPENSION_KINDS, Suspensions)
from jukinet.provision.items import ITEMS

__all__ = [
    "DisclosureService", "IntakeCommand", "IntakeResult", "Issued", "now_utc", "today_jst", "parse_date", "JST",
    "ITEMS", "wareki",
    # the parts
    "DisclosureBase", "FormRegister", "Disclosures", "Reporting", "Corrections", "Suspensions", "Inquiries",
    # O1
    "MATCH", "MISMATCH", "FOUR", "OUTCOMES", "DECISIONS", "DECISION_REASONS",
    # A5
    "FORM_TYPES", "FORM_PREFIX", "FORM_PURPOSES", "DISPOSAL",
    # O2
    "CORRECTION_KINDS", "CSTATUS", "TRANSITIONS", "DUE_DAYS",
    # O4
    "SUSPENSION_KINDS", "SUSPENSION_GROUNDS", "KIND_GROUNDS", "SSTATUS", "STRANSITIONS", "SDECISIONS",
    "SDECISION_REASONS", "EXTENSION_REASONS", "SUSPENSION_DUE_DAYS", "EXTENSION_DAYS", "REQUEST_WINDOW_DAYS",
    "FEE_YEN", "COPY_FEE_YEN", "COPY_SIZES", "MAX_COPY_SHEETS",
    # A10
    "INQUIRY_CHANNELS", "INQUIRY_CATEGORIES",
]


class DisclosureService(Corrections, Suspensions, Inquiries):
    """The 事務3 services of one installation: every use case of the parts above."""
