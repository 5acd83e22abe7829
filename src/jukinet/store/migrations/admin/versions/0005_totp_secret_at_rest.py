"""admin database: the operators' TOTP secrets encrypted at rest (A1, A7; ADR 0029).

``operators.totp_secret`` (plaintext) becomes ``totp_secret_ct`` (AES-256-GCM, AAD = operator_id and
key id) and ``totp_secret_key`` (key id in ``DIR/keys/totp.json``). Existing secrets are sealed with
the plaintext cleared in the same UPDATE, then the plaintext column is dropped; SQLite runs with
``secure_delete`` and its write-ahead log is truncated afterwards (:mod:`jukinet.store.migrate`), so
no page keeps an old secret.

The key comes from the installation's data directory, handed in by :mod:`jukinet.store.migrate`
(``attributes["data_dir"]``, as for juki_0007); a database holding secrets cannot be upgraded without it.

Revision ID: admin_0005
Revises: admin_0004
"""

import sqlalchemy as sa
from alembic import context, op

from jukinet.errors import JukinetError
from jukinet.store.migrate import drop_column_recreate

revision = "admin_0005"
down_revision = "admin_0004"
branch_labels = None
depends_on = None

_T = sa.table("operators", sa.column("operator_id", sa.String), sa.column("totp_secret", sa.String),
              sa.column("totp_secret_ct", sa.LargeBinary), sa.column("totp_secret_key", sa.SmallInteger))


def _cipher(conn):
    from jukinet.security.totp_secret import cipher_for

    data_dir = context.config.attributes.get("data_dir")
    if data_dir is None:
        raise JukinetError("ATREST_KEY_UNAVAILABLE",
                           "TOTP秘密鍵を暗号化する鍵がありません（データディレクトリを指定して移行してください）。")
    return cipher_for(data_dir, conn)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    with op.batch_alter_table("operators", recreate="never") as b:
        b.add_column(sa.Column("totp_secret_ct", sa.LargeBinary))
        b.add_column(sa.Column("totp_secret_key", sa.SmallInteger))
    rows = conn.execute(sa.select(_T.c.operator_id, _T.c.totp_secret).where(_T.c.totp_secret.is_not(None))).all()
    if rows:
        cipher = _cipher(conn)
        for r in rows:
            ct, kid = cipher.encrypt(r.operator_id, r.totp_secret)
            conn.execute(sa.update(_T).where(_T.c.operator_id == r.operator_id)
                         .values(totp_secret=None, totp_secret_ct=ct, totp_secret_key=kid))
    with op.batch_alter_table("operators", recreate=drop_column_recreate(conn)) as b:
        b.drop_column("totp_secret")


def downgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("operators", recreate="never") as b:
        b.add_column(sa.Column("totp_secret", sa.String(64)))
    rows = conn.execute(sa.select(_T.c.operator_id, _T.c.totp_secret_ct, _T.c.totp_secret_key)
                        .where(_T.c.totp_secret_ct.is_not(None))).all()
    if rows:
        cipher = _cipher(conn)
        for r in rows:
            conn.execute(sa.update(_T).where(_T.c.operator_id == r.operator_id)
                         .values(totp_secret=cipher.open(r.operator_id, r.totp_secret_ct, r.totp_secret_key)))
    with op.batch_alter_table("operators", recreate=drop_column_recreate(conn)) as b:
        b.drop_column("totp_secret_ct")
        b.drop_column("totp_secret_key")
