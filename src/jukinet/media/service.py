"""媒体管理簿 — the media register and the lifecycle of each medium (G2, G3; PIA III.4, III.5, III.7;
ADR 0040).

Every medium the office keeps or hands out is one entry of ``media_items`` with its medium, label,
location (保管場所), custodian and status, and every movement is a row of ``media_movements``:

==========  =====================================================================================
backup      a backup file (``jukinet backup``) copied onto a medium: registered from the file itself
            — a file that is not a jukinet backup, or a damaged one, is refused (``MEDIA_NOT_A_BACKUP``)
result      the result medium of a batch provision (``provision_media``): entered at its handover to
            the requesting body (受渡し) after the file on it is virus-checked and found to be the
            very file written (SHA-256); its return (返却) and destruction recorded
incoming    a medium brought in (a conditions file): virus-checked before it is registered
==========  =====================================================================================

The **weekly check** (週次点検) compares the register with what is in the vault: the media found are
listed, and the check records who, when, the media expected, found, and each discrepancy (missing,
not in the register, not expected in the vault). Weeks without a check are overdue (monthly report).

Retiring a damaged or worn medium (破損・耐用超過: it stays in the vault, III.4) and destroying a
medium (廃棄: format, crush, incinerate, shred; III.7 R3) each need the **管理責任者's prior
approval** (``media_approvals``), given for that medium and that action and used once; an approval
by someone who is not a 管理責任者 is refused (``MEDIA_APPROVER_NOT_MANAGER``).

Every change is one admin transaction with its operation-log entry; every refusal is coded, changes
nothing and is logged. No 本人確認情報 is in the register (ADR 0004).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import func, insert, select, update

from jukinet import text
from jukinet.audit import media_checks as MC
from jukinet.backup.container import check_file
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.security.model import Operator
from jukinet.security.oplog import Actor
from jukinet.security.service import Security
from jukinet.store.tables_disclosure import form_register
from jukinet.store.tables_media import media_approvals, media_checks, media_items, media_movements, media_scans
from jukinet.store.tables_provision import provision_media
from jukinet.viruscheck import VirusScanner, scan_and_record

MEDIUMS = {"lto": "LTOテープ", "dvd": "DVD-R", "bd": "BD-R", "usb": "USBメモリ (フラッシュメモリ)", "hdd": "外付けHDD",
           "paper": "紙", "other": "その他"}
KINDS = {"backup": "バックアップ媒体", "result": "一括提供 結果媒体", "incoming": "持込媒体", "form": "帳票"}
STATUSES = {"in_vault": "保管中", "out": "持出中", "handed_over": "受渡し済", "retired": "使用停止 (保管庫に保管)",
            "destroyed": "廃棄済"}
MOVEMENTS = {"register": "登録", "move": "保管場所の移動", "checkout": "持出", "checkin": "持出からの返却",
             "handover": "依頼元への受渡し", "return": "依頼元からの返却", "retire": "使用停止 (破損・耐用超過)",
             "destroy": "廃棄"}
METHODS = {"format": "専用ソフトによるフォーマット", "crush": "物理的粉砕", "incinerate": "焼却", "shred": "裁断"}
APPROVAL_ACTIONS = {"retire": "使用停止 (破損・耐用超過)", "destroy": "廃棄"}
#: statuses in which a medium is expected in the vault at the weekly check
IN_VAULT = ("in_vault", "retired")

UNKNOWN = ("MEDIA_UNKNOWN", "媒体管理簿に登録されていない媒体です。")


def _err(code: str, message: str, field: Optional[str] = None) -> JukinetError:
    return JukinetError(code, message, field=field)


def _text(value, label: str, field: str, *, required: bool = True, limit: int = 100) -> Optional[str]:
    v = " ".join(str(value or "").split())
    if not v:
        if required:
            raise _err("MEDIA_INPUT_REQUIRED", f"{label}を入力してください。", field)
        return None
    if len(v) > limit:
        raise _err("MEDIA_INPUT_TOO_LONG", f"{label}は{limit}文字以内で入力してください。", field)
    text.check(v, label, field=field)
    return v


def _file_digest(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
            n += len(b)
    return h.hexdigest(), n


@dataclass
class CheckResult:
    check_id: int
    week: str
    expected: int
    found: int
    discrepancies: list


class MediaService:
    def __init__(self, config: Config, registers, security: Security, clock: Callable[[], datetime] | None = None):
        self.config = config
        self.cfg = config.media
        self.registers = registers
        self.security = security
        self.oplog = security.oplog
        self.scanner = VirusScanner(self.cfg, config.resolve)
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    # ---- who may ------------------------------------------------------------------------------

    def operator(self, operator_id: Optional[str]) -> Operator:
        """The acting operator of a CLI command (``--by``): registered and active."""
        op = self.security.get_operator(operator_id) if operator_id else None
        if op is None or op.status != "active":
            err = _err("OPERATOR_NOT_FOUND", "操作者が見つからないか、利用中ではありません。", "by")
            self.security.log_refusal(Actor(operator_id if op else None, None), "media", err)
            raise err
        return op

    def _guarded(self, op: Operator, terminal_id: Optional[str], permission: str, action: str, work, *,
                 detail: Optional[dict] = None):
        self.security.require(op, terminal_id, permission, action)
        actor = Actor(op.operator_id, terminal_id)
        try:
            return work(actor)
        except JukinetError as e:
            self.security.log_refusal(actor, action, e, detail=detail)
            raise

    # ---- reading ------------------------------------------------------------------------------

    def items(self, *, status: Optional[str] = None, kind: Optional[str] = None, limit: int = 500) -> list:
        t = media_items
        q = select(t).order_by(t.c.registered_at.desc(), t.c.media_id).limit(limit)
        if status:
            q = q.where(t.c.status == status)
        if kind:
            q = q.where(t.c.kind == kind)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def item(self, media_id: str):
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(media_items).where(media_items.c.media_id == media_id)).first()

    def movements(self, media_id: Optional[str] = None, limit: int = 200) -> list:
        t = media_movements
        q = select(t).order_by(t.c.at.desc(), t.c.movement_id.desc()).limit(limit)
        if media_id:
            q = q.where(t.c.media_id == media_id)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def checks(self, limit: int = 60) -> list:
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(media_checks).order_by(media_checks.c.checked_at.desc()).limit(limit)).all()

    def approvals(self, limit: int = 100) -> list:
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(media_approvals).order_by(media_approvals.c.approved_at.desc())
                                .limit(limit)).all()

    def scans(self, limit: int = 100) -> list:
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(media_scans).order_by(media_scans.c.at.desc(), media_scans.c.scan_id.desc())
                                .limit(limit)).all()

    def check_status(self, now: Optional[datetime] = None) -> dict:
        """The last weekly check and whether the next one is overdue (``check_interval_days``)."""
        now = now or self.clock()
        with self.registers.admin_tx(write=False) as conn:
            last = conn.execute(select(media_checks).order_by(media_checks.c.checked_at.desc()).limit(1)).first()
            in_vault = conn.execute(select(func.count()).select_from(media_items)
                                    .where(media_items.c.status.in_(IN_VAULT))).scalar_one()
        at = last.checked_at if last else None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        days = (now - at).days if at else None
        return {"last": last, "last_at": at, "days_since": days, "in_vault": in_vault,
                "overdue": at is None or (now - at).total_seconds() > self.cfg.check_interval_days * 86400}

    # ---- registration -------------------------------------------------------------------------

    def _new_id(self, prefix: str, now: datetime) -> str:
        return f"{prefix}{now:%Y%m%d}-{secrets.token_hex(3).upper()}"

    def _insert(self, conn, actor: Actor, now: datetime, **values) -> None:
        label = values["label"]
        if conn.execute(select(func.count()).select_from(media_items).where(
                media_items.c.label == label, media_items.c.status != "destroyed")).scalar_one():
            raise _err("MEDIA_LABEL_EXISTS", "同じラベルの媒体が既に管理簿にあります。", "label")
        conn.execute(insert(media_items).values(registered_at=now, registered_by=actor.operator_id, updated_at=now,
                                                **values))
        conn.execute(insert(media_movements).values(
            media_id=values["media_id"], at=now, operator_id=actor.operator_id, kind="register",
            to_location=values["location"], counterpart=values.get("requester_code")))

    def _common(self, medium: str, label: str, location: str, custodian: str) -> tuple[str, str, str, str]:
        if medium not in MEDIUMS:
            raise _err("MEDIA_MEDIUM_UNKNOWN", "媒体の種類を選択してください。", "medium")
        label = _text(label, "ラベル", "label")
        location = _text(location, "保管場所", "location")
        custodian = _text(custodian, "管理者", "custodian", limit=32)
        return medium, label, location, custodian

    def _custodian_exists(self, custodian: str) -> None:
        if self.security.get_operator(custodian) is None:
            raise _err("MEDIA_CUSTODIAN_UNKNOWN", "管理者が操作者名簿にありません。", "custodian")

    def register_backup(self, op: Operator, terminal_id: Optional[str], backup_file: Path, *, medium: str,
                        label: str, location: str, custodian: str, note: str = "") -> str:
        """Enter a backup medium from the backup file written on it: refused unless the file is a whole
        ``jukinet.backup/1`` file (framing and trailer hash checked, no key needed)."""

        def work(actor: Actor) -> str:
            m, lb, loc, cust = self._common(medium, label, location, custodian)
            self._custodian_exists(cust)
            nt = _text(note, "備考", "note", required=False, limit=500)
            try:
                with open(backup_file, "rb") as f:
                    info = check_file(f)
                sha, size = _file_digest(Path(backup_file))
            except (JukinetError, OSError, ValueError, KeyError):
                raise _err("MEDIA_NOT_A_BACKUP", "jukinet のバックアップファイルではないか、欠けています。"
                                                 "バックアップ媒体として登録できません。", "file") from None
            header = info["header"]
            backup_id = str(header.get("backup_id") or "")[:40]
            if not backup_id:
                raise _err("MEDIA_NOT_A_BACKUP", "jukinet のバックアップファイルではありません。", "file")
            now = self.clock()
            mid = self._new_id("MB", now)
            with self.registers.admin_tx() as conn:
                self._insert(conn, actor, now, media_id=mid, kind="backup", medium=m, label=lb, location=loc,
                             custodian=cust, status="in_vault", backup_id=backup_id, sha256=sha,
                             size_bytes=size, note=nt)
                self.oplog.append(conn, "admin", actor=actor, action="media_register", now=now,
                                  detail={"media": mid, "kind": "backup", "backup_id": backup_id, "medium": m})
            return mid

        return self._guarded(op, terminal_id, "media", "media_register", work)

    def register_incoming(self, op: Operator, terminal_id: Optional[str], file: Path, *, medium: str, label: str,
                          location: str, custodian: str, requester_code: str = "", note: str = "") -> str:
        """Enter a medium brought in (a requester's conditions file): virus-checked first (G3)."""

        def work(actor: Actor) -> str:
            m, lb, loc, cust = self._common(medium, label, location, custodian)
            self._custodian_exists(cust)
            req = _text(requester_code, "依頼者コード", "requester_code", required=False, limit=20)
            nt = _text(note, "備考", "note", required=False, limit=500)
            now = self.clock()
            mid = self._new_id("MI", now)
            res = scan_and_record(self.scanner, self.registers.admin_tx, Path(file), direction="in",
                                  purpose="incoming", operator_id=actor.operator_id, media_id=mid, now=now)
            with self.registers.admin_tx() as conn:
                self._insert(conn, actor, now, media_id=mid, kind="incoming", medium=m, label=lb, location=loc,
                             custodian=cust, status="in_vault", requester_code=req, sha256=res.sha256,
                             size_bytes=res.size, note=nt)
                self.oplog.append(conn, "admin", actor=actor, action="media_register", now=now,
                                  detail={"media": mid, "kind": "incoming", "scan": res.engine, "sha256": res.sha256})
            return mid

        return self._guarded(op, terminal_id, "media", "media_register", work)

    def scan(self, op: Operator, terminal_id: Optional[str], file: Path, *, direction: str = "in",
             media_id: Optional[str] = None):
        """A virus check of one file on its own (G3), recorded and logged; infected or unchecked: refused."""

        def work(actor: Actor):
            if direction not in ("in", "out"):
                raise _err("MEDIA_DIRECTION_INVALID", "持込 (in) か持出 (out) を指定してください。", "direction")
            now = self.clock()
            res = scan_and_record(self.scanner, self.registers.admin_tx, Path(file), direction=direction,
                                  purpose="incoming" if direction == "in" else "outgoing", operator_id=actor.operator_id,
                                  media_id=media_id, now=now)
            with self.registers.admin_tx() as conn:
                self.oplog.append(conn, "admin", actor=actor, action="media_scan", now=now,
                                  detail={"outcome": res.outcome, "engine": res.engine, "sha256": res.sha256,
                                          "direction": direction})
            return res

        return self._guarded(op, terminal_id, "media", "media_scan", work)

    # ---- movements ----------------------------------------------------------------------------

    def _get(self, conn, media_id: str):
        row = conn.execute(select(media_items).where(media_items.c.media_id == (media_id or "").strip())).first()
        if row is None:
            raise _err(*UNKNOWN, field="media_id")
        return row

    def _move(self, conn, actor: Actor, row, now: datetime, kind: str, *, status: str, location: Optional[str] = None,
              counterpart: Optional[str] = None, approval_id: Optional[str] = None, method: Optional[str] = None,
              reason: Optional[str] = None) -> int:
        loc = location if location is not None else row.location
        conn.execute(update(media_items).where(media_items.c.media_id == row.media_id).values(
            status=status, location=loc, updated_at=now))
        mid = conn.execute(insert(media_movements).values(
            media_id=row.media_id, at=now, operator_id=actor.operator_id, kind=kind, from_location=row.location,
            to_location=loc, counterpart=counterpart, approval_id=approval_id, method=method, reason=reason)
        ).inserted_primary_key[0]
        self.oplog.append(conn, "admin", actor=actor, action=f"media_{kind}", now=now,
                          detail={"media": row.media_id, "movement_id": mid, "status": status,
                                  **({"approval": approval_id} if approval_id else {}),
                                  **({"method": method} if method else {})})
        return mid

    def move(self, op: Operator, terminal_id: Optional[str], media_id: str, kind: str, *, location: str = "",
             reason: str = "") -> int:
        """移動 (between locations), 持出 (checkout) and its return (checkin)."""
        allowed = {"move": (("in_vault", "retired"), None), "checkout": (("in_vault",), "out"),
                   "checkin": (("out",), "in_vault")}

        def work(actor: Actor) -> int:
            if kind not in allowed:
                raise _err("MEDIA_MOVEMENT_INVALID", "移動の区分が正しくありません。", "kind")
            loc = _text(location, "移動先", "location")
            rs = _text(reason, "理由", "reason", required=kind == "checkout", limit=500)
            now = self.clock()
            with self.registers.admin_tx() as conn:
                row = self._get(conn, media_id)
                states, to = allowed[kind]
                if row.status not in states:
                    raise _err("MEDIA_STATE", f"この媒体は「{STATUSES.get(row.status, row.status)}」のため、"
                                              f"{MOVEMENTS[kind]}できません。", "media_id")
                return self._move(conn, actor, row, now, kind, status=to or row.status, location=loc, reason=rs)

        return self._guarded(op, terminal_id, "media", f"media_{kind}", work, detail={"kind": str(kind)[:12]})

    def handover(self, op: Operator, terminal_id: Optional[str], media_id: str, *, requester_code: str,
                 file: Path, medium: str, label: str, receiver: str = "") -> int:
        """受渡し of a batch result medium to the requesting body (G3): the file on the medium is
        virus-checked and must be the very file written (SHA-256); the medium enters the register."""

        def work(actor: Actor) -> int:
            mid = (media_id or "").strip()
            with self.registers.admin_tx(write=False) as conn:
                pm = conn.execute(select(provision_media).where(provision_media.c.media_id == mid)).first()
                existing = conn.execute(select(media_items).where(media_items.c.media_id == mid)).first()
            if pm is None or pm.status != "written":
                raise _err(*UNKNOWN, field="media_id")
            if (requester_code or "").strip() != pm.requester_code:
                raise _err("MEDIA_WRONG_REQUESTER", "この媒体の依頼元ではありません。受渡し先を確認してください。",
                           "requester_code")
            if existing is not None and existing.status != "in_vault":
                raise _err("MEDIA_STATE", f"この媒体は「{STATUSES.get(existing.status, existing.status)}」のため、"
                                          "受渡しできません。", "media_id")
            if existing is None:
                m, lb, _, _ = self._common(medium, label, "-", actor.operator_id or "-")
            rcv = _text(receiver, "受領者", "receiver", required=False, limit=60)
            now = self.clock()
            res = scan_and_record(self.scanner, self.registers.admin_tx, Path(file), direction="out",
                                  purpose="result", operator_id=actor.operator_id, media_id=mid, now=now)
            if res.sha256 != pm.sha256:
                raise _err("MEDIA_FILE_MISMATCH", "媒体のファイルが、作成された結果ファイルと一致しません。受渡しできません。",
                           "file")
            with self.registers.admin_tx() as conn:
                if existing is None:
                    self._insert(conn, actor, now, media_id=mid, kind="result", medium=m, label=lb,
                                 location="作成端末", custodian=actor.operator_id, status="in_vault",
                                 requester_code=pm.requester_code, sha256=pm.sha256, size_bytes=pm.size_bytes)
                row = self._get(conn, mid)
                counterpart = pm.requester_code + (f" {rcv}" if rcv else "")
                return self._move(conn, actor, row, now, "handover", status="handed_over",
                                  location=f"依頼元 {pm.requester_code}", counterpart=counterpart[:100])

        return self._guarded(op, terminal_id, "media", "media_handover", work)

    def return_(self, op: Operator, terminal_id: Optional[str], media_id: str, *, location: str,
                counterpart: str = "") -> int:
        """返却: the requesting body gives the medium back (to the vault, to be destroyed after approval)."""

        def work(actor: Actor) -> int:
            loc = _text(location, "保管場所", "location")
            cp = _text(counterpart, "返却者", "counterpart", required=False, limit=100)
            now = self.clock()
            with self.registers.admin_tx() as conn:
                row = self._get(conn, media_id)
                if row.status != "handed_over":
                    raise _err("MEDIA_STATE", "受渡し済の媒体ではないため、返却を記録できません。", "media_id")
                return self._move(conn, actor, row, now, "return", status="in_vault", location=loc,
                                  counterpart=cp or row.requester_code)

        return self._guarded(op, terminal_id, "media", "media_return", work)

    # ---- the manager's prior approval, retirement, destruction ---------------------------------

    def approve(self, op: Operator, terminal_id: Optional[str], target_id: str, action: str, reason: str, *,
                target_kind: str = "media") -> str:
        """The 管理責任者's prior approval of retiring or destroying a medium, or destroying a form."""
        actor = Actor(op.operator_id, terminal_id)
        try:
            if "manager" not in op.roles or op.status != "active":
                raise _err("MEDIA_APPROVER_NOT_MANAGER", "廃棄・使用停止の承認は管理責任者のみが行えます。", "by")
            if action not in APPROVAL_ACTIONS or (target_kind == "form" and action != "destroy") \
                    or target_kind not in ("media", "form"):
                raise _err("MEDIA_APPROVAL_ACTION_INVALID", "承認する処理 (廃棄・使用停止) を選択してください。", "action")
            rs = _text(reason, "理由", "reason", limit=500)
            now = self.clock()
            tid = (target_id or "").strip()
            with self.registers.admin_tx() as conn:
                if target_kind == "media":
                    row = self._get(conn, tid)
                    if row.status == "destroyed" or row.status in ("handed_over", "out"):
                        raise _err("MEDIA_STATE", f"この媒体は「{STATUSES.get(row.status, row.status)}」のため、"
                                                  "承認できません。", "media_id")
                else:
                    f = conn.execute(select(form_register).where(form_register.c.serial == tid)).first()
                    if f is None or f.status != "issued":
                        raise _err("FORM_NOT_DISPOSABLE", "廃棄できる帳票ではありません。", "serial")
                aid = f"MA{now:%Y%m%d}-{secrets.token_hex(3).upper()}"
                conn.execute(insert(media_approvals).values(
                    approval_id=aid, target_kind=target_kind, target_id=tid, action=action, reason=rs,
                    approved_by=op.operator_id, approved_at=now, status="approved"))
                self.oplog.append(conn, "admin", actor=actor, action="media_approve", now=now,
                                  detail={"approval": aid, "target_kind": target_kind, "target": tid,
                                          "action": action})
                return aid
        except JukinetError as e:
            self.security.log_refusal(actor, "media_approve", e, detail={"target_kind": str(target_kind)[:8]})
            raise

    def _take_approval(self, conn, approval_id: str, target_kind: str, target_id: str, action: str,
                       now: datetime) -> str:
        a = conn.execute(select(media_approvals).where(media_approvals.c.approval_id == (approval_id or "").strip())
                         ).first()
        if a is None or a.target_kind != target_kind or a.target_id != target_id or a.action != action \
                or a.status != "approved":
            raise _err("MEDIA_APPROVAL_REQUIRED", "管理責任者の事前承認 (この媒体・この処理の、未使用の承認番号) が必要です。",
                       "approval_id")
        done = conn.execute(update(media_approvals).where(media_approvals.c.approval_id == a.approval_id,
                                                          media_approvals.c.status == "approved")
                            .values(status="used", used_at=now))
        if done.rowcount != 1:
            raise _err("MEDIA_APPROVAL_REQUIRED", "承認番号は既に使われています。", "approval_id")
        return a.approval_id

    def retire(self, op: Operator, terminal_id: Optional[str], media_id: str, *, approval_id: str,
               reason: str) -> int:
        """使用停止 (破損・耐用超過): the reason in the register, the medium stays in the vault (III.4)."""

        def work(actor: Actor) -> int:
            rs = _text(reason, "理由", "reason", limit=500)
            now = self.clock()
            with self.registers.admin_tx() as conn:
                row = self._get(conn, media_id)
                if row.status != "in_vault":
                    raise _err("MEDIA_STATE", "保管中の媒体のみ使用停止にできます。", "media_id")
                aid = self._take_approval(conn, approval_id, "media", row.media_id, "retire", now)
                return self._move(conn, actor, row, now, "retire", status="retired", approval_id=aid, reason=rs)

        return self._guarded(op, terminal_id, "media", "media_retire", work)

    def destroy(self, op: Operator, terminal_id: Optional[str], media_id: str, *, approval_id: str,
                method: str, reason: str = "") -> int:
        """廃棄 with the manager's prior approval (III.7 R3): format, crush, incinerate or shred."""

        def work(actor: Actor) -> int:
            if method not in METHODS:
                raise _err("MEDIA_METHOD_INVALID", "廃棄の方法を選択してください。", "method")
            rs = _text(reason, "理由", "reason", required=False, limit=500)
            now = self.clock()
            with self.registers.admin_tx() as conn:
                row = self._get(conn, media_id)
                if row.status not in IN_VAULT:
                    raise _err("MEDIA_STATE", f"この媒体は「{STATUSES.get(row.status, row.status)}」のため、"
                                              "廃棄できません (保管庫にある媒体のみ)。", "media_id")
                aid = self._take_approval(conn, approval_id, "media", row.media_id, "destroy", now)
                return self._move(conn, actor, row, now, "destroy", status="destroyed", location="廃棄済",
                                  approval_id=aid, method=method, reason=rs)

        return self._guarded(op, terminal_id, "media", "media_destroy", work)

    def take_form_approval(self, conn, serial: str, approval_id: str, now: datetime) -> str:
        """For the destruction of a form (帳票) by 事務3: the manager's approval, used once."""
        return self._take_approval(conn, approval_id, "form", serial, "destroy", now)

    # ---- the weekly check ---------------------------------------------------------------------

    def weekly_check(self, op: Operator, terminal_id: Optional[str], found: list[str], *, note: str = "") -> CheckResult:
        """Record the check of the register against the vault: ``found`` are the media ids or labels
        of the media physically found. Discrepancies are recorded, not refused."""

        def work(actor: Actor) -> CheckResult:
            nt = _text(note, "備考", "note", required=False, limit=1000)
            seen = []
            for v in found:
                v = " ".join(str(v or "").split())
                if v:
                    if len(v) > 100:
                        raise _err("MEDIA_INPUT_TOO_LONG", "媒体番号・ラベルは100文字以内です。", "found")
                    text.check(v, "媒体番号・ラベル", field="found")
                    seen.append(v)
            now = self.clock()
            with self.registers.admin_tx() as conn:
                rows = conn.execute(select(media_items).where(media_items.c.status != "destroyed")).all()
                by_key = {}
                for r in rows:
                    by_key[r.media_id] = r
                    by_key[r.label] = r
                expected = {r.media_id for r in rows if r.status in IN_VAULT}
                got, disc = set(), []
                for v in dict.fromkeys(seen):
                    r = by_key.get(v)
                    if r is None:
                        disc.append({"media_id": None, "found": v, "kind": "unregistered", "detail": "管理簿にない媒体"})
                    elif r.media_id not in expected:
                        disc.append({"media_id": r.media_id, "kind": "not_expected",
                                     "detail": f"管理簿では「{STATUSES.get(r.status, r.status)}」"})
                    else:
                        got.add(r.media_id)
                for mid in sorted(expected - got):
                    disc.append({"media_id": mid, "kind": "missing", "detail": "保管庫で確認できない"})
                cid = conn.execute(insert(media_checks).values(
                    checked_at=now, checked_by=actor.operator_id, week=MC.week_key(now), expected=len(expected),
                    found=len(got), discrepancy_count=len(disc),
                    discrepancies=json.dumps(disc, ensure_ascii=False, sort_keys=True), note=nt)
                ).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="media_check", now=now, result_count=len(disc),
                                  detail={"check_id": cid, "expected": len(expected), "found": len(got),
                                          "discrepancies": len(disc)})
            return CheckResult(cid, MC.week_key(now), len(expected), len(got), disc)

        return self._guarded(op, terminal_id, "media", "media_check", work)
