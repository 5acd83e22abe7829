"""Create the two register databases for a data directory (``jukinet init``).

SQLite (the embedded default): ``DIR/juki.sqlite3``, ``DIR/fuhyo.sqlite3`` and ``DIR/admin.sqlite3``
(operators and catalogues, no 本人確認情報).

PostgreSQL: given an administrator URL to one database, create schema ``juki`` owned by role
``<db>_juki``, schema ``fuhyo`` owned by role ``<db>_fuhyo`` and schema ``admin`` owned by ``<db>_admin``. Each role can reach only its own
schema (no USAGE on the other; PUBLIC loses CONNECT), and its ``search_path`` is its schema, so the
same unqualified tables serve both engines. The registers' URLs in the config connect as those
roles (ADR 0002).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from sqlalchemy import create_engine, text

from jukinet.config import DatabaseConfig
from jukinet.errors import JukinetError
from jukinet.store import migrate
from jukinet.store.engine import is_sqlite, make_engine, postgres_url

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


def sqlite_urls(data_dir: Path) -> DatabaseConfig:
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return DatabaseConfig(juki_url=f"sqlite:///{data_dir / 'juki.sqlite3'}",
                          fuhyo_url=f"sqlite:///{data_dir / 'fuhyo.sqlite3'}",
                          admin_url=f"sqlite:///{data_dir / 'admin.sqlite3'}")


def postgres_roles(admin_url: str) -> DatabaseConfig:
    """Create (or reset) the two schemas and roles; return the per-register URLs."""
    url = postgres_url(admin_url)       # a multi-host URL (several nodes) is kept as such
    db = url.database or ""
    if not _IDENT.match(db):
        raise JukinetError("DB_NAME_INVALID", "データベース名は英小文字・数字・_ で指定してください。")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    urls = {}
    with engine.connect() as conn:
        conn.execute(text(f'REVOKE CONNECT ON DATABASE "{db}" FROM PUBLIC'))
        for register in migrate.STORES:
            role = f"{db}_{register}"
            password = secrets.token_urlsafe(24)
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(text(f"{verb} ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS {register} AUTHORIZATION "{role}"'))
            conn.execute(text(f'REVOKE ALL ON SCHEMA {register} FROM PUBLIC'))
            conn.execute(text(f'GRANT CONNECT ON DATABASE "{db}" TO "{role}"'))
            conn.execute(text(f'ALTER ROLE "{role}" IN DATABASE "{db}" SET search_path = {register}'))
            urls[register] = url.set(drivername="postgresql+psycopg", username=role, password=password) \
                .render_as_string(hide_password=False)
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    engine.dispose()
    return DatabaseConfig(juki_url=urls["juki"], fuhyo_url=urls["fuhyo"], admin_url=urls["admin"])


def database_config(data_dir: Path, db_url: str | None) -> DatabaseConfig:
    if db_url is None or is_sqlite(db_url):
        return sqlite_urls(data_dir)
    if db_url.startswith("postgresql"):
        return postgres_roles(db_url)
    raise JukinetError("DB_URL_UNSUPPORTED", "データベースURLは sqlite または postgresql を指定してください。")


def migrate_all(db: DatabaseConfig, data_dir: Path | None = None) -> None:
    """Upgrade every database to its head; ``data_dir`` holds the keys a migration may need (ADR 0025)."""
    for store in migrate.STORES:
        engine = make_engine(db.url(store), synchronous=db.sqlite_synchronous)
        try:
            migrate.upgrade(store, engine, data_dir=data_dir)
        finally:
            engine.dispose()
