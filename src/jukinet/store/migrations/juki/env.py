"""Alembic environment of the juki register: runs on the engine handed in by jukinet.store.migrate."""

from alembic import context

from jukinet.store.schema import METADATA

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=METADATA["juki"], render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
