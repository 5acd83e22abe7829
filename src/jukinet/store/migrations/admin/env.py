"""Alembic environment of the admin database: runs on the engine handed in by jukinet.store.migrate."""

from alembic import context

from jukinet.store.schema import METADATA

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=METADATA["admin"], render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
