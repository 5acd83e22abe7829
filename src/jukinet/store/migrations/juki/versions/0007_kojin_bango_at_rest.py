"""juki register: 個人番号 encrypted at rest (A7, A3; ADR 0025).

``kojin_bango`` (plaintext, indexed) becomes ``kojin_bango_ct`` (AES-256-GCM, AAD = 住民票コード and
key id), ``kojin_bango_key`` (key id) and ``kojin_bango_bi`` (keyed blind index, indexed) in
``juki_current`` and ``juki_history``. Existing rows are sealed in batches inside the migration's
one transaction (a killed upgrade leaves the installation as it was), with the plaintext cleared in
the same UPDATE; then the plaintext column and its index are dropped (SQLite ≥ 3.35 natively). SQLite runs with
``secure_delete`` so freed pages carry no old number.

The keys come from the installation's data directory, handed in by :mod:`jukinet.store.migrate`
(``attributes["data_dir"]``); a database holding 個人番号 cannot be upgraded without it.

Revision ID: juki_0007
Revises: juki_0006
"""

import sqlalchemy as sa
from alembic import context, op

from jukinet.errors import JukinetError
from jukinet.store.migrate import drop_column_recreate

revision = "juki_0007"
down_revision = "juki_0006"
branch_labels = None
depends_on = None

BATCH = 5000
#: table -> its key column (keyset pagination)
TABLES = {"juki_current": "juminhyo_code", "juki_history": "history_id"}


def _cipher(conn):
    from jukinet.store.atrest import KojinBangoCipher

    data_dir = context.config.attributes.get("data_dir")
    if data_dir is None:
        raise JukinetError("ATREST_KEY_UNAVAILABLE", "個人番号を暗号化する鍵がありません（データディレクトリを指定して移行してください）。")
    return KojinBangoCipher.for_installation(data_dir)


def _scan_key(conn, key: str) -> str:
    """SQLite: walk the table in rowid order (its physical order; 住民票コード order would touch the
    pages at random). PostgreSQL: the primary key."""
    return "rowid" if conn.dialect.name == "sqlite" else key


def _table(name: str, *cols: str) -> sa.Table:
    types = {"juminhyo_code": sa.String, "history_id": sa.Integer, "rowid": sa.Integer, "kojin_bango": sa.String,
             "kojin_bango_ct": sa.LargeBinary, "kojin_bango_key": sa.SmallInteger, "kojin_bango_bi": sa.String}
    return sa.table(name, *(sa.column(c, types[c]()) for c in dict.fromkeys(cols)))


def _batches(conn, t, key: str, where):
    last = None
    while True:
        q = sa.select(t.c[key], t.c.juminhyo_code, *[c for c in t.c if c.name not in (key, "juminhyo_code")])
        q = q.where(where)
        if last is not None:
            q = q.where(t.c[key] > last)
        rows = conn.execute(q.order_by(t.c[key]).limit(BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _sqlite_secure_delete(conn) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
        conn.exec_driver_sql("PRAGMA cache_size = -131072")   # 128 MiB for the rewrite


def upgrade() -> None:
    conn = op.get_bind()
    _sqlite_secure_delete(conn)
    for name in TABLES:
        with op.batch_alter_table(name, recreate="never") as b:
            b.add_column(sa.Column("kojin_bango_ct", sa.LargeBinary))
            b.add_column(sa.Column("kojin_bango_key", sa.SmallInteger))
            b.add_column(sa.Column("kojin_bango_bi", sa.String(32)))
    # the key file is created now when the data directory is known (`jukinet init`), else on first need
    cipher = _cipher(conn) if context.config.attributes.get("data_dir") is not None else None
    for name, key in TABLES.items():
        key = _scan_key(conn, key)
        cols = {key, "juminhyo_code", "kojin_bango"}
        t = _table(name, *sorted(cols))
        upd = _table(name, *sorted(cols | {"kojin_bango_ct", "kojin_bango_key", "kojin_bango_bi"}))
        stmt = (sa.update(upd).where(upd.c[key] == sa.bindparam("k"))
                .values(kojin_bango=None, kojin_bango_ct=sa.bindparam("ct"), kojin_bango_key=sa.bindparam("kid"),
                        kojin_bango_bi=sa.bindparam("bi")))
        for rows in _batches(conn, t, key, t.c.kojin_bango.is_not(None)):
            cipher = cipher or _cipher(conn)
            params = []
            for r in rows:
                ct, kid, bi = cipher.seal(r.juminhyo_code, r.kojin_bango)
                params.append({"k": r[0], "ct": ct, "kid": kid, "bi": bi})
            conn.execute(stmt, params)
    op.drop_index("ix_juki_current_kojin_bango", table_name="juki_current")
    op.drop_index("ix_juki_history_kojin_bango", table_name="juki_history")
    for name in TABLES:     # SQLite ≥ 3.35 drops a column in place; older ones need the table copied
        with op.batch_alter_table(name, recreate=drop_column_recreate(conn)) as b:
            b.drop_column("kojin_bango")
    op.create_index("ix_juki_current_kojin_bango_bi", "juki_current", ["kojin_bango_bi"])
    op.create_index("ix_juki_history_kojin_bango_bi", "juki_history", ["kojin_bango_bi"])


def downgrade() -> None:
    conn = op.get_bind()
    op.drop_index("ix_juki_current_kojin_bango_bi", table_name="juki_current")
    op.drop_index("ix_juki_history_kojin_bango_bi", table_name="juki_history")
    for name in TABLES:
        with op.batch_alter_table(name, recreate="never") as b:
            b.add_column(sa.Column("kojin_bango", sa.String(12)))
    cipher = None
    for name, key in TABLES.items():
        key = _scan_key(conn, key)
        t = _table(name, key, "juminhyo_code", "kojin_bango_ct", "kojin_bango_key")
        upd = _table(name, key, "kojin_bango")
        stmt = sa.update(upd).where(upd.c[key] == sa.bindparam("k")).values(kojin_bango=sa.bindparam("kb"))
        for rows in _batches(conn, t, key, t.c.kojin_bango_ct.is_not(None)):
            cipher = cipher or _cipher(conn)
            conn.execute(stmt, [{"k": r[0], "kb": cipher.open(r.juminhyo_code, r.kojin_bango_ct, r.kojin_bango_key)}
                                for r in rows])
    for name in TABLES:
        with op.batch_alter_table(name, recreate=drop_column_recreate(conn)) as b:
            b.drop_column("kojin_bango_ct")
            b.drop_column("kojin_bango_key")
            b.drop_column("kojin_bango_bi")
    op.create_index("ix_juki_current_kojin_bango", "juki_current", ["kojin_bango"])
    op.create_index("ix_juki_history_kojin_bango", "juki_history", ["kojin_bango"])
