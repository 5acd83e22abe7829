"""三重県 (the default prefecture) under the names the callers of the Mie-only tables used.

Since ADR 0035 the municipalities and 町域 of every prefecture are data (:mod:`jukinet.geo.places`);
this module is :func:`~jukinet.geo.places.prefecture` ``(24)`` seen through the old names. New code
should ask :mod:`jukinet.geo` for the installation's prefecture (``config.prefecture_code``).

    >>> len(MUNICIPALITIES), sum(m.kind == "市" for m in MUNICIPALITIES)
    (29, 14)
    >>> BY_CODE["242012"].name, BY_CODE["243418"].address_prefix
    ('津市', '三重県三重郡菰野町')
    >>> t = towns("242012")[0]
    >>> t.oaza_code, len(t.name) > 0
    ('0001', True)
    >>> is_mie("242012"), is_mie("231061"), is_mie(None)
    (True, False, False)

:data:`OTHER_MUNICIPALITIES` is a handful of real municipalities (or wards) elsewhere, with a weight,
for 附票 persons whose 本籍 is in Mie but who live outside it (:func:`jukinet.geo.places.elsewhere`).
"""

from __future__ import annotations

from typing import Optional

from jukinet.geo.places import (Municipality, Town, elsewhere, format_address, prefecture, random_address,
                                random_banchi, towns)

__all__ = ["Municipality", "Town", "MUNICIPALITIES", "BY_CODE", "OTHER_MUNICIPALITIES", "OTHER_BY_CODE",
           "PREFECTURE", "PREFECTURE_CODE", "towns", "format_address", "random_banchi", "random_address",
           "is_mie"]

_MIE = prefecture(24)
PREFECTURE = _MIE.name
PREFECTURE_CODE = _MIE.code

#: The 29 municipalities of 三重県 (order: 全国地方公共団体コード).
MUNICIPALITIES: tuple[Municipality, ...] = _MIE.municipalities
BY_CODE: dict[str, Municipality] = dict(_MIE.by_code)

#: Municipalities outside Mie where people with a Mie 本籍 live (``weight``: our guess, Tokai first).
OTHER_MUNICIPALITIES: tuple[Municipality, ...] = elsewhere(24)
OTHER_BY_CODE: dict[str, Municipality] = {m.code: m for m in OTHER_MUNICIPALITIES}


def is_mie(code: Optional[str]) -> bool:
    """True for the code of one of Mie's 29 municipalities."""
    return code in BY_CODE
