"""Who may do what in 事務2/事務4 (A3 least privilege, A5; ADR 0018).

=================  =====================================================================
what               who
=================  =====================================================================
provide            業務担当者 (``operator``) with the affair ``provision`` and the register
                   in scope — single provision, batch provision (media output), asking
                   a manager for the approval of a large batch
national           業務担当者 with the affair ``national`` and the register in scope (事務4)
approve            管理責任者 (``manager``) with the register in scope; never their own request
catalogue          システム管理者 (``admin``): requesters, affairs, grants (P1)
records            管理責任者 and 監査者: the provision record and the media register
=================  =====================================================================

A refusal is a :class:`jukinet.security.model.Refused` (403, ``FORBIDDEN``); the services record
it in the provision record and the register's operation log.
"""

from __future__ import annotations

from jukinet.security.model import FORBIDDEN, Refused, refused

OPERATOR_AFFAIR = {"provide": "provision", "national": "national"}


def can(op, what: str, register: str | None = None) -> bool:
    if op is None or op.status != "active":
        return False
    roles = set(op.roles)
    if what in OPERATOR_AFFAIR:
        return ("operator" in roles and OPERATOR_AFFAIR[what] in op.affairs
                and (register is None or register in op.registers))
    if what == "approve":
        return "manager" in roles and (register is None or register in op.registers)
    if what == "catalogue":
        return "admin" in roles
    if what == "records":
        return bool(roles & {"manager", "auditor"}) and (
            register is None or "auditor" in roles or register in op.registers)
    return False


def require(op, what: str, register: str | None = None) -> None:
    if not can(op, what, register):
        raise refused(FORBIDDEN)


def registers_for(op, what: str) -> list[str]:
    return [r for r in ("juki", "fuhyo") if can(op, what, r)]


__all__ = ["can", "require", "registers_for", "Refused"]
