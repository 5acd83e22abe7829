"""Alembic migrations, one tree per register (``migrations/juki``, ``migrations/fuhyo``).

Each register's database has its own ``alembic_version`` table. Run them with
:func:`upgrade` / :func:`downgrade` (``jukinet init`` does the upgrade).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
REGISTERS = ("juki", "fuhyo")
#: every database of an installation: the two registers and ``admin`` (operators, roles, catalogues —
#: no 本人確認情報; ADR 0004)
STORES = REGISTERS + ("admin",)


def alembic_config(register: str, engine: Engine, data_dir: Path | str | None = None) -> AlembicConfig:
    """``data_dir`` gives migrations that seal data the installation's keys (juki_0007, ADR 0025)."""
    if register not in STORES:
        raise ValueError(register)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS / register))
    cfg.attributes["engine"] = engine
    cfg.attributes["data_dir"] = data_dir
    return cfg


def _truncate_wal(engine: Engine) -> None:
    """SQLite: empty the write-ahead log after a migration (no page image of old data stays in it)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def upgrade(register: str, engine: Engine, revision: str = "head", data_dir: Path | str | None = None) -> None:
    command.upgrade(alembic_config(register, engine, data_dir), revision)
    _truncate_wal(engine)


def downgrade(register: str, engine: Engine, revision: str = "base", data_dir: Path | str | None = None) -> None:
    command.downgrade(alembic_config(register, engine, data_dir), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(register: str, engine: Engine) -> str:
    return ScriptDirectory.from_config(alembic_config(register, engine)).get_current_head()


def rebuild_name_birth_index(op, table: str, *, pattern_ops: bool) -> None:
    """PostgreSQL: rebuild ``ix_<table>_name_birth`` with (or without) ``text_pattern_ops`` on ``name``
    (juki_0008, fuhyo_0007; ADR 0011). SQLite: nothing — its prefix predicate is a byte-wise range."""
    if op.get_bind().dialect.name != "postgresql":
        return
    name = f"ix_{table}_name_birth"
    op.drop_index(name, table_name=table)
    op.create_index(name, table, ["name", "birth_date"],
                    postgresql_ops={"name": "text_pattern_ops"} if pattern_ops else {})


def drop_column_recreate(conn) -> str:
    """``recreate`` for ``batch_alter_table`` when dropping a column: SQLite ≥ 3.35 drops it in place
    (no copy of a table others refer to), older ones need the table copied (juki_0007, admin_0005)."""
    native = conn.dialect.name != "sqlite" or conn.dialect.dbapi.sqlite_version_info >= (3, 35)
    return "never" if native else "always"
