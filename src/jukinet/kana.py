"""ふりがな (kana names): the 清音化 search key and the ふりがな input check.

清音化かな氏名 (requirement D5) is the key under which 本人確認情報 are searched by name: two
spellings that a person (or an operator) would consider "the same reading" must give the same key.
Rule: 住民記録システム標準仕様書 §2.1.2 (清音化), as we apply it:

1. Width and script fold together: hiragana, full-width katakana and half-width katakana give the
   same key, written in full-width katakana (``jaconv.h2z(kana=True)`` then ``jaconv.hira2kata``;
   jaconv joins a half-width kana and its half-width ﾞ/ﾟ the way NFKC does, ｶﾞ → ガ).
2. Spaces (ASCII, tab, full-width U+3000, any ``str.isspace``) and long-vowel marks
   (ー ｰ ― － ‐ - and U+2010..U+2015, U+2212) are dropped. Stray sound marks (゛゜, combining
   U+3099/U+309A, half-width ﾞﾟ) join the kana before them and are then dropped.
3. 濁音・半濁音 → 清音: ガ → カ, ザ → サ, ダ → タ, バ → ハ, パ → ハ ... ヂ and ヅ are read as ジ and
   ズ, so ヂ → シ and ヅ → ス.
4. ヴァ ヴィ ヴ ヴェ ヴォ → バ ビ ブ ベ ボ → ハ ヒ フ ヘ ホ. We also read ヴャ ヴュ ヴョ as ビャ ビュ
   ビョ (レヴュー ≡ レビュー), and ヷ ヸ ヹ ヺ as ヴァ ヴィ ヴェ ヴォ.
5. Small kana → large: ァィゥェォ → アイウエオ, ッ → ツ, ャュョ → ヤユヨ, ヮ → ワ, ヵ → カ, ヶ → ケ
   (and the small katakana ㇰ..ㇿ of U+31F0..U+31FF → ク..ロ).
6. ヲ → オ, ヰ → イ, ヱ → エ.
7. ハ ≡ ワ. **Our choice: ワ is folded to ハ** (not ハ to ワ), so ワ never appears in a key; ヮ → ワ
   → ハ.
8. ウ after an オ段 kana → オ (トウ ≡ トオ). Applied *last*, to the already folded kana, so the
   オ段 is オ コ ソ ト ノ ホ モ ヨ ロ after rules 3–6 (ゴウ → コオ, ボウ → ホオ, ヲウ → オオ,
   キョウ → キヨオ, トゥ → トウ → トオ). It runs left to right over its own output, so a run of ウ
   after an オ段 kana all become オ (オウウ → オオオ); that is what makes the key idempotent.
   It is applied over the whole string after spaces are removed, not per name part: a ウ that
   starts a given name after a surname ending in an オ段 kana is folded too (コ ウメ → コオメ).
   A ウ in first position, or after a non-kana, is kept.
9. Iteration marks ゝ ゞ ヽ ヾ repeat the (folded) kana before them (いすゞ → イスス). One with no
   kana before it is kept as ヽ/ヾ.

Characters that are not kana (漢字, latin letters, digits, ・) pass through unchanged, except that
the half-width forms of U+FF61..U+FF65 (｡｢｣､･) are widened with the kana. The key is meant for
kana names; it is never shown to people.

The key is idempotent: ``seion(seion(x)) == seion(x)``.

>>> seion('がっこう')                    # rules 1, 3, 5, 8
'カツコオ'
>>> seion('ｶﾞｯｺｳ') == seion('ガッコウ') == seion('がっこう')
True
>>> seion('パーティー')                  # 半濁音, long-vowel marks and small kana
'ハテイ'
>>> seion('ヂヅ'), seion('ジズ')
('シス', 'シス')
>>> seion('ヴァイオリン') == seion('バイオリン')
True
>>> seion('ヴィヴヴェヴォ')
'ヒフヘホ'
>>> seion('ァィゥェォッャュョヮヵヶ')
'アイウエオツヤユヨハカケ'
>>> seion('ヲヰヱ')
'オイエ'
>>> seion('ワタナベ'), seion('ハタナヘ')  # ワ → ハ
('ハタナヘ', 'ハタナヘ')
>>> seion('トウキョウ'), seion('トオキヨオ')
('トオキヨオ', 'トオキヨオ')
>>> seion('ゴウ'), seion('ドウ')
('コオ', 'トオ')
>>> seion('ﾀﾅｶ　ﾀﾛｳ') == seion('たなか たろう') == seion('タナカタロオ')
True
>>> seion('タナカ\\tタロー')              # ー is dropped, not read as オ
'タナカタロ'
>>> seion('いすゞ')
'イスス'
>>> seion('山田 タロウ')                  # non-kana pass through
'山田タロオ'

ふりがな input (``name_kana``) is checked with :func:`validate_kana`: only kana, spaces and
long-vowel marks; it returns the full-width katakana form.

>>> validate_kana('やまだ　たろう')
'ヤマダ\\u3000タロウ'
>>> validate_kana('ﾔﾏﾀﾞ ﾀﾛｰ')
'ヤマダ\\u3000タロー'
>>> validate_kana('山田 太郎')
Traceback (most recent call last):
...
jukinet.errors.JukinetError: KANA_FORMAT: ふりがなはカタカナで入力してください。
>>> is_kana('ヤマダ タロウ'), is_kana('ヤマダ1'), is_kana('')
(True, False, False)
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import jaconv

from jukinet.errors import JukinetError

__all__ = ["seion", "is_kana", "validate_kana", "LONG_VOWEL_MARKS"]

#: Long-vowel marks and dashes typed for them; dropped from the key.
#: ー U+30FC, ｰ U+FF70, － U+FF0D, - U+002D, U+2010..U+2015 (‐ ‑ ‒ – — ―), − U+2212.
LONG_VOWEL_MARKS = frozenset("\u30fc\uff70\uff0d-\u2212" + "".join(chr(c) for c in range(0x2010, 0x2016)))

_VOICED_MARKS = frozenset("\u3099\u309b\uff9e")       # combining, spacing, half-width ゛
_SEMI_VOICED_MARKS = frozenset("\u309a\u309c\uff9f")  # combining, spacing, half-width ゜
_SOUND_MARKS = _VOICED_MARKS | _SEMI_VOICED_MARKS
_ITERATION_MARKS = frozenset("ヽヾ")                  # ゝゞ become ヽヾ with hira2kata

#: ヴ + small vowel / small ヤ行 (rule 4).
_V_PAIRS = {
    "ヴァ": "ハ", "ヴィ": "ヒ", "ヴェ": "ヘ", "ヴォ": "ホ",
    "ヴャ": "ヒヤ", "ヴュ": "ヒユ", "ヴョ": "ヒヨ",
}


def _build_fold() -> dict[str, str]:
    """One katakana → its folded form (rules 3–7), every value already a fixed point."""
    fold: dict[str, str] = {}
    for cp in range(0x30A1, 0x30F7):  # ァ .. ヶ
        ch = chr(cp)
        base = unicodedata.normalize("NFD", ch)[0]  # 濁音・半濁音 → 清音 (rule 3)
        if base != ch:
            fold[ch] = base
    fold.update({"ヂ": "シ", "ヅ": "ス", "ヴ": "フ"})
    fold.update(zip("ヷヸヹヺ", "ハヒヘホ"))
    fold.update(zip("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ"))            # rule 5
    fold.update(zip("ㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ", "クシストヌハヒフヘホムラリルレロ"))
    fold.update({"ヲ": "オ", "ヰ": "イ", "ヱ": "エ"})                                 # rule 6
    fold["ワ"] = "ハ"                                                                  # rule 7
    for ch, target in list(fold.items()):  # resolve chains (ヮ → ワ → ハ)
        while target in fold:
            target = fold[target]
        fold[ch] = target
    return fold


_FOLD = _build_fold()

#: オ段 as it appears after folding (rule 8).
_O_DAN = frozenset("オコソトノホモヨロ")


def _is_katakana(ch: str) -> bool:
    return "\u30a1" <= ch <= "\u30fa" or "\u31f0" <= ch <= "\u31ff"


def _widen(text: str) -> str:
    """Half-width → full-width kana, hiragana → katakana (jaconv)."""
    return jaconv.hira2kata(jaconv.h2z(text, kana=True, ascii=False, digit=False))


def _append(out: list[str], ch: str) -> None:
    if ch == "ウ" and out and out[-1] in _O_DAN:  # rule 8, over our own output
        ch = "オ"
    out.append(ch)


def seion(text: str) -> str:
    """The 清音化 search key of a kana name (see the module docstring for the rules).

    >>> seion('きょうこ')
    'キヨオコ'
    >>> seion('ヴュー'), seion('ビュー')
    ('ヒユ', 'ヒユ')
    >>> seion('ｳﾞｪﾙﾃﾞｨ')
    'ヘルテイ'
    >>> seion('カ\\u3099ク'), seion('ウ゛')   # stray / combining sound marks
    ('カク', 'フ')
    >>> seion('オウウ')                      # rule 8 runs over its own output
    'オオオ'
    >>> seion('ウオ'), seion('AウX')         # first position / after a non-kana: kept
    ('ウオ', 'AウX')
    >>> seion(seion('ｷｮｳﾄ ｶﾞｸｴﾝ')) == seion('ｷｮｳﾄ ｶﾞｸｴﾝ')
    True
    >>> seion('')
    ''
    """
    return _seion(text)


@lru_cache(maxsize=2048)   # bounded: a long seed must not grow it (Q1)
def _seion(text: str) -> str:
    """:func:`seion`, cached (a pure function of the text)."""
    # rules 1 and 2: one script and width; drop spaces and long-vowel marks; join sound marks
    kept: list[str] = []
    for ch in _widen(text):
        if ch.isspace() or ch in LONG_VOWEL_MARKS:
            continue
        if ch in _SOUND_MARKS:
            if ch in _VOICED_MARKS and kept and _is_katakana(kept[-1]):
                voiced = unicodedata.normalize("NFC", kept[-1] + "\u3099")
                if len(voiced) == 1:  # ウ゛ → ヴ, ワ゛ → ヷ; the others fold back anyway
                    kept[-1] = voiced
            continue
        kept.append(ch)

    # rules 3–7 per kana (ヴ looks one ahead), rule 8 on append, rule 9 from the output
    out: list[str] = []
    i, n = 0, len(kept)
    while i < n:
        ch = kept[i]
        pair = ch + kept[i + 1] if i + 1 < n else ""
        if pair in _V_PAIRS:
            folded = _V_PAIRS[pair]
            i += 2
        elif ch in _ITERATION_MARKS and out and _is_katakana(out[-1]):
            folded = out[-1]
            i += 1
        else:
            folded = _FOLD.get(ch, ch)
            i += 1
        for f in folded:
            _append(out, f)
    return "".join(out)


_KANA_LETTERS = (
    [(0x3041, 0x3096), (0x309D, 0x309E)]     # ぁ..ゖ, ゝゞ
    + [(0x30A1, 0x30FA), (0x30FD, 0x30FE)]   # ァ..ヺ, ヽヾ
    + [(0x31F0, 0x31FF), (0xFF66, 0xFF6F), (0xFF71, 0xFF9D)]  # ㇰ..ㇿ, ｦ..ｯ, ｱ..ﾝ
)


def _is_kana_letter(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _KANA_LETTERS)


_FORMAT_ERROR = ("KANA_FORMAT", "ふりがなはカタカナで入力してください。")


def validate_kana(text: str) -> str:
    """Check a ふりがな and return it in full-width katakana.

    Allowed: hiragana, katakana (full- or half-width), sound marks joined to a kana, long-vowel
    marks, and spaces between the name parts. Returned form: full-width katakana, every
    long-vowel mark written ー, each run of spaces one full-width space (U+3000), no leading or
    trailing space. Anything else (漢字, latin, digits, ・, an empty value) is refused with
    ``KANA_FORMAT``; the message never repeats the input.

    >>> validate_kana('ｶﾞｯｺｳ')
    'ガッコウ'
    >>> validate_kana(' すずき  いちろう ')
    'スズキ\\u3000イチロウ'
    >>> validate_kana('ヴァイオリン-ヱ')
    'ヴァイオリンーヱ'
    >>> validate_kana('ｳﾞｧ'), validate_kana('ウ゛')
    ('ヴァ', 'ヴ')
    >>> try:
    ...     validate_kana('ジョン・スミス')
    ... except JukinetError as e:
    ...     print(e.code, e.field)
    KANA_FORMAT name_kana
    >>> validate_kana('　')
    Traceback (most recent call last):
    ...
    jukinet.errors.JukinetError: KANA_FORMAT: ふりがなはカタカナで入力してください。
    """
    if not isinstance(text, str):
        raise JukinetError(*_FORMAT_ERROR, field="name_kana")
    return _validate_kana(text)


@lru_cache(maxsize=2048)   # bounded: a long seed must not grow it (Q1)
def _validate_kana(text: str) -> str:
    """:func:`validate_kana` of a str, cached (a refusal is raised anew each time, never cached)."""
    if not any(_is_kana_letter(ch) for ch in text) or not all(
        _is_kana_letter(ch) or ch in _SOUND_MARKS or ch in LONG_VOWEL_MARKS or ch.isspace() for ch in text
    ):
        raise JukinetError(*_FORMAT_ERROR, field="name_kana")
    t = _widen(text)
    t = t.translate({0x309B: 0x3099, 0x309C: 0x309A, 0xFF9E: 0x3099, 0xFF9F: 0x309A})
    t = unicodedata.normalize("NFC", t)  # only kana here: joins カ + ゛ → ガ
    if any(ch in _SOUND_MARKS for ch in t):  # a sound mark with nothing to join
        raise JukinetError(*_FORMAT_ERROR, field="name_kana")
    t = "".join("ー" if ch in LONG_VOWEL_MARKS else ch for ch in t)
    return "\u3000".join(t.split())


def is_kana(text: str) -> bool:
    """True when :func:`validate_kana` accepts ``text``.

    >>> is_kana('ﾀﾅｶ ﾀﾛｳ'), is_kana('たなか　たろう'), is_kana('タナカ・タロウ'), is_kana(None)
    (True, True, False, False)
    """
    try:
        validate_kana(text)
    except JukinetError:
        return False
    return True
