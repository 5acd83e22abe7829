"""Tables of 事務1 (intake from 市町村CS, outbox to the national servers, communication log).

Defined on the registers' metadata (``jukinet.store.tables.juki_metadata`` / ``fuhyo_metadata``);
created by migration ``*_0002``. Each register database has the same three tables:

``intake_notifications``
    Every *accepted* notification, keyed by (sending municipality, notification_id): the
    idempotency record (U4). ``digest`` is the SHA-256 of the notification's canonical JSON, so a
    resend with the same content is answered "duplicate" and one with other content is refused.
    ``update_seq`` links it to the version it created. No personal data.
``outbox``
    One row per applied update, keyed by its 更新順番号, until the national server has confirmed it
    (U5; ADR 0007). The message is rebuilt from the register version with that 更新順番号 when it
    is sent, so the outbox holds no copy of personal data beyond the 住民票コード that orders it.
``comm_log``
    通信の記録 (U6; ADR 0006): every message in or out — time, channel, direction, peer (certificate
    identity and fingerprint), message id, SHA-256 digest of the message, size, result and refusal
    code. Digests only: no payload is kept.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table

from jukinet.store.tables import fuhyo_metadata, juki_metadata


def _intake_notifications(metadata: MetaData) -> Table:
    return Table(
        "intake_notifications", metadata,
        Column("sender_code", String(6), primary_key=True),
        Column("notification_id", String(64), primary_key=True),
        Column("digest", String(64), nullable=False),
        Column("update_seq", BigInteger, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
    )


def _outbox(metadata: MetaData) -> Table:
    return Table(
        "outbox", metadata,
        Column("update_seq", BigInteger, primary_key=True, autoincrement=False),
        Column("message_id", String(80), nullable=False, unique=True),
        Column("juminhyo_code", String(11), nullable=False),
        Column("prior_code", String(11)),
        Column("state", String(10), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("last_error", String(40)),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("delivered_at", DateTime(timezone=True)),
        Index("ix_outbox_state_seq", "state", "update_seq"),
    )


def _comm_log(metadata: MetaData) -> Table:
    return Table(
        "comm_log", metadata,
        Column("log_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("channel", String(10), nullable=False),
        Column("direction", String(3), nullable=False),
        Column("peer", String(40), nullable=False),
        Column("peer_cert_sha256", String(64)),
        Column("message_id", String(80)),
        Column("digest", String(64)),
        Column("envelope_digest", String(64)),
        Column("size", Integer),
        Column("result", String(12), nullable=False),
        Column("code", String(40)),
        Index("ix_comm_log_at", "at"),
        Index("ix_comm_log_message", "peer", "message_id"),
    )


juki_intake_notifications = _intake_notifications(juki_metadata)
juki_outbox = _outbox(juki_metadata)
juki_comm_log = _comm_log(juki_metadata)

fuhyo_intake_notifications = _intake_notifications(fuhyo_metadata)
fuhyo_outbox = _outbox(fuhyo_metadata)
fuhyo_comm_log = _comm_log(fuhyo_metadata)

#: register -> (intake_notifications, outbox, comm_log)
INTAKE_TABLES = {
    "juki": (juki_intake_notifications, juki_outbox, juki_comm_log),
    "fuhyo": (fuhyo_intake_notifications, fuhyo_outbox, fuhyo_comm_log),
}
