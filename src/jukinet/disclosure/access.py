"""Who may do what in 事務3 (A3 least privilege; ADR 0020).

=============  ==========================================================================
what           who
=============  ==========================================================================
handle         業務担当者 (``operator``) with the affair ``disclosure`` and the register in
               scope: request intake and 突合, decisions, forms, corrections, inquiries
registers      the above, and 管理責任者・監査者: the form register (帳票管理簿) and the
               inquiry log (no personal data), screens and CSV
=============  ==========================================================================
"""

from __future__ import annotations


def can(op, what: str, register: str | None = None) -> bool:
    if op is None or op.status != "active":
        return False
    roles = set(op.roles)
    handle = "operator" in roles and "disclosure" in op.affairs and (
        register is None and bool(op.registers) or register in op.registers)
    if what == "handle":
        return handle
    if what == "registers":
        return handle or bool(roles & {"manager", "auditor"})
    return False
