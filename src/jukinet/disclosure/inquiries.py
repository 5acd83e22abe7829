"""The inquiry log (A10): inquiries from residents (counter, phone, letter, mail), their handling, the
log on screen and as CSV. In the admin database: no 本人確認情報."""

from __future__ import annotations

import csv
import io

from sqlalchemy import insert, select, update

from jukinet.disclosure.base import DisclosureBase, _jst, now_utc
from jukinet.errors import JukinetError
from jukinet.store.tables_disclosure import inquiries

INQUIRY_CHANNELS = {"counter": "窓口", "phone": "電話", "letter": "文書", "mail": "電子メール"}
INQUIRY_CATEGORIES = {"disclosure": "開示の手続", "provision": "提供状況", "correction": "訂正等",
                      "security": "安全管理・漏えいの懸念", "other": "その他"}


class Inquiries(DisclosureBase):
    def add_inquiry(self, channel: str, category: str, summary: str, op, terminal_id) -> int:
        actor = self._require(op, terminal_id, "handle", None, "inquiry_add")

        def work():
            if channel not in INQUIRY_CHANNELS or category not in INQUIRY_CATEGORIES:
                raise JukinetError("INQUIRY_KIND", "受付の方法と分類を選択してください。", field="category")
            if not (summary or "").strip():
                raise JukinetError("FIELD_REQUIRED", "概要を入力してください。", field="summary")
            with self.registers.admin_tx() as conn:
                iid = conn.execute(insert(inquiries).values(
                    received_at=now_utc(), channel=channel, category=category, summary=summary.strip()[:1000],
                    operator_id=actor.operator_id, status="open")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="inquiry_add",
                                  detail={"inquiry_id": iid, "category": category})
            return iid

        return self._guard(actor, "inquiry_add", None, work)

    def handle_inquiry(self, inquiry_id: int, handling: str, op, terminal_id, *, close: bool = True) -> None:
        actor = self._require(op, terminal_id, "handle", None, "inquiry_handle")

        def work():
            if not (handling or "").strip():
                raise JukinetError("FIELD_REQUIRED", "対応内容を入力してください。", field="handling")
            with self.registers.admin_tx() as conn:
                r = conn.execute(select(inquiries).where(inquiries.c.inquiry_id == int(inquiry_id))).first()
                if r is None:
                    raise JukinetError("INQUIRY_NOT_FOUND", "この問合せはありません。", field="inquiry_id")
                conn.execute(update(inquiries).where(inquiries.c.inquiry_id == r.inquiry_id).values(
                    handling=handling.strip()[:2000], handled_by=actor.operator_id,
                    status="closed" if close else "open", closed_at=now_utc() if close else None))
                self.oplog.append(conn, "admin", actor=actor, action="inquiry_handle",
                                  detail={"inquiry_id": r.inquiry_id, "closed": close})

        self._guard(actor, "inquiry_handle", None, work)

    def inquiries(self, op, terminal_id, limit: int = 200) -> list:
        self._require(op, terminal_id, "registers", None, "inquiries")
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(inquiries).order_by(inquiries.c.inquiry_id.desc()).limit(limit)).all()

    def inquiries_csv(self, op, terminal_id) -> bytes:
        rows = self.inquiries(op, terminal_id, limit=100000)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["番号", "受付日時", "方法", "分類", "概要", "受付者", "対応", "対応者", "状態", "完了日時"])
        for r in reversed(rows):
            w.writerow([r.inquiry_id, _jst(r.received_at), INQUIRY_CHANNELS.get(r.channel, r.channel),
                        INQUIRY_CATEGORIES.get(r.category, r.category), r.summary, r.operator_id, r.handling or "",
                        r.handled_by or "", "完了" if r.status == "closed" else "対応中", _jst(r.closed_at)])
        return ("\ufeff" + out.getvalue()).encode("utf-8")
