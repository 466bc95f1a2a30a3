"""Alembic environment for the Shipyard store.

Run from code only (`shipyard.store._migrate`): the caller puts an open connection in
`config.attributes["connection"]`, so there is no alembic.ini and no URL here."""

from __future__ import annotations

from alembic import context

from shipyard.store._models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("shipyard migrations run from shipyard.store (Store applies them on start)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
