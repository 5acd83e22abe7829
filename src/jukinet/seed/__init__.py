"""Synthetic population of the installation's prefecture (三重県 by default) for both registers
(``jukinet seed --residents N [--seed S] [--prefecture NN]``).

    from jukinet.seed import populate
    report = populate(registers, 100_000, seed=0, progress=lambda done, total: ...)

See :mod:`jukinet.seed.generator` for what the population looks like (proportions, codes, dates)
and :mod:`jukinet.seed.populate` for how it is stored.
"""

from jukinet.seed.generator import DEFAULT_TODAY, Params, generate
from jukinet.seed.populate import Progress, SeedReport, populate

__all__ = ["populate", "SeedReport", "Progress", "Params", "generate", "DEFAULT_TODAY"]
