"""Services of the operator side: roster (A2), terminals, login (A1), sessions and the idle lock (A6).

Each public method is one use case: it takes plain arguments (the command) and runs in its own
transaction on the ``admin`` database (the unit of work), writing its operation-log entry to the
admin chain in that same transaction. A refusal is logged in a transaction of its own (the work's
transaction is rolled back) and then raised as :class:`~jukinet.security.model.Refused`.

Secrets (enrollment links, terminal activation codes, session tokens, terminal secrets) are
random; only their SHA-256 is stored. The TOTP secrets of the password fallback must be read back,
so they are sealed instead (AES-256-GCM bound to the operator, :mod:`jukinet.security.totp_secret`).

**One module per concern, one class for the doors** (issue 13; ADR 0054). The use cases live in

==========================  =====================================================================
``base.SecurityBase``       config, registers, operation log; the operator row, actor, permission
                            check, refusal logging (shared by every part)
``training_records``        security training records and the training gate (G1)
``operators``               the roster (A2): register, change, suspend, recover, export
``terminals``               操作端末: registration, activation, revocation, the terminal secret
``signin``                  WebAuthn enrollment and sign-in, password + TOTP, lockout, session start (A1)
``maintenance``             the witnessed sign-in of a 保守作業者 (G5)
``sessions``                resolve a request to its operator, idle lock, screen lock, logout (A6)
==========================  =====================================================================

and :class:`Security` composes them as **mixins**: every part is a class over
:class:`~jukinet.security.base.SecurityBase` that derives from the part it builds on (``operators``
and ``signin`` on ``training_records``, ``maintenance`` on ``signin``), so each module imports
what it calls and the helpers stay private methods shared through ``self``. Mixins rather than
collaborators because the parts share one state (config, registers, the cached TOTP cipher, the
operation log) and many private helpers (``_operator``, ``_trained``, ``_start_session``): one
object keeps every method name and signature of the public surface and every call site
(``inst.security.login_verify(...)``) unchanged. Only :class:`Security` is instantiated (by
:mod:`jukinet.bootstrap`). The names importers use (``Security``, ``sha256``, ``now_utc``,
``LoginResult``, ``Resolved``, ``PasswordGrant``) are re-exported here.
"""

from __future__ import annotations

from jukinet.security.base import LoginResult, PasswordGrant, Resolved, SecurityBase, as_json, now_utc, sha256
from jukinet.security.maintenance import Maintenance
from jukinet.security.operators import Operators
from jukinet.security.sessions import Sessions
from jukinet.security.signin import SignIn
from jukinet.security.terminals import Terminals
from jukinet.security.training_records import TrainingRecords

__all__ = ["Security", "LoginResult", "PasswordGrant", "Resolved", "as_json", "now_utc", "sha256",
           "SecurityBase", "TrainingRecords", "Operators", "Terminals", "SignIn", "Maintenance", "Sessions"]


class Security(Operators, Terminals, Maintenance, Sessions):
    """The operator-side services of one installation: every use case of the parts above."""
