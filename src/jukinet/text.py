"""Text that may enter the system, at any door (Q2): one rule, checked where the text first arrives.

A string is **storable** when it can be encoded in the door's encoding — UTF-8 everywhere, and
Shift_JIS (Windows code page 932) where a field must be written in it — and holds no NUL (U+0000,
which PostgreSQL's ``text`` cannot store). The usual offender is a lone UTF-16 surrogate: a JSON
string with the escape ``\\ud800`` is valid JSON, and Python decodes it into a ``str`` that no
encoder accepts, so it would fail far from the door, wherever it is first encoded (a digest, a
database driver, a log line). Everything else Unicode has — private use, noncharacters, variation
selectors, control characters — *is* encodable; whether a field may hold it is that field's own
check (:mod:`jukinet.intake.wire`, :mod:`jukinet.moji`).

A refusal is :class:`TextNotEncodable`, code ``TEXT_NOT_ENCODABLE``, with a Japanese message that
names the item, never the value.

>>> is_storable("三重　太郎"), is_storable("𠮷田"), is_storable("葛\\U000E0100")
(True, True, True)
>>> is_storable("\\ud800"), is_storable("a\\x00b"), is_storable("\\udc00\\ud800")
(False, False, False)
>>> is_storable("𠮷田", "cp932"), is_storable("髙橋", "cp932")
(False, True)
>>> check("山田", "氏名")
'山田'
>>> try:
...     check("山\\ud800", "氏名", field="name")
... except TextNotEncodable as e:
...     print(e.code, e.message, e.field)
TEXT_NOT_ENCODABLE 氏名に使用できない文字（文字コードで表せない文字）が含まれています。 name
>>> try:
...     check("𠮷田", "氏名", encoding="cp932")
... except TextNotEncodable as e:
...     print(e.message)
氏名に Shift_JIS で表せない文字が含まれています。

:func:`find` walks a decoded JSON value (keys too) and returns the path to the first string that is
not storable, or None:

>>> find({"a": "ok", "record": {"name": "x\\ud800"}})
('record', 'name')
>>> find({"a": ["ok", {"\\udfff": 1}]}) == ("a", 1, KEY)
True
>>> find({"a": 1, "b": [None, True, 2.5]}) is None
True
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from jukinet.errors import JukinetError

CODE = "TEXT_NOT_ENCODABLE"

#: the last element of a :func:`find` path when the offending string is a key, not a value
KEY = "<key>"

_NAMES = {"utf-8": "", "utf8": "", "cp932": "Shift_JIS", "shift_jis": "Shift_JIS", "sjis": "Shift_JIS"}


class TextNotEncodable(JukinetError):
    """A string that cannot be encoded (or stored) as the door requires."""

    code = CODE


def is_encodable(value: str, encoding: str = "utf-8") -> bool:
    """True if ``value`` encodes in ``encoding`` (NUL allowed: see :func:`is_storable`).

    >>> is_encodable("a\\x00b"), is_encodable("\\ud800")
    (True, False)
    """
    try:
        value.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def is_storable(value: str, encoding: str = "utf-8") -> bool:
    """True if ``value`` encodes in ``encoding`` and holds no NUL."""
    return "\x00" not in value and is_encodable(value, encoding)


def message(label: str, encoding: str = "utf-8") -> str:
    """The Japanese refusal for the item ``label`` (no value)."""
    name = _NAMES.get(encoding.lower(), encoding)
    if not name:
        return f"{label}に使用できない文字（文字コードで表せない文字）が含まれています。"
    return f"{label}に {name} で表せない文字が含まれています。"


def check(value: str, label: str, *, field: Optional[str] = None, encoding: str = "utf-8") -> str:
    """``value`` itself if storable, else raise :class:`TextNotEncodable` naming ``label``."""
    if not is_storable(value, encoding):
        raise TextNotEncodable(CODE, message(label, encoding), field=field)
    return value


def find(obj: Any, encoding: str = "utf-8", test: Callable[[str, str], bool] = is_storable) -> Optional[tuple]:
    """The path (keys and list indexes) to the first non-storable string in a JSON value, or None.

    A path ending in :data:`KEY` means the key itself is the offending string. Iterative, so any
    nesting depth the JSON decoder accepted is fine here. ``test`` is the rule (default
    :func:`is_storable`).
    """
    stack: list[tuple[tuple, Any]] = [((), obj)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            if not test(v, encoding):
                return path
        elif isinstance(v, dict):
            items = list(v.items())
            for k, _ in items:
                if isinstance(k, str) and not test(k, encoding):
                    return path + (KEY,)
            stack.extend((path + (k,), x) for k, x in reversed(items))
        elif isinstance(v, list):
            stack.extend((path + (i,), x) for i, x in reversed(list(enumerate(v))))
    return None
