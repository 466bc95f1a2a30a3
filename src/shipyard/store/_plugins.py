"""Shipyard's built-in store backends, SQLite and PostgreSQL.

This module is the `store` entry point of the `shipyard.plugins` group (see pyproject.toml): loading
it registers them, exactly as a third-party package registers its own."""

from __future__ import annotations

from shipyard.store._backends import BUILTIN_BACKENDS, STORE_BACKENDS

for _scheme, _backend in BUILTIN_BACKENDS.items():
    STORE_BACKENDS.add(_scheme, _backend)
