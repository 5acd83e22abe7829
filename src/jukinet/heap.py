"""Giving back to the system the memory a big transient job has freed (glibc's ``malloc_trim``).

A long-running server that now and then builds something large — the monthly access-log analysis
and its PDF (A4), read on the one report thread (ADR 0046) — frees it afterwards, but glibc keeps the
freed pages of that thread's arena mapped: the process's resident size then stays at the high-water
mark of the largest job so far, and grows with the month the soak writes (issue 17, 30-minute soak on
PostgreSQL: +12 % in 25 minutes, a step at every analysis). ``malloc_trim(0)`` returns the free pages
of every arena to the kernel (``madvise(MADV_DONTNEED)``; glibc ≥ 2.8 walks all arenas). Where the C
library has no ``malloc_trim`` (musl, macOS) :func:`trim` does nothing and says so.

>>> trim() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim() -> bool:
    """Return freed heap pages to the system; ``True`` when the C library could (glibc)."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
