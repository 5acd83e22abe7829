"""事務6 — 本人確認情報整合 (consistency checks with 市町村CS, requirement C1).

* :mod:`jukinet.reconcile.snapshot` — the ``jukinet.snapshot/1`` format a CS sends, its streaming
  validating reader and a writer.
* :mod:`jukinet.reconcile.service` — :func:`run_check` (the streaming sort-merge, storing the
  result or a refusal record), the result document, the periodic "who is due" view.
* :mod:`jukinet.reconcile.simulate` — build a CS's snapshot from a register, with injected
  differences (for ``jukinet sim cs-snapshot``, tests and benchmarks).
* :mod:`jukinet.reconcile.http` — the CS endpoint (``POST /cs/v1/consistency/{register}``).

ADR 0012 records the design.
"""

from jukinet.reconcile.service import CheckResult, due_status, get_run, list_runs, result_lines, run_check
from jukinet.reconcile.snapshot import SCHEMA, SnapshotReader, SnapshotRefused, write_snapshot

__all__ = ["CheckResult", "SCHEMA", "SnapshotReader", "SnapshotRefused", "due_status", "get_run", "list_runs",
           "result_lines", "run_check", "write_snapshot"]
