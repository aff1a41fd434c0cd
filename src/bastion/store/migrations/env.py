"""Alembic environment: Bastion passes its own connection, so migrations run wherever the store is."""

from __future__ import annotations

from alembic import context

from bastion.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
