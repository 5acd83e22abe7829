"""Upgrading an installation in place (A7, Q2; ADR 0028): ``jukinet migrate``.

* :func:`schema_status` — per database (juki, fuhyo, admin): the revision it is at, the head of
  this release's migrations, and the migrations still to run. Reads only.
* :func:`upgrade` — run the pending migrations of every database that is behind, one database
  at a time (each migration in its own transaction, alembic), with the installation's data
  directory (juki_0007 seals 個人番号 with the key kept there, ADR 0025). ``jukinet.toml`` is
  never written.
* :func:`require_current` — what ``jukinet serve`` checks before it starts: a database behind its
  head (or at a revision this release does not know, i.e. written by a newer release) is refused
  with ``SCHEMA_BEHIND`` / ``SCHEMA_UNKNOWN_REVISION`` naming the command to run.

Only revision ids and counts are reported: no value of a register.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from alembic.script import ScriptDirectory

from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.store import migrate
from jukinet.store.engine import make_engine


@dataclass
class SchemaState:
    store: str
    current: Optional[str]
    head: str
    #: revisions still to run, oldest first (empty at head)
    pending: list = field(default_factory=list)
    #: the database's revision is not one of this release's (a newer release wrote it)
    unknown: bool = False

    @property
    def behind(self) -> bool:
        return bool(self.pending)

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def _engine(config: Config, store: str):
    return make_engine(config.database.url(store), synchronous=config.database.sqlite_synchronous)


def state_of(store: str, engine) -> SchemaState:
    scripts = ScriptDirectory.from_config(migrate.alembic_config(store, engine))
    head = scripts.get_current_head()
    try:
        current = migrate.current_revision(engine)
    except Exception as e:  # noqa: BLE001 - reported by code (an unreachable database quotes its URL)
        raise JukinetError("DB_UNREACHABLE", f"データベース {store} に接続できません。") from e
    st = SchemaState(store, current, head)
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        st.unknown = True
        return st
    if current != head:
        # iterate_revisions walks from head down to (not including) current
        st.pending = [s.revision for s in scripts.iterate_revisions(head, current or "base")][::-1]
    return st


def schema_status(config: Config) -> list[SchemaState]:
    out = []
    for store in migrate.STORES:
        engine = _engine(config, store)
        try:
            out.append(state_of(store, engine))
        finally:
            engine.dispose()
    return out


def unknown_error(states: list[SchemaState]) -> JukinetError:
    names = ", ".join(f"{s.store}: {s.current}" for s in states if s.unknown)
    return JukinetError("SCHEMA_UNKNOWN_REVISION",
                        f"このバージョンの jukinet が知らないデータベースの版です ({names})。"
                        "より新しい版で移行されたデータベースです。新しい版の jukinet を使ってください。")


def upgrade(config: Config, *, progress: Optional[Callable[[str, int, int], None]] = None) -> list[SchemaState]:
    """Bring every database that is behind to its head; returns the states *before* the upgrade.

    ``progress(store, done, total)`` is called before each database is upgraded and once at the end.
    A database at a revision unknown to this release stops everything before anything is changed.
    """
    before = schema_status(config)
    if any(s.unknown for s in before):
        raise unknown_error(before)
    todo = [s for s in before if s.behind]
    for i, s in enumerate(todo):
        if progress:
            progress(s.store, i, len(todo))
        engine = _engine(config, s.store)
        try:
            migrate.upgrade(s.store, engine, data_dir=config.data_dir)
        finally:
            engine.dispose()
    if progress:
        progress("", len(todo), len(todo))
    return before


def require_current(config: Config, data_dir_hint: str | None = None) -> None:
    """Refuse to serve a database that is not at this release's head (``jukinet serve``)."""
    states = schema_status(config)
    if any(s.unknown for s in states):
        raise unknown_error(states)
    behind = [s for s in states if s.behind]
    if behind:
        names = ", ".join(f"{s.store}: {s.current or 'なし'} → {s.head}" for s in behind)
        hint = f" --data-dir {data_dir_hint}" if data_dir_hint else ""
        raise JukinetError("SCHEMA_BEHIND",
                           f"データベースが最新の版ではありません ({names})。先にバックアップ (`jukinet backup{hint}`) "
                           f"を取り、`jukinet migrate{hint}` を実行してから起動してください。")
