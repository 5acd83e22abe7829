"""The complete schema of each register database: every module that defines tables is imported
here, so ``METADATA[register]`` describes everything the migrations create."""

from jukinet.store import (tables, tables_audit, tables_disclosure, tables_intake, tables_provision,  # noqa: F401
                           tables_governance, tables_media, tables_reconcile, tables_security)
from jukinet.store.tables import METADATA

__all__ = ["METADATA"]
