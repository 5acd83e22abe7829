"""日本語の表示名: what an operator reads instead of an internal name (ADR 0042).

The names themselves live in a data file, ``jukinet/data/labels.toml`` — not in Python — so that a
prefecture can review and adjust them without reading code: operation names of the operation log
(``login_page`` → ログイン画面の表示), actors that are not people (``scheduler`` → 自動処理), the
tables of the databases (``comm_log`` → 通信記録), statuses and the triggers of a checkpoint.

An unknown name is shown as it is (never an error: a log written by a newer release stays readable).

>>> action("media_written"), action("audit_report_download"), action("GET /roster")
('媒体の作成完了', '月次分析のダウンロード', '画面・APIの利用 (GET /roster)')
>>> actor("scheduler"), actor("OP0001"), actor(None)
('自動処理 (スケジューラ)', 'OP0001', '')
>>> table("alembic_version"), table("comm_log"), status("generated"), status("RETENTION_RULE_FAILED")
('スキーマの版', '通信記録', '作成しました', 'RETENTION_RULE_FAILED')
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Optional

PATH = Path(__file__).with_name("data") / "labels.toml"


@lru_cache(maxsize=1)
def data() -> dict[str, dict[str, str]]:
    """The whole file: ``{section: {name: 表示名}}``."""
    with open(PATH, "rb") as f:
        return tomllib.load(f)


def _get(section: str, name: Optional[str]) -> str:
    if name in (None, ""):
        return ""
    return data().get(section, {}).get(name, name)


def action(name: Optional[str]) -> str:
    """An operation name of the operation log; a refused request logged by route (``GET /x``) as such."""
    if name and " /" in name:
        return f"{data()['actions']['request']} ({name})"
    return _get("actions", name)


def actor(operator_id: Optional[str]) -> str:
    """An actor that is not a person (``init``, ``scheduler`` …) by its role; an operator ID unchanged."""
    return _get("actors", operator_id)


def table(name: Optional[str]) -> str:
    return _get("tables", name)


def status(value: Optional[str]) -> str:
    return _get("statuses", value)


def checkpoint_source(value: Optional[str]) -> str:
    return _get("checkpoint_sources", value)


def role_screens() -> dict[str, list[tuple[str, str]]]:
    """``{role: [(path, 画面名), …]}``: which role sees which screen.

    >>> role_screens()["operations"][0]
    ('/ops', '運用状況 (件数・容量のみ)')
    """
    return {role: [tuple(item.split(" ", 1)) for item in items] for role, items in data()["role_screens"].items()}


def is_system_actor(operator_id: Optional[str]) -> bool:
    return operator_id in data().get("actors", {})


__all__ = ["PATH", "data", "action", "actor", "table", "status", "checkpoint_source", "role_screens", "is_system_actor"]
