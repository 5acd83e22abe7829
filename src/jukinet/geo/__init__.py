"""Geography for synthetic data: Mie's municipalities, their 町域, and a few places elsewhere.

See :mod:`jukinet.geo.mie`.
"""

from jukinet.geo.mie import (BY_CODE, MUNICIPALITIES, OTHER_BY_CODE, OTHER_MUNICIPALITIES, Municipality, Town,
                             format_address, is_mie, random_address, towns)

__all__ = ["Municipality", "Town", "MUNICIPALITIES", "BY_CODE", "OTHER_MUNICIPALITIES", "OTHER_BY_CODE",
           "towns", "format_address", "random_address", "is_mie"]
