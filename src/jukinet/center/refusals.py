"""Refusals the center makes before any tenant sees the request, written where they belong (ADR 0053).

The router (:mod:`jukinet.center_server`) and the center's commands refuse some requests themselves: a
CS whose request names another prefecture's municipality (``TENANT_MISMATCH``), a certificate of a
prefecture the center does not host (``TENANT_UNKNOWN``) or not a CS's (``NOT_A_CS``), an operator's
terminal presenting another prefecture's session (``TENANT_MISMATCH``), a session from an unregistered
terminal (``TERMINAL_UNREGISTERED``), the operations view from outside (``CENTER_OPS_FORBIDDEN``),
``center remove`` without ``--confirm`` (``CENTER_CONFIRM_REQUIRED``). Each such refusal is written

* to the center log (``logs/center.jsonl``): the event, the code, the prefecture numbers — no personal
  data, as before;
* to the hash-chained operation log (``admin`` chain) of every **hosted** prefecture it concerns, as
  ``center_refused`` with outcome ``refused``:

  - the **targets** — the prefectures whose files the request aimed at (named in the body, the owner of
    the session presented, the prefecture a command names): they are the owners;
  - the **caller's** prefecture — the prefecture of the CS certificate or of the terminal that sent it:
    it sees its own CS or terminal misbehaving.

  The entry's detail holds the code the caller got, the door, the caller's and the targets' prefecture
  numbers, and what identifies the caller without personal data (the certificate's fingerprint and
  municipality code, the terminal ID in the caller's own log). The actor is the caller as the writing
  tenant knows it: the CS (``lg:NNNNNN``), the tenant's own terminal, the tenant's own operator whose
  session was presented — never another prefecture's operator ID.

A refusal that concerns no hosted prefecture (no certificate, an unknown terminal without a session, a
removed tenant's CS naming only itself) stays in the center log only: there is no owner's chain to
write to. Writing never fails the refusal (the caller is refused anyway; see
:meth:`jukinet.security.service.Security.log_refusal`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import Callable, Iterable, Mapping, Optional

from jukinet.bootstrap import Installation, bootstrap
from jukinet.center.registry import Center
from jukinet.errors import JukinetError
from jukinet.security.oplog import Actor

ACTION = "center_refused"


def refusal_detail(code: str, door: str, caller: Optional[int], targets: Iterable[int], **extra) -> dict:
    """The detail of a ``center_refused`` entry (codes and numbers only)."""
    d = {"code": code, "door": door, "caller_prefecture": caller, "target_prefectures": sorted(set(targets))}
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def record_refusal(center: Center, code: str, message: str, *, event: str, door: str,
                   caller: Optional[int] = None, targets: Iterable[Optional[int]] = (),
                   installations: Optional[Mapping[int, Installation]] = None,
                   actor: Optional[Actor] = None, actors: Optional[Mapping[int, Actor]] = None,
                   counted: Optional[Callable[[int], AbstractContextManager]] = None, **detail) -> list[int]:
    """Write one refusal to the center log and to the ``admin`` chain of each hosted prefecture concerned
    (the targets and the caller's); returns the prefectures written to.

    ``installations``: the open installations (the running router); without it a hosted tenant is opened
    for the write (a command of the center). ``actor``: who the caller is (default: the center);
    ``actors``: per prefecture, where its log knows the caller otherwise (its own terminal, its own
    operator). ``counted``: the context in which prefecture N's entry is counted (its own metrics in a
    running center). ``detail``: codes and identifiers without personal data (certificate fingerprint,
    …), in both logs."""
    target_set = {t for t in targets if t is not None and t != caller}
    about = caller if caller is not None else (min(target_set) if len(target_set) == 1 else None)
    center.log_event(event, code=code, prefecture=about, door=door,
                     **({"targets": sorted(target_set)} if target_set else {}),
                     **{k: v for k, v in detail.items() if v is not None})
    hosted = {t.prefecture for t in center.tenants}
    concerned = sorted(n for n in target_set | ({caller} if caller is not None else set()) if n in hosted)
    entry = refusal_detail(code, door, caller, target_set, **detail)
    err = JukinetError(code, message)
    with ExitStack() as stack:
        for n in concerned:
            inst = (installations or {}).get(n)
            if inst is None:
                t = center.tenant(n)
                try:
                    inst = stack.enter_context(bootstrap(center.tenant_dir(t)))
                except Exception:  # noqa: BLE001 - the tenant cannot be opened: the center log has it
                    center.log_event("tenant_log_failed", code=code, prefecture=n)
                    continue
            who = (actors or {}).get(n) or actor or Actor("center", None)
            with counted(n) if counted is not None else nullcontext():
                inst.security.log_refusal(who, ACTION, err, detail=entry)
    return concerned
