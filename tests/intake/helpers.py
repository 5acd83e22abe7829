"""Helpers of the 事務1 tests: an installation with the dev PKI, servers on free ports, notifications."""

from __future__ import annotations

import copy
import socket
from datetime import date, timedelta

from jukinet import codes
from jukinet.intake.service import today_jst
from jukinet.intake.wire import SCHEMA

TSU, YOKKAICHI = "242012", "242021"
MUNIS = [TSU, YOKKAICHI, "242047"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use_free_ports(config) -> None:
    config.server.port = free_port()
    config.national.port = free_port()
    config.national.fuhyo_port = free_port()
    config.intake.outbox_backoff_initial = 0.05
    config.intake.outbox_backoff_max = 0.4
    config.save()


def ensure_pki(config) -> None:
    from jukinet import pki

    pki.ensure_dev_pki(config.tls, config.data_dir, config.prefecture_code, municipalities=MUNIS)


def jcode(n: int) -> str:
    first = f"{n:010d}"
    return first + codes.juminhyo_code_check_digit(first)


def kbango(n: int) -> str:
    first = f"{n + 10**10:011d}"
    return first + codes.kojin_bango_check_digit(first)


def today() -> date:
    return today_jst()


_COUNTER = [0]


def nid(prefix: str = "t") -> str:
    _COUNTER[0] += 1
    return f"{prefix}-{_COUNTER[0]:08d}"


def tennyu(code: str, *, muni: str = TSU, n_id: str | None = None, reason: str = "国内転入", **rec) -> dict:
    """A juki 記載 notification for a new person in ``muni``."""
    prefix = {TSU: "三重県津市", YOKKAICHI: "三重県四日市市", "242047": "三重県松阪市"}[muni]
    record = {"name": "三重\u3000太郎", "name_kana": "ミエ\u3000タロウ", "birth_date": "1980-04-01", "sex": "1",
              "address": f"{prefix}広明町13番地", "oaza_code": "0012", "kojin_bango": kbango(int(code[:10])),
              "former_surname": None}
    record.update(rec)
    return {"schema": SCHEMA, "notification_id": n_id or nid(muni), "register": "juki", "municipality_code": muni,
            "reason": reason, "change_date": (today() - timedelta(days=1)).isoformat(), "juminhyo_code": code,
            "new_juminhyo_code": None, "record": record}


def change(base: dict, reason: str, *, n_id: str | None = None, new_code: str | None = None, **rec) -> dict:
    """A follow-up notification about the same person: the record after the change."""
    n = copy.deepcopy(base)
    n["notification_id"] = n_id or nid(base["municipality_code"])
    n["reason"] = reason
    n["new_juminhyo_code"] = new_code
    n["record"].update(rec)
    return n


def fuhyo_kisai(code: str, *, muni: str = TSU, **rec) -> dict:
    record = {"name": "三重\u3000花子", "name_kana": "ミエ\u3000ハナコ", "birth_date": "1990-02-03", "sex": "2",
              "address_municipality_code": "231061", "address": "愛知県名古屋市中区栄1丁目1番1号",
              "last_address": None, "old_juminhyo_code": None, "fuhyo_municipality_code": muni, "status": "現存"}
    record.update(rec)
    return {"schema": SCHEMA, "notification_id": nid(muni + "f"), "register": "fuhyo", "municipality_code": muni,
            "reason": "記載", "change_date": (today() - timedelta(days=1)).isoformat(), "juminhyo_code": code,
            "new_juminhyo_code": None, "record": record}
