"""The snapshot format ``jukinet.snapshot/1``: what a 市町村CS sends for a consistency check.

整合性確認用本人確認情報 (PIA 別添1 6-①): the CS's complete current file for its municipality and
one register, as JSON Lines (UTF-8, one JSON object per line, ``\\n`` line ends):

1. **Header** — the first line::

     {"schema": "jukinet.snapshot/1", "register": "juki", "municipality_code": "242012",
      "count": 2, "as_of": "2026-11-26T02:00:00+09:00", "snapshot_id": "242012-20261126-1"}

   ``as_of`` is the instant the CS took the snapshot (with its UTC offset): every notification the
   CS sent before it is reflected in the snapshot. ``snapshot_id`` is the CS's own reference
   (optional, at most 64 printable ASCII characters). ``count`` is the number of record lines.

2. **Records** — one line per *current* person (住民 not removed; 附票 with 状態区分 現存), in the
   ``record`` shape of ``jukinet.notification/1`` plus ``juminhyo_code`` (and, for juki, the
   ``municipality_code`` that manages the person), **sorted by 住民票コード, strictly ascending**::

     {"juminhyo_code": "52601815907", "municipality_code": "242012", "name": "三重 太郎",
      "name_kana": "ミエ タロウ", "birth_date": "1980-04-01", "sex": "1",
      "address": "三重県津市広明町13番地", "oaza_code": "0012", "kojin_bango": "625276018957",
      "former_surname": null}

   Fuhyo records carry ``name, name_kana, birth_date, sex, address_municipality_code, address,
   last_address, old_juminhyo_code, fuhyo_municipality_code, status`` (``status`` is ``"現存"``).
   Nullable items may be omitted (read as null); any other key is refused (U2).

3. **Trailer** — the last line::

     {"trailer": true, "count": 2, "sha256": "…"}

   ``sha256`` is the hex SHA-256 of the exact bytes of all record lines, each with its line end,
   in order. A stream that ends before the trailer, has a line after it, or whose count or digest
   disagree, is refused: a truncated or altered snapshot is never compared.

Every refusal is a :class:`SnapshotRefused` with a stable code, a Japanese message that names the
line number and the item — never a value — and ``line`` (1 = the header).

Reading is streaming and bounded: one line at a time (at most :data:`MAX_LINE_BYTES`), so memory
does not grow with the snapshot.

>>> import io
>>> data = write_snapshot("juki", "242012", [], as_of="2026-11-26T02:00:00+09:00")
>>> r = SnapshotReader(io.BytesIO(data), register="juki", municipality_code="242012")
>>> list(r), r.header.count, r.trailer_ok
([], 0, True)
"""

from __future__ import annotations

import hashlib
import json
import re
from operator import itemgetter
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Callable, Iterable, Iterator, NamedTuple, Optional

import orjson

from jukinet import codes, kana
from jukinet.errors import JukinetError
import io

SCHEMA = "jukinet.snapshot/1"
REGISTERS = ("juki", "fuhyo")
#: a record line longer than this is refused (a person's record is well under 2 KiB)
MAX_LINE_BYTES = 64 * 1024
_TEXT_MAX = 400
_SNAPSHOT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")

#: the items compared, in order, per register (the record shape of jukinet.notification/1)
JUKI_ITEMS = ("name", "name_kana", "birth_date", "sex", "address", "oaza_code", "kojin_bango", "former_surname")
FUHYO_ITEMS = ("name", "name_kana", "birth_date", "sex", "address_municipality_code", "address", "last_address",
               "old_juminhyo_code", "fuhyo_municipality_code", "status")
ITEMS = {"juki": JUKI_ITEMS, "fuhyo": FUHYO_ITEMS}
#: the item each position of :attr:`SnapshotRecord.values` belongs to: juki's 旧氏 is two values
#: (氏, ふりがな), flat, so that a register row compares to a snapshot record as one plain tuple
VALUE_ITEMS = {"juki": JUKI_ITEMS[:-1] + ("former_surname", "former_surname"), "fuhyo": FUHYO_ITEMS}

#: Japanese names of the items (for messages and screens; never the values)
ITEM_LABELS = {
    "juminhyo_code": "住民票コード", "municipality_code": "市町村コード", "name": "氏名", "name_kana": "ふりがな",
    "birth_date": "生年月日", "sex": "性別", "address": "住所", "oaza_code": "大字・字コード",
    "kojin_bango": "個人番号", "former_surname": "旧氏", "address_municipality_code": "住所市町村コード",
    "last_address": "最終住所", "old_juminhyo_code": "旧住民票コード",
    "fuhyo_municipality_code": "附票管理市町村コード", "status": "附票本人確認情報状態区分",
}

_REQUIRED = {
    "juki": ("juminhyo_code", "municipality_code", "name", "name_kana", "birth_date", "sex", "address"),
    "fuhyo": ("juminhyo_code", "name", "name_kana", "birth_date", "sex", "fuhyo_municipality_code", "status"),
}
_ALLOWED = {
    "juki": frozenset(("juminhyo_code", "municipality_code") + JUKI_ITEMS),
    "fuhyo": frozenset(("juminhyo_code",) + FUHYO_ITEMS),
}
_ALLOWED_JUKI, _ALLOWED_FUHYO = _ALLOWED["juki"], _ALLOWED["fuhyo"]
#: the required items of a record line in one C call (a missing key raises KeyError: the slow path names it)
_GET_REQUIRED_JUKI, _GET_REQUIRED_FUHYO = itemgetter(*_REQUIRED["juki"]), itemgetter(*_REQUIRED["fuhyo"])
#: at most this many distinct dates / ふりがな are remembered per snapshot as already checked
_MEMO_MAX = 1 << 16
_HEADER_KEYS = frozenset(("schema", "register", "municipality_code", "count", "as_of", "snapshot_id"))
_TRAILER_KEYS = frozenset(("trailer", "count", "sha256"))


class _Weights(tuple):
    """The weights of a mod-11 check digit, with what :func:`_mod11_ok` needs precomputed: the
    weights as one integer of 16-bit digits (highest first), the shift to the product's middle
    digit, and 48 (``"0"``) times their sum."""

    def __new__(cls, weights):
        self = super().__new__(cls, weights)
        self.poly = sum(w << (16 * (len(weights) - 1 - j)) for j, w in enumerate(weights))
        self.shift = 16 * (len(weights) - 1)
        self.bias = 48 * sum(weights)
        return self


_W_JUMINHYO = _Weights((5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
_W_KOJIN = _Weights((6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
_CHECK_DIGIT = tuple("0" if r <= 1 else str(11 - r) for r in range(11))  # by remainder
#: ふりがな already in the form intake stores (full-width katakana, ー, one U+3000 between parts):
#: :func:`jukinet.kana.validate_kana` would return it unchanged, so it is not called (hot path)
_CANONICAL_KANA = re.compile("[\u30a1-\u30fa\u30fc]+(?:\u3000[\u30a1-\u30fa\u30fc]+)*")


def _mod11_ok(s: str, weights: _Weights, length: int) -> bool:
    """A compact all-ASCII-digit code of ``length`` whose check digit is right (0 when the
    remainder is ≤ 1, else 11 − remainder: 住民票コード and 個人番号 alike).

    The weighted sum of the digits is one multiplication: the code as UTF-16 is an integer whose
    16-bit digits are the characters' codes (``"0"`` = 48 …), and the middle 16-bit digit of its
    product with ``weights.poly`` is Σ code × weight (every partial sum < 2¹⁶: no carry).
    """
    if len(s) != length or not s.isascii() or not s.isdigit():
        return False
    total = (int.from_bytes(s.encode("utf-16-le"), "little") * weights.poly >> weights.shift) & 0xFFFF
    return s[-1] == _CHECK_DIGIT[(total - weights.bias) % 11]


def _stored_kana(v: str) -> str:
    """The ふりがな as intake stores it (``validate_kana``), or as sent when it is not kana at all."""
    if _CANONICAL_KANA.fullmatch(v):
        return v
    try:
        return kana.validate_kana(v)
    except JukinetError:
        return v


class SnapshotRefused(JukinetError):
    """A snapshot that cannot be compared. ``line`` is the 1-based line at fault (None: the whole)."""

    def __init__(self, code: str, message: str, *, line: Optional[int] = None, field: Optional[str] = None):
        self.line = line
        where = f"{line}行目: " if line is not None else ""
        super().__init__(code, f"整合性確認データの{where}{message}", field=field)

    def as_dict(self) -> dict:
        d = super().as_dict()
        if self.line is not None:
            d["line"] = self.line
        return d


@dataclass(frozen=True)
class Header:
    register: str
    municipality_code: str
    count: int
    as_of: datetime
    snapshot_id: Optional[str] = None


class SnapshotRecord(NamedTuple):
    """One person of the snapshot: the 住民票コード and the compared items as canonical values, one
    per position of :data:`VALUE_ITEMS` (juki: 旧氏 as two values; 個人番号 as the reader's
    ``number_index`` of it when one is given)."""

    juminhyo_code: str
    values: tuple


def differing_items(register: str, a: tuple, b: tuple) -> list[str]:
    """The names of the items whose values differ (each name once, in the order of ``ITEMS``)."""
    out: list[str] = []
    for name, x, y in zip(VALUE_ITEMS[register], a, b):
        if x != y and name not in out:
            out.append(name)
    return out


# ---------------------------------------------------------------- reading

class SnapshotReader:
    """Iterate the records of a snapshot, validating as it goes.

    ``register`` and ``municipality_code`` are what the *channel* says (the endpoint and the
    sender's certificate, or the CLI arguments); the header must agree with both. After the
    iteration ends without an exception the trailer has been verified (``trailer_ok``).
    ``records_read`` and ``line_no`` tell how far it got (for a refusal record).

    ``number_index`` (juki): the records carry ``number_index(個人番号)`` instead of the number, once
    it has been validated (the check compares 個人番号 through the register's blind index, ADR 0058).
    """

    def __init__(self, stream: IO[bytes], *, register: str, municipality_code: str, now: Optional[datetime] = None,
                 clock_skew_seconds: int = 300, number_index: Optional[Callable[[str], str]] = None):
        self.stream = stream
        self.register = register
        self.municipality_code = municipality_code
        self.now = now
        self.clock_skew_seconds = clock_skew_seconds
        self.line_no = 0
        self.records_read = 0
        self.header: Optional[Header] = None
        self.trailer_ok = False
        self.sha256 = hashlib.sha256()
        self._last_code = ""  # sorts before every code
        self._lg_seen: set[str] = set()
        self._dates_ok: set[str] = set()
        self._kana: dict[str, str] = {}
        #: juki: compare the 個人番号 through this function (the blind index) instead of the number
        self.number_index = number_index

    # -- low level
    def _next_line(self) -> Optional[bytes]:
        raw = self.stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self.line_no += 1
        if len(raw) > MAX_LINE_BYTES:
            raise SnapshotRefused("RECONCILE_LINE_TOO_LONG", f"行が長すぎます（上限 {MAX_LINE_BYTES} バイト）。",
                                  line=self.line_no)
        return raw

    def _parse(self, raw: bytes) -> dict:
        try:
            obj = orjson.loads(raw)  # strict RFC 8259, UTF-8 only; ~5× the stdlib's speed (ADR 0012)
        except orjson.JSONDecodeError:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SnapshotRefused("RECONCILE_ENCODING", "UTF-8 ではありません。", line=self.line_no) from None
            raise SnapshotRefused("RECONCILE_JSON_INVALID", "JSON として読めません。", line=self.line_no) from None
        if not isinstance(obj, dict):
            raise SnapshotRefused("RECONCILE_JSON_INVALID", "JSON オブジェクトではありません。", line=self.line_no)
        return obj

    # -- header
    def read_header(self) -> Header:
        raw = self._next_line()
        if raw is None:
            raise SnapshotRefused("RECONCILE_EMPTY", "データがありません（ヘッダ行がありません）。")
        obj = self._parse(raw)
        line = self.line_no
        if obj.get("schema") != SCHEMA:
            raise SnapshotRefused("RECONCILE_HEADER_INVALID", f"1行目はヘッダ（schema: {SCHEMA}）でなければなりません。",
                                  line=line, field="schema")
        unknown = sorted(set(obj) - _HEADER_KEYS)
        if unknown:
            raise SnapshotRefused("RECONCILE_FIELD_UNKNOWN", "ヘッダに定義されていない項目があります。", line=line)
        if obj.get("register") not in REGISTERS:
            raise SnapshotRefused("RECONCILE_HEADER_INVALID", "ヘッダの register が正しくありません。", line=line,
                                  field="register")
        if obj["register"] != self.register:
            raise SnapshotRefused("RECONCILE_REGISTER_MISMATCH", "ヘッダの register が送信先のファイルと一致しません。",
                                  line=line, field="register")
        mc = obj.get("municipality_code")
        if not isinstance(mc, str) or not codes.is_valid_lg_code(mc) or codes.compact(mc) != mc:
            raise SnapshotRefused("RECONCILE_HEADER_INVALID", "ヘッダの市町村コードが正しくありません。", line=line,
                                  field="municipality_code")
        if mc != self.municipality_code:
            raise SnapshotRefused("RECONCILE_MUNICIPALITY_MISMATCH",
                                  "ヘッダの市町村コードが送信元の市町村と一致しません。", line=line,
                                  field="municipality_code")
        count = obj.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise SnapshotRefused("RECONCILE_HEADER_INVALID", "ヘッダの件数（count）が正しくありません。", line=line,
                                  field="count")
        as_of = _parse_instant(obj.get("as_of"))
        if as_of is None:
            raise SnapshotRefused("RECONCILE_HEADER_INVALID",
                                  "ヘッダの作成日時（as_of）は時差付きの ISO 8601 日時で指定してください。", line=line,
                                  field="as_of")
        if self.now is not None and (as_of - self.now).total_seconds() > self.clock_skew_seconds:
            raise SnapshotRefused("RECONCILE_AS_OF_FUTURE", "ヘッダの作成日時（as_of）が未来です。", line=line,
                                  field="as_of")
        sid = obj.get("snapshot_id")
        if sid is not None and (not isinstance(sid, str) or not _SNAPSHOT_ID.match(sid)):
            raise SnapshotRefused("RECONCILE_HEADER_INVALID", "ヘッダの snapshot_id が正しくありません。", line=line,
                                  field="snapshot_id")
        self.header = Header(obj["register"], mc, count, as_of, sid)
        return self.header

    # -- records
    def __iter__(self) -> Iterator[SnapshotRecord]:
        """The records, each validated (the hot loop: one line is read, parsed by orjson, hashed and
        checked with the reader's attributes bound to locals; a line that does not parse goes
        through :meth:`_parse` again for its coded refusal)."""
        if self.header is None:
            self.read_header()
        readline = self.stream.readline
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        update = self.sha256.update
        record = self._record_juki if self.register == "juki" else self._record_fuhyo
        limit = MAX_LINE_BYTES + 1
        while True:
            raw = readline(limit)
            if not raw:
                raise SnapshotRefused("RECONCILE_TRUNCATED",
                                      "終端行（trailer）がありません。データが途中で切れています。")
            self.line_no += 1
            if len(raw) > MAX_LINE_BYTES:
                raise SnapshotRefused("RECONCILE_LINE_TOO_LONG", f"行が長すぎます（上限 {MAX_LINE_BYTES} バイト）。",
                                      line=self.line_no)
            try:
                obj = loads(raw)
            except decode_error:
                obj = self._parse(raw)  # raises RECONCILE_ENCODING or RECONCILE_JSON_INVALID
            if type(obj) is not dict:
                obj = self._parse(raw)  # raises RECONCILE_JSON_INVALID
            if "trailer" in obj:
                self._check_trailer(obj)
                return
            update(raw)
            rec = record(obj)
            self.records_read += 1
            yield rec

    def _check_trailer(self, obj: dict) -> None:
        line = self.line_no
        if obj.get("trailer") is not True or set(obj) != _TRAILER_KEYS:
            raise SnapshotRefused("RECONCILE_TRAILER_INVALID", "終端行の形式が正しくありません。", line=line)
        if self._next_line() is not None:
            raise SnapshotRefused("RECONCILE_AFTER_TRAILER", "終端行の後にデータがあります。", line=self.line_no)
        if obj["count"] != self.records_read or self.header.count != self.records_read:
            raise SnapshotRefused("RECONCILE_COUNT_MISMATCH",
                                  "件数がヘッダ・終端行・実際の行数の間で一致しません。", line=line, field="count")
        if not isinstance(obj["sha256"], str) or obj["sha256"].lower() != self.sha256.hexdigest():
            raise SnapshotRefused("RECONCILE_DIGEST_MISMATCH",
                                  "SHA-256 が一致しません。データが欠けているか改変されています。", line=line,
                                  field="sha256")
        self.trailer_ok = True

    def _bad(self, field: str, what: str = "が正しくありません。", code: str = "RECONCILE_FIELD_INVALID"):
        return SnapshotRefused(code, f"{ITEM_LABELS.get(field, field)}{what}", line=self.line_no, field=field)

    def _record(self, obj: dict) -> SnapshotRecord:
        return self._record_juki(obj) if self.register == "juki" else self._record_fuhyo(obj)

    def _missing(self, obj: dict) -> SnapshotRefused:
        """The refusal for the first required item that is absent or null (the slow path)."""
        for k in _REQUIRED[self.register]:
            if obj.get(k) is None:
                return self._bad(k, "がありません。", "RECONCILE_FIELD_MISSING")
        raise AssertionError("no required item is missing")

    def _common(self, code, manager) -> str:
        """住民票コード (check digit, strictly ascending) and the managing municipality (the sender)."""
        if not (isinstance(code, str) and _mod11_ok(code, _W_JUMINHYO, 11)):
            code = self._code(code, "juminhyo_code", codes.validate_juminhyo_code)
        if code <= self._last_code:
            if code == self._last_code:
                raise SnapshotRefused("RECONCILE_DUPLICATE", "同じ住民票コードの人が重複しています。",
                                      line=self.line_no, field="juminhyo_code")
            raise SnapshotRefused("RECONCILE_UNSORTED", "住民票コードの昇順に並んでいません。",
                                  line=self.line_no, field="juminhyo_code")
        self._last_code = code
        field = "municipality_code" if self.register == "juki" else "fuhyo_municipality_code"
        if manager != self.municipality_code and \
                self._code(manager, field, codes.validate_lg_code) != self.municipality_code:
            raise SnapshotRefused("RECONCILE_FOREIGN_RECORD", "他の市町村が管理する人が含まれています。",
                                  line=self.line_no, field=field)
        return code

    def _birth_sex_kana(self, birth, sex, name_kana) -> str:
        """生年月日 (a real date, ISO), 性別, and ふりがな as intake stores it. The dates and ふりがな
        already seen are remembered (a bounded table: a population repeats them)."""
        if type(birth) is not str or birth not in self._dates_ok:
            if not isinstance(birth, str) or len(birth) != 10 or not _valid_date(birth):
                raise self._bad("birth_date")
            if len(self._dates_ok) < _MEMO_MAX:
                self._dates_ok.add(birth)
        if sex != "1" and sex != "2":
            raise self._bad("sex")
        k = self._kana.get(name_kana)
        if k is None:
            k = _stored_kana(name_kana)
            if len(self._kana) >= _MEMO_MAX:
                self._kana.clear()
            self._kana[name_kana] = k
        return k

    def _required(self, obj: dict, allowed, get) -> tuple:
        """The required items of a line (``get``: an ``itemgetter``), refused when one is missing or
        null, or when the line has an item ``allowed`` does not name."""
        if not obj.keys() <= allowed:
            raise SnapshotRefused("RECONCILE_FIELD_UNKNOWN", "定義されていない項目があります。", line=self.line_no)
        try:
            required = get(obj)
        except KeyError:
            raise self._missing(obj) from None
        if None in required:
            raise self._missing(obj)
        return required

    def _required_text(self, value, field: str) -> None:
        """A required text item: a string of 1 to :data:`_TEXT_MAX` characters."""
        if type(value) is not str or not 0 < len(value) <= _TEXT_MAX:
            raise self._bad(field)

    def _record_juki(self, obj: dict) -> SnapshotRecord:
        required = self._required(obj, _ALLOWED_JUKI, _GET_REQUIRED_JUKI)
        code, manager, name, name_kana, birth, sex, address = required
        code = self._common(code, manager)
        self._required_text(name, "name")
        self._required_text(name_kana, "name_kana")
        self._required_text(address, "address")
        name_kana = self._birth_sex_kana(birth, sex, name_kana)
        oaza = obj.get("oaza_code")
        if oaza is not None and (not isinstance(oaza, str) or not oaza.isascii() or not 0 < len(oaza) <= 12):
            raise self._bad("oaza_code")
        kb = obj.get("kojin_bango")
        if kb is not None:
            if not (isinstance(kb, str) and _mod11_ok(kb, _W_KOJIN, 12)):
                kb = self._code(kb, "kojin_bango", codes.validate_kojin_bango)
            if self.number_index is not None:
                kb = self.number_index(kb)
        fs = obj.get("former_surname")
        if fs is None:
            return SnapshotRecord(code, (name, name_kana, birth, sex, address, oaza, kb, None, None))
        if not isinstance(fs, dict) or set(fs) - {"name", "name_kana"} or not all(
                isinstance(fs.get(k), str) and 0 < len(fs[k]) <= _TEXT_MAX for k in ("name", "name_kana")):
            raise self._bad("former_surname")
        return SnapshotRecord(code, (name, name_kana, birth, sex, address, oaza, kb, fs["name"],
                                     _stored_kana(fs["name_kana"])))

    def _record_fuhyo(self, obj: dict) -> SnapshotRecord:
        required = self._required(obj, _ALLOWED_FUHYO, _GET_REQUIRED_FUHYO)
        code, name, name_kana, birth, sex, manager, status = required
        code = self._common(code, manager)
        self._required_text(name, "name")
        self._required_text(name_kana, "name_kana")
        name_kana = self._birth_sex_kana(birth, sex, name_kana)
        for k in ("address", "last_address"):
            v = obj.get(k)
            if v is not None and (type(v) is not str or not 0 < len(v) <= _TEXT_MAX):
                raise self._bad(k)
        amc = obj.get("address_municipality_code")
        if amc is not None and not (type(amc) is str and amc in self._lg_seen):  # a few dozen distinct codes: check each once
            amc = self._code(amc, "address_municipality_code", codes.validate_lg_code)
            self._lg_seen.add(amc)
        old = obj.get("old_juminhyo_code")
        if old is not None and not (isinstance(old, str) and _mod11_ok(old, _W_JUMINHYO, 11)):
            old = self._code(old, "old_juminhyo_code", codes.validate_juminhyo_code)
        if status != "現存":
            raise self._bad("status", "は「現存」でなければなりません（消除された附票は送りません）。")
        return SnapshotRecord(code, (name, name_kana, birth, sex, amc, obj.get("address"), obj.get("last_address"),
                                     old, manager, status))

    def _code(self, value, field: str, validate) -> str:
        if not isinstance(value, str):
            raise self._bad(field, code="RECONCILE_CODE_INVALID")
        try:
            v = validate(value)
        except codes.InvalidCode as e:
            raise SnapshotRefused("RECONCILE_CODE_INVALID", f"{ITEM_LABELS.get(field, field)}: {e.message}",
                                  line=self.line_no, field=field) from None
        if v != value:  # no spaces or hyphens: codes travel compact
            raise self._bad(field, code="RECONCILE_CODE_INVALID")
        return v


def _valid_date(s: str) -> bool:
    try:
        date.fromisoformat(s)
        return True
    except ValueError:
        return False


def _parse_instant(v) -> Optional[datetime]:
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


# ---------------------------------------------------------------- writing (CS side, simulators, tests)

def record_line(register: str, rec: dict) -> bytes:
    """One record line, canonical JSON (keys in the documented order, compact, UTF-8)."""
    return (json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def header_line(register: str, municipality_code: str, count: int, as_of: str,
                snapshot_id: Optional[str] = None) -> bytes:
    h = {"schema": SCHEMA, "register": register, "municipality_code": municipality_code, "count": count,
         "as_of": as_of}
    if snapshot_id is not None:
        h["snapshot_id"] = snapshot_id
    return (json.dumps(h, ensure_ascii=False) + "\n").encode("utf-8")


def trailer_line(count: int, sha256_hex: str) -> bytes:
    return (json.dumps({"trailer": True, "count": count, "sha256": sha256_hex}) + "\n").encode("utf-8")


def write_snapshot_to(out: IO[bytes], register: str, municipality_code: str, lines: Iterable[bytes], count: int,
                      *, as_of: str, snapshot_id: Optional[str] = None) -> str:
    """Write header, the record lines (already encoded, sorted) and the trailer; return the digest."""
    h = hashlib.sha256()
    out.write(header_line(register, municipality_code, count, as_of, snapshot_id))
    n = 0
    for line in lines:
        h.update(line)
        out.write(line)
        n += 1
    if n != count:
        raise ValueError(f"count {count} announced but {n} records written")
    out.write(trailer_line(n, h.hexdigest()))
    return h.hexdigest()


def write_snapshot(register: str, municipality_code: str, records: list[dict], *, as_of: str,
                   snapshot_id: Optional[str] = None) -> bytes:
    """A whole snapshot in memory (small ones: tests, examples). ``records`` are sorted here."""
    buf = io.BytesIO()
    recs = sorted(records, key=lambda r: r["juminhyo_code"])
    write_snapshot_to(buf, register, municipality_code, (record_line(register, r) for r in recs), len(recs),
                      as_of=as_of, snapshot_id=snapshot_id)
    return buf.getvalue()
