"""How a newcomer signs in to the demo (``make demo``; issue 19, ADR 0042) — **the demo only**.

A Linux desktop usually has no platform authenticator (no fingerprint reader, no Windows Hello), so
WebAuthn alone would leave a newcomer locked out of their first ten minutes. The demo therefore
registers a demo システム管理者 ``DEMO-ADMIN`` with the registered fallback of A1 — a password plus a
one-time password (TOTP, RFC 6238) — through the ordinary service calls (``operator_register`` with
``password_allowed``, ``training_record``, ``password_grant``, all in the admin operation log with the
actor ``demo``), and an 操作端末 whose one-time activation link the browser opens first.

The password and the TOTP secret are shown once by the service; the demo keeps them in
``DIR/demo-admin/signin.json`` (0600, next to the demo backup key, and just as demo-only) so that a
second ``make demo`` prints the same sign-in again. Production never calls this module: there the
first administrator comes from ``jukinet operator bootstrap`` and enrolls a fingerprint.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from jukinet.security import training as TR
from jukinet.security.oplog import Actor

OPERATOR_ID = "DEMO-ADMIN"
DISPLAY_NAME = "デモ 管理者"
ACTOR = Actor("demo", None)
TERMINAL_NAME = "デモ端末"
COURSE = "デモ用 (研修の記録の例)"


@dataclass
class DemoSignIn:
    operator_id: str
    password: str
    totp_secret: str
    totp_uri: str
    #: one-time activation link of a new demo terminal (None when a terminal is already active)
    terminal_link: Optional[str] = None
    created: bool = False


def info_path(data_dir: Path) -> Path:
    return Path(data_dir) / "demo-admin" / "signin.json"


def ensure(sec, data_dir: Path, base_url: str, *, now: Optional[datetime] = None) -> DemoSignIn:
    """The demo administrator's sign-in, created the first time (logged as ``demo``)."""
    now = now or datetime.now(timezone.utc)
    path = info_path(data_dir)
    op = sec.get_operator(OPERATOR_ID)
    info = None
    if op is not None and op.status == "active" and path.is_file():
        d = json.loads(path.read_text(encoding="utf-8"))
        info = DemoSignIn(d["operator_id"], d["password"], d["totp_secret"], d["totp_uri"])
    if info is None:
        if op is None:
            sec.register_operator(ACTOR, display_name=DISPLAY_NAME, department="デモ", roles=["admin"],
                                  operator_id=OPERATOR_ID, password_allowed=True, now=now)
        if not sec.training_status(now).get(OPERATOR_ID, {}).get("trained"):
            sec.record_training(ACTOR, OPERATOR_ID, course=COURSE, taken_on=TR.today_jst(now).isoformat(), now=now)
        if op is not None and not op.password_allowed:
            raise RuntimeError("DEMO-ADMIN exists without the password fallback")  # never in a demo directory
        g = sec.grant_password(ACTOR, OPERATOR_ID, now=now)
        info = DemoSignIn(OPERATOR_ID, g.password, g.totp_secret, g.totp_uri, created=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in asdict(info).items() if k in ("operator_id", "password", "totp_secret",
                                                                        "totp_uri")}, f, ensure_ascii=False)
    if not [t for t in sec.list_terminals() if t.status == "active"]:
        _t, code = sec.add_terminal(ACTOR, TERMINAL_NAME, now=now)
        info.terminal_link = f"{base_url}/terminal/activate?code={code}"
    return info


__all__ = ["OPERATOR_ID", "DemoSignIn", "ensure", "info_path"]
