"""Alembic environment: runs migrations on the connection the gateway hands over."""

from __future__ import annotations

from alembic import context

from gateway.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - the gateway always passes its connection
    raise RuntimeError("Run migrations through `gateway migrate`.")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
