"""The store's user-facing error."""

from __future__ import annotations

from shipyard.errors import ShipyardError


class StoreError(ShipyardError):
    """The database cannot be opened or used (bad URL, server down, schema too new)."""
