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


def alembic_config(register: str, engine: Engine) -> AlembicConfig:
    if register not in STORES:
        raise ValueError(register)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS / register))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(register: str, engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(register, engine), revision)


def downgrade(register: str, engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(register, engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(register: str, engine: Engine) -> str:
    return ScriptDirectory.from_config(alembic_config(register, engine)).get_current_head()
