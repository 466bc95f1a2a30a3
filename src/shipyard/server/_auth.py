"""API keys with roles, stored hashed.

A key looks like `shp_<8 hex>_<43 url-safe chars>`. The store keeps its prefix (`shp_<8 hex>`,
to find it) and the SHA-256 of the whole key (keys are 256 random bits, so a fast hash is as
safe as a slow one). Roles: `invoke` (the /v1 gateway routes), `read` (metrics, dashboard,
read-only admin views), `admin` (everything, including key management).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Any

from shipyard.server._http import ApiError

ROLES = ("invoke", "read", "admin")
GRANTS: dict[str, frozenset[str]] = {
    "invoke": frozenset({"invoke"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"invoke", "read", "admin"}),
}


def new_key() -> tuple[str, str, str]:
    """A fresh key: (key, prefix, hash). Show the key once; store only prefix and hash."""
    prefix = f"shp_{secrets.token_hex(4)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def prefix_of(key: str) -> str | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "shp" or len(parts[1]) != 8:
        return None
    return f"shp_{parts[1]}"


def create_key(store: Any, role: str, name: str | None = None) -> dict[str, Any]:
    """Create and store a key; the returned dict has the plain `key` (its only appearance)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    key, prefix, digest = new_key()
    row = store.add_api_key(prefix, digest, role, name=name)
    return {
        "key": key,
        "id": row["id"],
        "prefix": prefix,
        "role": role,
        "name": name,
        "created_at": row["created_at"],
    }


def public_key_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored key without its hash."""
    return {k: v for k, v in row.items() if k != "hash"}


class KeyRing:
    """Checks request keys against the store, with a short cache so the hot path rarely queries.

    Args:
        store: the Store.
        ttl_s: how long a looked-up key (or its absence) is trusted; revocations take this long.
    """

    def __init__(self, store: Any, ttl_s: float = 30.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.enabled = False
        self._cache: dict[str, tuple[float, str | None]] = {}  # hash -> (expires, role or None)

    def refresh(self) -> bool:
        """Re-read whether any key exists (auth is on once one does). Blocking: call in a thread."""
        self.enabled = bool(self.store.list_api_keys(include_revoked=False))
        return self.enabled

    def forget(self) -> None:
        self._cache.clear()

    async def role_of(self, key: str) -> str | None:
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        role: str | None = None
        prefix = prefix_of(key)
        if prefix is not None:
            row = await asyncio.to_thread(self.store.find_api_key_by_prefix, prefix)
            if row is not None and hmac.compare_digest(row["hash"], digest):
                role = row["role"]
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl_s, role)
        return role

    async def check(self, headers: Any, need: str) -> str | None:
        """The caller's role; raises 401 (no or unknown key) or 403 (role lacks `need`).
        Returns None when auth is off (no keys: the server listens on loopback only)."""
        if not self.enabled:
            return None
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "").strip()
        if not key:
            raise ApiError(
                401,
                "an API key is required: send 'Authorization: Bearer <key>'",
                type="authentication_error",
                param="authorization",
            )
        role = await self.role_of(key)
        if role is None:
            raise ApiError(
                401,
                "the API key is not valid (unknown or revoked)",
                type="authentication_error",
                param="authorization",
            )
        if need not in GRANTS.get(role, frozenset()):
            raise ApiError(
                403,
                f"this key has role {role!r}; this route needs a key with role "
                f"{'admin' if need == 'admin' else need + ' or admin'}",
                type="permission_error",
                param="authorization",
            )
        return role
