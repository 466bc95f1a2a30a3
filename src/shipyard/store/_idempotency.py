"""Idempotency keys: one answer per (scope, key), shared by every replica through the database.

A request that carries a key first claims it: an insert that only one request can win, on SQLite as
on PostgreSQL (`ON CONFLICT DO NOTHING`; a loser reads the winner's row). The winner holds a lease
(`owner`, `lease_until`) that it renews while it runs, and stores its answer when it is done
(`state = done`). A row lives until `expires_at`; after that the key may be used again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Double, Engine, Insert, Integer, String, Table, Text, delete, select, update

from shipyard.store._models import JSONType, metadata

RUNNING, DONE = "running", "done"


@dataclass(slots=True)
class IdempotencyEntry:
    """Where one idempotency key stands.

    Args:
        scope: whose key it is (the caller and the route, e.g. `shp_1a2b3c4d/support`).
        key: the client's key.
        fingerprint: a hash of the request it was first used with.
        state: `running` (a request holds it) or `done` (the answer is stored).
        owner: the request that holds or held it.
        lease_until: while running, the owner is alive until then (epoch seconds); it renews it.
        created_at, expires_at: epoch seconds; after `expires_at` the key is forgotten.
        status_code, body, headers: the stored answer once done.
        interaction_id: the interaction that answered.
    """

    scope: str
    key: str
    fingerprint: str
    state: str
    owner: str
    lease_until: float
    created_at: float
    expires_at: float
    status_code: int | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    interaction_id: str | None = None


_table = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String, primary_key=True),
    Column("idempotency_key", String, primary_key=True),
    Column("fingerprint", String, nullable=False),
    Column("state", String, nullable=False),  # running | done
    Column("owner", String, nullable=False),
    Column("lease_until", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, index=True, nullable=False),
    Column("status_code", Integer),
    Column("body", Text),  # the answer as sent (JSON text)
    Column("headers", JSONType),
    Column("interaction_id", String),
)


_c = _table.c


def _entry(row: Any) -> IdempotencyEntry:
    m = row._mapping
    return IdempotencyEntry(
        scope=m["scope"],
        key=m["idempotency_key"],
        fingerprint=m["fingerprint"],
        state=m["state"],
        owner=m["owner"],
        lease_until=m["lease_until"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        status_code=m["status_code"],
        body=m["body"],
        headers=dict(m["headers"] or {}),
        interaction_id=m["interaction_id"],
    )


class IdempotencyStore:
    """The store's methods for idempotency keys (mixed into `Store`)."""

    engine: Engine
    _insert_ignoring_duplicates: Callable[[Table], Insert]  # Store's

    def claim_idempotency_key(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        owner: str,
        *,
        lease_s: float,
        ttl_s: float,
        now: float | None = None,
    ) -> tuple[bool, IdempotencyEntry]:
        """Claim a key for a request. Returns (True, the new entry) when this request now holds it,
        or (False, the entry of whoever used it first). An expired entry is replaced.

        Args:
            scope, key: which key (see `IdempotencyEntry`).
            fingerprint: a hash of this request, compared with the first request's by the caller.
            owner: who claims it; unique per request (it tells the winner).
            lease_s: how long the claim lasts unless renewed.
            ttl_s: how long the key is kept.
        """
        now = time.time() if now is None else now
        row = {
            "scope": scope,
            "idempotency_key": key,
            "fingerprint": fingerprint,
            "state": RUNNING,
            "owner": owner,
            "lease_until": now + lease_s,
            "created_at": now,
            "expires_at": now + ttl_s,
            "headers": {},
        }
        this = (_c.scope == scope) & (_c.idempotency_key == key)
        with self.engine.begin() as conn:
            conn.execute(delete(_table).where(this, _c.expires_at <= now))
            conn.execute(self._insert_ignoring_duplicates(_table).values(**row))
            found = conn.execute(select(_table).where(this)).first()
        assert found is not None, "a claimed key is in the table"
        entry = _entry(found)
        return entry.owner == owner, entry  # owners are unique per request (rowcount is not portable)

    def renew_idempotency_lease(
        self, scope: str, key: str, owner: str, lease_s: float, now: float | None = None
    ) -> bool:
        """Extend the owner's lease on a running key; False when it is no longer the owner's."""
        now = time.time() if now is None else now
        return self._update_owned(scope, key, owner, {"lease_until": now + lease_s})

    def complete_idempotency_key(
        self,
        scope: str,
        key: str,
        owner: str,
        *,
        status_code: int,
        body: str,
        headers: dict[str, str],
        interaction_id: str | None,
    ) -> bool:
        """Store the answer of the request that holds the key; False when it does not hold it."""
        values = {
            "state": DONE,
            "status_code": status_code,
            "body": body,
            "headers": headers,
            "interaction_id": interaction_id,
        }
        return self._update_owned(scope, key, owner, values)

    def release_idempotency_key(self, scope: str, key: str, owner: str) -> bool:
        """Give a key back unused (the request was refused before it did anything)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(_table).where(
                    _c.scope == scope, _c.idempotency_key == key, _c.owner == owner, _c.state == RUNNING
                )
            )
        return bool(result.rowcount)

    def get_idempotency_key(self, scope: str, key: str) -> IdempotencyEntry | None:
        """The entry of a key, or None (never used, released, or purged)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_table).where(_c.scope == scope, _c.idempotency_key == key)).first()
        return _entry(row) if row is not None else None

    def purge_idempotency_keys(self, now: float | None = None) -> int:
        """Forget every expired key; returns how many."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            return int(conn.execute(delete(_table).where(_c.expires_at <= now)).rowcount)

    def _update_owned(self, scope: str, key: str, owner: str, values: dict[str, Any]) -> bool:
        """Update a running key only while `owner` holds it."""
        query = update(_table).where(
            _c.scope == scope, _c.idempotency_key == key, _c.owner == owner, _c.state == RUNNING
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(query.values(**values)).rowcount)
