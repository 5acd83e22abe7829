"""The messages the prefectural servers send to J-LIS's national servers (U5; ADR 0007).

``jukinet.national-update/1``, one per applied update, built from the register version with that
更新順番号 (so the outbox holds no copy of the personal data):

- juki (全国サーバ): the items of PIA II(1).5 提供先1 — 住民票コード, 氏名, 生年月日, 性別, 住所, 個人番号,
  異動事由, 異動年月日 — plus the envelope (message_id, prefecture, 更新順番号, the category of the
  reason, and for a 住民票コード変更 the previous code).
- fuhyo (附票全国サーバ): the 附票本人確認情報 — 住民票コード, 氏名, 生年月日, 性別, 住所 (市町村コード and
  住所), 最終住所, 異動事由 and 異動年月日, 旧住民票コード, 附票管理市町村コード, 状態区分, 通知区分.
  **Never a 個人番号** (PIA II(2).2④): the fuhyo register has none, and the builder takes only the
  listed items.
"""

from __future__ import annotations

from typing import Optional

from jukinet.domain.reasons import JUKI_REASONS
from jukinet.domain.records import FuhyoRecord, JukiRecord

SCHEMA = "jukinet.national-update/1"

JUKI_ITEMS = ("juminhyo_code", "name", "birth_date", "sex", "address", "kojin_bango", "reason", "change_date")
FUHYO_ITEMS = ("juminhyo_code", "name", "birth_date", "sex", "address_municipality_code", "address", "last_address",
               "reason", "change_date", "old_juminhyo_code", "fuhyo_municipality_code", "status", "notification_kind")


def _iso(v):
    return v.isoformat() if hasattr(v, "isoformat") else v


def juki_message(rec: JukiRecord, *, message_id: str, prefecture_code: str,
                 prior_code: Optional[str]) -> dict:
    m = {"schema": SCHEMA, "message_id": message_id, "register": "juki", "prefecture_code": prefecture_code,
         "update_seq": rec.update_seq, "municipality_code": rec.municipality_code,
         "category": JUKI_REASONS[rec.reason].category if rec.reason in JUKI_REASONS else None,
         "previous_juminhyo_code": prior_code}
    m.update({k: _iso(getattr(rec, k)) for k in JUKI_ITEMS})
    return m


def fuhyo_message(rec: FuhyoRecord, *, message_id: str, prefecture_code: str,
                  prior_code: Optional[str]) -> dict:
    m = {"schema": SCHEMA, "message_id": message_id, "register": "fuhyo", "prefecture_code": prefecture_code,
         "update_seq": rec.update_seq, "municipality_code": rec.fuhyo_municipality_code,
         "category": rec.notification_kind, "previous_juminhyo_code": prior_code}
    m.update({k: _iso(getattr(rec, k)) for k in FUHYO_ITEMS})
    return m
