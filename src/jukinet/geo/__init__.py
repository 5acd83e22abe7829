"""Geography for synthetic data and lookups: every prefecture's municipalities and 町域, as data.

See :mod:`jukinet.geo.places` (the prefecture-aware API, ADR 0035) and :mod:`jukinet.geo.mie`
(三重県, the default, under the names of the former Mie-only tables).
"""

from jukinet.geo.mie import BY_CODE, MUNICIPALITIES, OTHER_BY_CODE, OTHER_MUNICIPALITIES, is_mie
from jukinet.geo.places import (DEFAULT_PREFECTURE, Municipality, Prefecture, Town, by_code, elsewhere, find,
                                format_address, municipalities, prefecture, prefectures, random_address,
                                random_banchi, towns)

__all__ = ["Municipality", "Town", "Prefecture", "DEFAULT_PREFECTURE", "prefectures", "prefecture", "municipalities",
           "by_code", "find", "towns", "elsewhere", "format_address", "random_banchi", "random_address",
           "MUNICIPALITIES", "BY_CODE", "OTHER_MUNICIPALITIES", "OTHER_BY_CODE", "is_mie"]
