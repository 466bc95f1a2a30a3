"""Alembic migrations of the Shipyard store (applied by `Store` on start)."""
