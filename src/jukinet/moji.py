"""外字 (characters outside the standard set) in names and addresses (requirement D4).

Rule: a character outside JIS X 0208 (JIS X 0208:1997, 6879 graphic characters, incl. the two
1990 additions 凜 and 熙) is a 外字; ASCII is allowed too. 外字数 counts them per item, 外字フラグ
says whether a record has any, and the 附票 外字パターン records which items have them.

How we test membership (:func:`is_jisx0208`)
    We encode the character with Python's ``iso2022_jp`` codec, whose double-byte set is exactly
    JIS X 0208 (escape ``ESC $ B``, or ``ESC $ @`` for the 1978 edition), and ASCII is its single-byte
    set. We do **not** use ``euc_jp``: Python's euc_jp also carries JIS X 0212 (補助漢字) and
    half-width katakana, which are not JIS X 0208. From ``iso2022_jp`` we accept ASCII and
    ``ESC $ B``/``ESC $ @`` only, so the JIS X 0201 Roman ¥ (U+00A5) and ‾ (U+203E) that the codec
    also encodes are 外字. Half-width katakana (JIS X 0201) are not in JIS X 0208 either and are
    外字; ふりがな is stored full-width (:func:`jukinet.kana.validate_kana`).

    The codec maps a few JIS X 0208 code points to one Unicode character where Windows (cp932)
    and JIS X 0213 use another. Both spellings name the same JIS X 0208 character, so both are
    accepted: ～ U+FF5E (〜 U+301C), － U+FF0D (− U+2212), ∥ U+2225 (‖ U+2016),
    ￠ ￡ ￢ U+FFE0..U+FFE2 (¢ £ ¬), — U+2014 (― U+2015).

Segments
    A base character followed by variation selectors (VS1..VS16 U+FE00..U+FE0F, VS17..VS256
    U+E0100..U+E01EF, e.g. an IVS 葛 + U+E0100) is one segment, and one 外字: the selector asks
    for a glyph that JIS X 0208 cannot name, even when the base is in JIS X 0208. Every other code
    point (incl. a combining mark, or a selector with no base) is a segment of its own.

>>> [is_jisx0208(c) for c in '高崎吉A1ア～〜']
[True, True, True, True, True, True, True, True]
>>> [is_jisx0208(c) for c in ('髙', '﨑', '𠮷', 'ｱ', '①')]
[False, False, False, False, False]
>>> count_gaiji('髙橋'), count_gaiji('山﨑'), count_gaiji('𠮷田'), count_gaiji('山田')
(1, 1, 1, 0)
>>> count_gaiji('葛飾'), count_gaiji('葛\\U000E0100飾')
(0, 1)
>>> segments('葛\\U000E0100飾') == ['葛\\U000E0100', '飾']
True
>>> gaiji_flag('山田', None, '髙田'), gaiji_flag('山田', '', None)
(True, False)
>>> gaiji_pattern('髙橋', '東京都葛飾区', None)
'100'

Text is never altered: nothing here normalises (NFC/NFKC would change some 外字 into other
characters, e.g. NFC turns the compatibility ideograph 塚 U+FA10 into 塚 U+585A, and NFKC turns
⼀ U+2F00 into 一 U+4E00). :func:`segments` only cuts, and the other functions only read.

>>> import unicodedata
>>> s = '\\uFA10\\u2F00\\uFA11葛\\U000E0100'
>>> unicodedata.normalize('NFC', s) == s, unicodedata.normalize('NFKC', s) == s
(False, False)
>>> ''.join(segments(s)) == s, count_gaiji(s), s == '\\uFA10\\u2F00\\uFA11葛\\U000E0100'
(True, 4, True)
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "is_jisx0208",
    "is_variation_selector",
    "segments",
    "is_gaiji",
    "count_gaiji",
    "gaiji_flag",
    "gaiji_pattern",
    "FUHYO_GAIJI_PATTERN_FIELDS",
]

#: Unicode spellings of JIS X 0208 characters that Python's iso2022_jp does not use (see above),
#: each with the one it does use.
ALTERNATE_MAPPINGS = {
    "\uff5e": "\u301c",  # ～ FULLWIDTH TILDE / 〜 WAVE DASH          (1-33)
    "\uff0d": "\u2212",  # － FULLWIDTH HYPHEN-MINUS / − MINUS SIGN   (1-61)
    "\u2225": "\u2016",  # ∥ PARALLEL TO / ‖ DOUBLE VERTICAL LINE    (1-34)
    "\uffe0": "\u00a2",  # ￠ / ¢                                     (1-81)
    "\uffe1": "\u00a3",  # ￡ / £                                     (1-82)
    "\uffe2": "\u00ac",  # ￢ / ¬                                     (2-44)
    "\u2014": "\u2015",  # — EM DASH (JIS X 0213) / ― HORIZONTAL BAR  (1-29)
}

_JIS_X_0208_ESCAPES = (b"\x1b$B", b"\x1b$@")


def is_jisx0208(ch: str) -> bool:
    """True when the single character ``ch`` is ASCII or in JIS X 0208 (so not a 外字).

    >>> is_jisx0208('凜'), is_jisx0208('熙'), is_jisx0208('Ａ'), is_jisx0208('＼')
    (True, True, True, True)
    >>> is_jisx0208('¥'), is_jisx0208('\\u3099'), is_jisx0208('\\U000E0100')
    (False, False, False)
    >>> is_jisx0208('ab')
    Traceback (most recent call last):
    ...
    ValueError: is_jisx0208 takes one character
    """
    if len(ch) != 1:
        raise ValueError("is_jisx0208 takes one character")
    return _is_jisx0208(ch)


@lru_cache(maxsize=65536)
def _is_jisx0208(ch: str) -> bool:
    """:func:`is_jisx0208` of one character, cached (a pure function of the character)."""
    if ch.isascii():
        return True
    ch = ALTERNATE_MAPPINGS.get(ch, ch)
    try:
        encoded = ch.encode("iso2022_jp")
    except UnicodeEncodeError:
        return False
    return encoded.startswith(_JIS_X_0208_ESCAPES)


def is_variation_selector(ch: str) -> bool:
    """VS1..VS16 (U+FE00..U+FE0F) or VS17..VS256 (U+E0100..U+E01EF).

    >>> is_variation_selector('\\uFE0F'), is_variation_selector('\\U000E01EF'), is_variation_selector('葛')
    (True, True, False)
    """
    return "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"


def segments(text: str | None) -> list[str]:
    """Cut ``text`` into segments: a base character with the variation selectors after it.

    ``''.join(segments(text)) == text`` always holds.

    >>> segments('山田')
    ['山', '田']
    >>> segments('辻\\U000E0101\\U000E0102x\\uFE00') == ['辻\\U000E0101\\U000E0102', 'x\\uFE00']
    True
    >>> segments('\\uFE00a') == ['\\uFE00', 'a']     # a selector with no base stands alone
    True
    >>> segments(None), segments('')
    ([], [])
    """
    out: list[str] = []
    for ch in text or "":
        if out and is_variation_selector(ch) and not is_variation_selector(out[-1][0]):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def is_gaiji(segment: str) -> bool:
    """True when one segment (see :func:`segments`) is a 外字.

    >>> is_gaiji('葛'), is_gaiji('葛\\U000E0100'), is_gaiji('髙')
    (False, True, True)
    """
    return len(segment) != 1 or not is_jisx0208(segment)


def count_gaiji(text: str | None) -> int:
    """外字数: how many segments of ``text`` are 外字 (0 for None or empty).

    >>> count_gaiji('髙﨑𠮷'), count_gaiji(None), count_gaiji('')
    (3, 0, 0)
    """
    return _count_gaiji(text) if text else 0


@lru_cache(maxsize=2048)   # bounded: a long seed must not grow it (Q1)
def _count_gaiji(text: str) -> int:
    """:func:`count_gaiji` of a non-empty text, cached (names and addresses repeat in a batch)."""
    return sum(1 for seg in segments(text) if is_gaiji(seg))


def gaiji_flag(*fields: str | None) -> bool:
    """外字フラグ: True when any of ``fields`` has a 外字.

    >>> gaiji_flag(), gaiji_flag(None), gaiji_flag('山田', '𠮷')
    (False, False, True)
    """
    return any(count_gaiji(f) for f in fields)


#: The items of the 附票 外字パターン, in the order of its characters.
FUHYO_GAIJI_PATTERN_FIELDS = ("name", "address", "last_address")


def gaiji_pattern(name: str | None, address: str | None, last_address: str | None) -> str:
    """外字パターン of a 附票本人確認情報: which of 氏名, 住所, 最終住所 have a 外字.

    **Our encoding** (the item's layout is not public): three characters, one per item in the
    order of :data:`FUHYO_GAIJI_PATTERN_FIELDS` (氏名, 住所, 最終住所), ``'1'`` when that item has
    at least one 外字, else ``'0'``. An absent item (None, e.g. no 住所 for a 国外転出者) is ``'0'``.
    ``'000'`` exactly when the 外字フラグ is off.

    >>> gaiji_pattern('山田', '東京都', None)
    '000'
    >>> gaiji_pattern('山﨑', None, '髙松市')
    '101'
    >>> gaiji_pattern(name='𠮷田', address='葛\\U000E0100飾区', last_address='')
    '110'
    """
    return "".join("1" if count_gaiji(f) else "0" for f in (name, address, last_address))
