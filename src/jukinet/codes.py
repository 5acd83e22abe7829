"""Identification codes of the 住基ネット: 住民票コード, 個人番号 and 全国地方公共団体コード.

Each code has the same small verbs (after python-stdnum): ``compact`` strips spaces and hyphens,
``*_check_digit`` computes the check digit over the leading digits, ``validate_*`` returns the
compact string or raises a subclass of :class:`InvalidCode`, ``is_valid_*`` answers yes or no.

住民票コード (11 digits)
    10 random digits and a check digit. Rule we apply: weights 5,4,3,2,7,6,5,4,3,2 over the first
    ten digits (left to right); the check digit is 11 − (sum mod 11), and 0 when the remainder is
    0 or 1. This is the modulus-11 rule of 住民基本台帳法施行規則 第1条 (住民票コードの検査数字は
    「11を法とする剰余」による), with the weights as published in the 住基ネット 技術的基準
    (総務省告示). We apply this rule; the project's test data is generated with it.

    >>> juminhyo_code_check_digit('5260181590')
    '7'
    >>> validate_juminhyo_code('52601815907')
    '52601815907'
    >>> validate_juminhyo_code('5260 1815 907')
    '52601815907'
    >>> validate_juminhyo_code('52601815906')
    Traceback (most recent call last):
    ...
    jukinet.codes.InvalidChecksum: JUMINHYO_CODE_CHECKSUM: 住民票コードの検査数字が正しくありません。
    >>> validate_juminhyo_code('5260181590')
    Traceback (most recent call last):
    ...
    jukinet.codes.InvalidLength: JUMINHYO_CODE_LENGTH: 住民票コードは11桁で入力してください。

個人番号 (12 digits)
    番号法施行令 第8条: weights 6,5,4,3,2,7,6,5,4,3,2 over the first eleven digits; 11 − remainder,
    0 when the remainder ≤ 1. We do not write the rule again: python-stdnum's ``stdnum.jp.in_``
    implements it and we delegate to it.

    >>> kojin_bango_check_digit('62527601895')
    '7'
    >>> validate_kojin_bango('6252 7601 8957')
    '625276018957'
    >>> validate_kojin_bango('62527601895a')
    Traceback (most recent call last):
    ...
    jukinet.codes.InvalidFormat: KOJIN_BANGO_FORMAT: 個人番号は数字のみで入力してください。

全国地方公共団体コード (6 digits)
    総務省「全国地方公共団体コード」(昭和43年自治省告示): five digits (2 for the prefecture, 3 for the
    body) and a check digit; weights 6,5,4,3,2; the check digit is the last digit of 11 − (sum mod 11).

    >>> lg_code_check_digit('24202')   # 四日市市
    '1'
    >>> validate_lg_code('242080')     # 名張市
    '242080'
    >>> validate_lg_code('240001')     # 三重県
    '240001'
    >>> is_valid_lg_code('242022')
    False
"""

from __future__ import annotations

from stdnum.jp import in_ as _stdnum_in

from jukinet.errors import JukinetError

__all__ = [
    "InvalidCode", "InvalidLength", "InvalidFormat", "InvalidChecksum",
    "compact",
    "juminhyo_code_check_digit", "validate_juminhyo_code", "is_valid_juminhyo_code",
    "kojin_bango_check_digit", "validate_kojin_bango", "is_valid_kojin_bango",
    "lg_code_check_digit", "validate_lg_code", "is_valid_lg_code",
]

# kind -> (code prefix, Japanese name, length)
_KINDS = {
    "juminhyo_code": ("JUMINHYO_CODE", "住民票コード", 11),
    "kojin_bango": ("KOJIN_BANGO", "個人番号", 12),
    "lg_code": ("LG_CODE", "全国地方公共団体コード", 6),
}


class InvalidCode(JukinetError):
    """A code failed validation. Subclasses say how; ``kind`` says which code."""

    def __init__(self, kind: str):
        self.kind = kind
        prefix, label, length = _KINDS[kind]
        super().__init__(f"{prefix}_{self._suffix}", self._template.format(label=label, length=length), field=kind)


class InvalidLength(InvalidCode):
    """The code does not have the prescribed number of digits."""

    _suffix = "LENGTH"
    _template = "{label}は{length}桁で入力してください。"


class InvalidFormat(InvalidCode):
    """The code contains something other than the digits 0-9."""

    _suffix = "FORMAT"
    _template = "{label}は数字のみで入力してください。"


class InvalidChecksum(InvalidCode):
    """The check digit does not match the leading digits."""

    _suffix = "CHECKSUM"
    _template = "{label}の検査数字が正しくありません。"


def compact(number: str) -> str:
    """Strip spaces (half- and full-width) and hyphens; the value is otherwise kept.

    >>> compact(' 2420-21 ')
    '242021'
    """
    return "".join(str(number).split()).replace("-", "").replace("\u3000", "")


def _digits(number: str, kind: str, length: int) -> str:
    if number and not (number.isascii() and number.isdigit()):
        raise InvalidFormat(kind)
    if len(number) != length:
        raise InvalidLength(kind)
    return number


def _weighted_mod11(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights)) % 11


_JUMINHYO_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_LG_WEIGHTS = (6, 5, 4, 3, 2)


def juminhyo_code_check_digit(first10: str) -> str:
    """The check digit of a 住民票コード from its first ten digits."""
    first10 = _digits(compact(first10), "juminhyo_code", 10)
    r = _weighted_mod11(first10, _JUMINHYO_WEIGHTS)
    return "0" if r <= 1 else str(11 - r)


def validate_juminhyo_code(number: str) -> str:
    """Return the compact 住民票コード or raise :class:`InvalidCode`."""
    number = _digits(compact(number), "juminhyo_code", 11)
    if juminhyo_code_check_digit(number[:10]) != number[10]:
        raise InvalidChecksum("juminhyo_code")
    return number


def is_valid_juminhyo_code(number: str) -> bool:
    try:
        return bool(validate_juminhyo_code(number))
    except InvalidCode:
        return False


def kojin_bango_check_digit(first11: str) -> str:
    """The check digit of a 個人番号 from its first eleven digits (python-stdnum)."""
    first11 = _digits(compact(first11), "kojin_bango", 11)
    return _stdnum_in.calc_check_digit(first11)


def validate_kojin_bango(number: str) -> str:
    """Return the compact 個人番号 or raise :class:`InvalidCode`."""
    number = _digits(compact(number), "kojin_bango", 12)
    if kojin_bango_check_digit(number[:11]) != number[11]:
        raise InvalidChecksum("kojin_bango")
    return number


def is_valid_kojin_bango(number: str) -> bool:
    try:
        return bool(validate_kojin_bango(number))
    except InvalidCode:
        return False


def lg_code_check_digit(first5: str) -> str:
    """The check digit of a 全国地方公共団体コード from its first five digits."""
    first5 = _digits(compact(first5), "lg_code", 5)
    return str((11 - _weighted_mod11(first5, _LG_WEIGHTS)) % 10)


def validate_lg_code(number: str) -> str:
    """Return the compact 全国地方公共団体コード or raise :class:`InvalidCode`."""
    number = _digits(compact(number), "lg_code", 6)
    if lg_code_check_digit(number[:5]) != number[5]:
        raise InvalidChecksum("lg_code")
    return number


def is_valid_lg_code(number: str) -> bool:
    try:
        return bool(validate_lg_code(number))
    except InvalidCode:
        return False
