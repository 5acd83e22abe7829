"""The wire format ``jukinet.notification/1`` (CS → 都道府県サーバ) and its format checks (U2, U3).

:func:`parse` takes one decoded JSON value and returns a :class:`Notification` or raises
:class:`WireError` with a stable code and a Japanese message. Exactly the prescribed items are
accepted (U2): an unknown item at the top level or in ``record`` is refused with
``FIELD_UNKNOWN``, whatever its value; a fuhyo record never carries a 個人番号. Messages name the
item (its Japanese label), never the value received, and never echo an unknown key (a key is
sender-chosen text and might itself be personal data).

>>> n = parse(EXAMPLE)
>>> n.register, n.reason, n.record.name_kana
('juki', '転居', 'ミエ\\u3000タロウ')
>>> bad = dict(EXAMPLE, extra=1)
>>> try:
...     parse(bad)
... except WireError as e:
...     print(e.code, e.message)
FIELD_UNKNOWN 規定外の項目が含まれています。
>>> digest(EXAMPLE) == digest(dict(reversed(list(EXAMPLE.items()))))   # canonical: key order free
True
>>> try:   # a lone surrogate (JSON escape \\ud800) anywhere: refused first, naming the item
...     parse(dict(EXAMPLE, record=dict(EXAMPLE["record"], name="三重\\ud800")))
... except WireError as e:
...     print(e.code, e.field)
TEXT_NOT_ENCODABLE name
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

from jukinet import codes, kana, text
from jukinet.domain.reasons import FIELD_LABELS
from jukinet.domain.records import FormerSurname
from jukinet.errors import JukinetError

SCHEMA = "jukinet.notification/1"
REGISTERS = ("juki", "fuhyo")

TOP_FIELDS = ("schema", "notification_id", "register", "municipality_code", "reason", "change_date",
              "juminhyo_code", "new_juminhyo_code", "record")
TOP_REQUIRED = ("schema", "notification_id", "register", "municipality_code", "reason", "change_date",
                "juminhyo_code", "record")
JUKI_FIELDS = ("name", "name_kana", "birth_date", "sex", "address", "oaza_code", "kojin_bango", "former_surname")
JUKI_REQUIRED = ("name", "name_kana", "birth_date", "sex", "address")
FUHYO_FIELDS = ("name", "name_kana", "birth_date", "sex", "address_municipality_code", "address", "last_address",
                "old_juminhyo_code", "fuhyo_municipality_code", "status")
FUHYO_REQUIRED = ("name", "name_kana", "birth_date", "sex", "fuhyo_municipality_code", "status")

LABELS = dict(FIELD_LABELS, schema="スキーマ", notification_id="通知ID", register="ファイル種別",
              reason="異動事由", new_juminhyo_code="新住民票コード", record="本人確認情報",
              municipality_code="市町村コード")

NOTIFICATION_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._:\-]{0,63}$")
OAZA_CODE = re.compile(r"^[0-9]{1,12}$")
MAX_NAME = 100
MAX_ADDRESS = 250

EXAMPLE = {"schema": SCHEMA, "notification_id": "242012-000000001", "register": "juki",
           "municipality_code": "242012", "reason": "転居", "change_date": "2026-11-20",
           "juminhyo_code": "52601815907", "new_juminhyo_code": None,
           "record": {"name": "三重 太郎", "name_kana": "ミエ タロウ", "birth_date": "1980-04-01", "sex": "1",
                      "address": "三重県津市広明町13番地", "oaza_code": "0012",
                      "kojin_bango": "625276018957", "former_surname": None}}


class WireError(JukinetError):
    """A notification that is not well-formed ``jukinet.notification/1``."""


def _err(code: str, message: str, field: Optional[str] = None) -> WireError:
    return WireError(code, message, field=field)


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes of a notification: sorted keys, no spaces, UTF-8.

    Total: a lone surrogate (which :func:`parse` refuses) is hashed as its own bytes rather than
    failing, so a refused notification still has a digest for the communication log.
    """
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def digest(obj: Any) -> str:
    """SHA-256 (hex) of the canonical JSON: the idempotency digest and the logged digest."""
    return hashlib.sha256(canonical(obj)).hexdigest()


@dataclass(frozen=True)
class JukiItems:
    name: str
    name_kana: str
    birth_date: date
    sex: str
    address: str
    oaza_code: Optional[str]
    kojin_bango: Optional[str]
    former_surname: Optional[FormerSurname]


@dataclass(frozen=True)
class FuhyoItems:
    name: str
    name_kana: str
    birth_date: date
    sex: str
    address_municipality_code: Optional[str]
    address: Optional[str]
    last_address: Optional[str]
    old_juminhyo_code: Optional[str]
    fuhyo_municipality_code: str
    status: str


@dataclass(frozen=True)
class Notification:
    notification_id: str
    register: str
    municipality_code: str
    reason: str
    change_date: date
    juminhyo_code: str
    new_juminhyo_code: Optional[str]
    record: JukiItems | FuhyoItems


def notification_id_of(obj: Any) -> Optional[str]:
    """The notification_id if it is well-formed (to answer and to log), else None."""
    if isinstance(obj, dict):
        nid = obj.get("notification_id")
        if isinstance(nid, str) and NOTIFICATION_ID.match(nid):
            return nid
    return None


def register_of(obj: Any) -> Optional[str]:
    if isinstance(obj, dict) and obj.get("register") in REGISTERS:
        return obj["register"]
    return None


def _check_keys(obj: dict, allowed: tuple, required: tuple, where: str) -> None:
    for k in obj:
        if k not in allowed:
            raise _err("FIELD_UNKNOWN", "規定外の項目が含まれています。" if where == "top"
                       else "本人確認情報に規定外の項目が含まれています。", where if where != "top" else None)
    for k in required:
        if obj.get(k) is None:
            raise _err("FIELD_REQUIRED", f"{LABELS[k]}を指定してください。", k)


def _str(obj: dict, k: str, *, optional: bool = False) -> Optional[str]:
    v = obj.get(k)
    if v is None:
        if optional:
            return None
        raise _err("FIELD_REQUIRED", f"{LABELS[k]}を指定してください。", k)
    if not isinstance(v, str):
        raise _err("FIELD_TYPE", f"{LABELS[k]}は文字列で指定してください。", k)
    return v


def _date(obj: dict, k: str) -> date:
    v = _str(obj, k)
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", v):
        raise _err("DATE_FORMAT", f"{LABELS[k]}は YYYY-MM-DD 形式で指定してください。", k)
    try:
        d = date.fromisoformat(v)
    except ValueError:
        raise _err("DATE_FORMAT", f"{LABELS[k]}が正しい日付ではありません。", k) from None
    if d.year < 1850:
        raise _err("DATE_RANGE", f"{LABELS[k]}が範囲外です。", k)
    return d


def _text(obj: dict, k: str, max_len: int, *, optional: bool = False) -> Optional[str]:
    v = _str(obj, k, optional=optional)
    if v is None:
        return None
    if not v.strip():
        raise _err("FIELD_REQUIRED", f"{LABELS[k]}を指定してください。", k)
    if len(v) > max_len:
        raise _err("TEXT_TOO_LONG", f"{LABELS[k]}が長すぎます。", k)
    # printable text only (C-speed check): no control, format, surrogate, private-use or unassigned
    # characters, no separators but the ASCII and the ideographic space (U+3000)
    if not v.replace("\u3000", " ").isprintable():
        raise _err("TEXT_FORMAT", f"{LABELS[k]}に使用できない文字が含まれています。", k)
    return v


def _kana(obj: dict, k: str) -> str:
    v = _str(obj, k)
    if len(v) > MAX_NAME:
        raise _err("TEXT_TOO_LONG", f"{LABELS[k]}が長すぎます。", k)
    try:
        return kana.validate_kana(v)
    except JukinetError as e:
        raise _err(e.code, e.message, k) from None


def _code(obj: dict, k: str, kind: str, *, optional: bool = False) -> Optional[str]:
    v = _str(obj, k, optional=optional)
    if v is None:
        return None
    validate = {"juminhyo_code": codes.validate_juminhyo_code, "kojin_bango": codes.validate_kojin_bango,
                "lg_code": codes.validate_lg_code}[kind]
    try:
        out = validate(v)
    except codes.InvalidCode as e:
        raise _err(e.code, e.message, k) from None
    if out != v:  # spaces or hyphens: the wire carries the compact digits only
        e = codes.InvalidFormat(kind)
        raise _err(e.code, e.message, k)
    return out


def _sex(obj: dict) -> str:
    v = _str(obj, "sex")
    if v not in ("1", "2"):
        raise _err("SEX_INVALID", "性別は \"1\" (男) または \"2\" (女) で指定してください。", "sex")
    return v


def _former_surname(obj: dict) -> Optional[FormerSurname]:
    v = obj.get("former_surname")
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _err("FIELD_TYPE", "旧氏は name と name_kana を持つオブジェクトで指定してください。", "former_surname")
    for key in v:
        if key not in ("name", "name_kana"):
            raise _err("FIELD_UNKNOWN", "旧氏に規定外の項目が含まれています。", "former_surname")
    name = _text(v, "name", MAX_NAME)
    name_kana = _kana(v, "name_kana")
    return FormerSurname(name, name_kana)


def _juki_items(rec: dict) -> JukiItems:
    _check_keys(rec, JUKI_FIELDS, JUKI_REQUIRED, "record")
    oaza = _str(rec, "oaza_code", optional=True)
    if oaza is not None and not OAZA_CODE.match(oaza):
        raise _err("OAZA_CODE_FORMAT", "大字・字コードは12桁以内の数字で指定してください。", "oaza_code")
    return JukiItems(
        name=_text(rec, "name", MAX_NAME), name_kana=_kana(rec, "name_kana"), birth_date=_date(rec, "birth_date"),
        sex=_sex(rec), address=_text(rec, "address", MAX_ADDRESS), oaza_code=oaza,
        kojin_bango=_code(rec, "kojin_bango", "kojin_bango", optional=True), former_surname=_former_surname(rec))


def _fuhyo_items(rec: dict) -> FuhyoItems:
    _check_keys(rec, FUHYO_FIELDS, FUHYO_REQUIRED, "record")
    status = _str(rec, "status")
    if status not in ("現存", "消除"):
        raise _err("FUHYO_STATUS_INVALID", "附票本人確認情報状態区分は「現存」または「消除」で指定してください。", "status")
    return FuhyoItems(
        name=_text(rec, "name", MAX_NAME), name_kana=_kana(rec, "name_kana"), birth_date=_date(rec, "birth_date"),
        sex=_sex(rec),
        address_municipality_code=_code(rec, "address_municipality_code", "lg_code", optional=True),
        address=_text(rec, "address", MAX_ADDRESS, optional=True),
        last_address=_text(rec, "last_address", MAX_ADDRESS, optional=True),
        old_juminhyo_code=_code(rec, "old_juminhyo_code", "juminhyo_code", optional=True),
        fuhyo_municipality_code=_code(rec, "fuhyo_municipality_code", "lg_code"), status=status)


def _check_text(obj: dict) -> None:
    """Every string, keys included, must be storable (:mod:`jukinet.text`): checked before any
    other item, so no later step ever holds text it cannot encode. Names the item when it is a
    prescribed one, never an unknown key (sender-chosen text)."""
    # NUL is encodable: each field's own format check refuses it (TEXT_FORMAT and the like, U3)
    path = text.find(obj, test=text.is_encodable)
    if path is None:
        return
    item = path[1] if path[0] == "record" and len(path) > 1 else path[0]
    if item == text.KEY or item not in LABELS:
        label, item = ("本人確認情報の項目" if path[0] == "record" else "通知の項目"), None
    else:
        label = LABELS[item]
    raise WireError(text.CODE, text.message(label), field=item)


def parse(obj: Any) -> Notification:
    """Check one notification's form (not yet against the register) and return it."""
    if not isinstance(obj, dict):
        raise _err("NOTIFICATION_NOT_OBJECT", "通知は JSON オブジェクトで送信してください。")
    _check_text(obj)
    _check_keys(obj, TOP_FIELDS, TOP_REQUIRED, "top")
    if obj["schema"] != SCHEMA:
        raise _err("SCHEMA_UNSUPPORTED", "スキーマが jukinet.notification/1 ではありません。", "schema")
    nid = _str(obj, "notification_id")
    if not NOTIFICATION_ID.match(nid):
        raise _err("NOTIFICATION_ID_FORMAT", "通知IDは英数字と . _ : - の64文字以内で指定してください。", "notification_id")
    register = _str(obj, "register")
    if register not in REGISTERS:
        raise _err("REGISTER_UNKNOWN", "ファイル種別は juki または fuhyo を指定してください。", "register")
    municipality = _code(obj, "municipality_code", "lg_code")
    reason = _str(obj, "reason")
    if len(reason) > 20:
        raise _err("REASON_UNKNOWN", "異動事由が正しくありません。", "reason")
    change_date = _date(obj, "change_date")
    code = _code(obj, "juminhyo_code", "juminhyo_code")
    new_code = _code(obj, "new_juminhyo_code", "juminhyo_code", optional=True)
    rec = obj["record"]
    if not isinstance(rec, dict):
        raise _err("FIELD_TYPE", "本人確認情報は JSON オブジェクトで指定してください。", "record")
    items = _juki_items(rec) if register == "juki" else _fuhyo_items(rec)
    return Notification(nid, register, municipality, reason, change_date, code, new_code, items)
