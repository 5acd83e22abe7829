"""Roles, scopes and permissions (A2, A3: least privilege; ADR 0010).

An operator holds one or more **roles**; an 業務担当者 also holds **scopes**: the registers
(``juki`` D1, ``fuhyo`` D2) and the affairs (事務) they may work in. A permission is granted only
when the role allows it *and*, for personal data, the register and the affair are in scope.

===========  ==================  ===============================================================
role         名称                may
===========  ==================  ===============================================================
admin        システム管理者      roster, terminals, enrollment links; no personal data
operator     業務担当者          personal data of the registers/affairs in scope (事務5 search …)
manager      管理責任者          the operation log of the registers in scope (keys are digests)
auditor      監査者              the operation log and its verification; no personal data
operations   運用担当者          health and status; never personal data (保守委託, A7)
maintenance  保守作業者          a contractor's maintenance worker at a terminal: health and status
                                 only, and only in a session witnessed by a staff member (G5,
                                 PIA II.4 委託事項2④; ADR 0041)
===========  ==================  ===============================================================

Separation of duties: ``admin`` cannot be combined with ``operator`` (who grants rights does not
use them), ``operations`` cannot be combined with any role that sees personal data, and
``maintenance`` (a contractor's worker) cannot be combined with any other role.

>>> check_roles(["operator", "manager"])
['operator', 'manager']
>>> check_roles(["admin", "operator"])
Traceback (most recent call last):
...
jukinet.errors.JukinetError: ROLE_CONFLICT: システム管理者と業務担当者は兼務できません。
>>> allowed("search", roles=["operator"], registers=["juki"], affairs=["search"], register="juki")
True
>>> allowed("search", roles=["operator"], registers=["fuhyo"], affairs=["search"], register="juki")
False
>>> allowed("search", roles=["auditor"], registers=["juki"], affairs=["search"], register="juki")
False
"""

from __future__ import annotations

from jukinet.errors import JukinetError

ROLES = {
    "admin": "システム管理者",
    "operator": "業務担当者",
    "manager": "管理責任者",
    "auditor": "監査者",
    "operations": "運用担当者",
    "maintenance": "保守作業者",
}

#: roles held by the contractor's people: such an operator can never be the witness of a
#: maintenance session (G5; ADR 0041)
CONTRACTOR_ROLES = frozenset({"operations", "maintenance"})

REGISTERS = {"juki": "本人確認情報 (D1)", "fuhyo": "附票本人確認情報 (D2)"}

#: 事務 (affairs) of PIA I.2; only 事務5 is served by this room, the others are scopes for later rooms.
AFFAIRS = {
    "search": "事務5 本人確認情報の検索",
    "provision": "事務2 提供・移転",
    "disclosure": "事務3 開示・訂正",
    "national": "事務4 全国サーバへの照会",
    "consistency": "事務6 整合性確認",
}

#: stated purposes of a search (III.3 その他): a code, never free text (no personal data in the log)
PURPOSES = {
    "inquiry": "住民・本人からの問合せへの対応",
    "verify": "本人確認情報の確認 (届出・申請の審査)",
    "correction": "訂正等の申出の調査",
    "consistency": "整合性確認の調査",
    "provision": "提供・移転の照会への対応",
    "audit": "監査のための確認",
}

PERMISSIONS = {
    "roster": {"admin"},            # operators, terminals, enrollment
    "search": {"operator"},         # 4情報 search and detail (register + affair scope)
    "oplog": {"manager", "auditor"},  # view the operation log
    "audit_verify": {"auditor"},    # verify the chains
    "ops": {"operations", "admin", "maintenance"},  # status pages without personal data
    "audit_report": {"manager"},    # monthly access-log analysis: generate, sign off (A4; ADR 0022)
    "audit_report_view": {"manager", "auditor"},  # ... list and download (read-only for auditors)
    "training": {"admin", "manager"},  # record an operator's security training (G1; ADR 0034)
    # governance records (G4, G5; ADR 0041)
    "incident": {"admin", "manager"},          # open an incident, record its steps, notifications, log links
    "incident_close": {"manager"},             # close an incident (管理責任者)
    "governance": {"admin", "manager"},        # record self-inspections, the contractor's roster and reports
    "governance_review": {"manager"},          # review (確認) them (管理責任者)
    "governance_view": {"admin", "manager", "auditor"},  # read the registers (監査者 read-only)
    # 媒体管理簿 (G2, G3; ADR 0040): no personal data in it — the contractor's 運用担当者 keeps the backup
    # media and does the weekly check; the 管理責任者's prior approval is a role check in the service
    "media": {"admin", "operator", "manager", "operations"},
    "media_view": {"admin", "operator", "manager", "operations", "auditor"},
}

#: permissions that touch a register's personal data and need the register/affair scope
SCOPED = {"search": "search"}


def split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def join(values) -> str:
    order = {v: i for i, v in enumerate([*ROLES, *REGISTERS, *AFFAIRS])}
    return ",".join(sorted(set(values), key=lambda v: (order.get(v, 99), v)))


def check_roles(roles: list[str]) -> list[str]:
    if not roles:
        raise JukinetError("ROLE_REQUIRED", "役割を1つ以上指定してください。", field="roles")
    for r in roles:
        if r not in ROLES:
            raise JukinetError("ROLE_UNKNOWN", "役割の指定が正しくありません。", field="roles")
    if "admin" in roles and "operator" in roles:
        raise JukinetError("ROLE_CONFLICT", "システム管理者と業務担当者は兼務できません。", field="roles")
    if "operations" in roles and set(roles) & {"operator", "manager", "auditor"}:
        raise JukinetError("ROLE_CONFLICT", "運用担当者は個人情報を扱う役割と兼務できません。", field="roles")
    if "maintenance" in roles and len(set(roles)) > 1:
        raise JukinetError("ROLE_CONFLICT", "保守作業者は他の役割と兼務できません。", field="roles")
    return list(roles)


def check_scopes(registers: list[str], affairs: list[str]) -> tuple[list[str], list[str]]:
    if any(r not in REGISTERS for r in registers):
        raise JukinetError("SCOPE_UNKNOWN", "担当ファイルの指定が正しくありません。", field="registers")
    if any(a not in AFFAIRS for a in affairs):
        raise JukinetError("SCOPE_UNKNOWN", "担当事務の指定が正しくありません。", field="affairs")
    return list(registers), list(affairs)


def allowed(permission: str, *, roles, registers=(), affairs=(), register: str | None = None) -> bool:
    if not set(roles) & PERMISSIONS.get(permission, set()):
        return False
    if permission in SCOPED:
        if SCOPED[permission] not in affairs:
            return False
        if register is not None and register not in registers:
            return False
    if permission == "oplog" and register is not None and "auditor" not in roles:
        return register in registers   # a manager sees the log of the registers in scope only
    return True
