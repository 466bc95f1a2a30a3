"""API keys with roles, stored hashed, checked in memory.

A key looks like `shp_<8 hex>_<43 url-safe chars>`. The store keeps its prefix (`shp_<8 hex>`,
to find it) and the SHA-256 of the whole key (keys are 256 random bits, so a fast hash is as
safe as a slow one). Roles: `invoke` (the /v1 gateway routes), `read` (metrics, dashboard,
read-only admin views), `admin` (everything, including key management and choosing a version).

When is a server open (no key needed)? Only when it listens on loopback and no key was ever made
in its store, or when it was started with `--no-auth` (loopback only). Once a key exists, revoked
or not, a key is needed: revoking every key leaves nobody allowed, never an open server. A server
bound to any other address always needs a key; its first one is made with `shipyard keys create`,
which writes to the store directly. In open mode the caller counts as an admin: whoever can reach
loopback runs on this machine, where the CLI writes to the same store anyway.

The `KeyRing` keeps every key row (prefix, hash, role, revoked) in memory and checks keys there, so
a database outage does not stop known keys from working. The rows are re-read every
`AUTH_REFRESH_S` (server/_state.py); a key it does not hold (made since, by the CLI or another
replica) is looked up by its prefix. That holds in open mode too: the first use of the first key
closes an open server at once (the request itself is then checked as on a closed server); until that
use, or the next re-read, keyless requests are still answered. A revocation made through this
server's API holds at once; one made elsewhere at the next re-read; a key seen revoked stays refused.
An unknown key while the store is unreachable cannot be decided: 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.server._guard import is_loopback
from shipyard.server._http import ApiError, error_response

ROLES = ("invoke", "read", "admin")
GRANTS: dict[str, frozenset[str]] = {
    "invoke": frozenset({"invoke"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"invoke", "read", "admin"}),
}
OPEN_ROLE = "admin"  # the caller of a server in open mode (see the module docstring)
RETRY_AFTER_S = 5  # told to callers whose key cannot be checked while the store is unreachable
LOOKUPS = 4  # store lookups of keys not held, at most at once
MISS_TTL_S = 2.0  # a prefix the store did not have is not asked for again this long
MAX_MISSES = 10_000


def new_key() -> tuple[str, str, str]:
    """A fresh key: (key, prefix, hash). Show the key once; store only prefix and hash."""
    prefix = f"shp_{secrets.token_hex(4)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(headers: Any) -> str:
    """The key a request presents (`Authorization: Bearer KEY` or `X-API-Key: KEY`); "" when none."""
    auth = str(headers.get("authorization", ""))
    return auth[7:].strip() if auth[:7].lower() == "bearer " else str(headers.get("x-api-key", "")).strip()


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


def grants(role: str, need: str) -> bool:
    """True when `role` may do what `need` names (invoke, read or admin)."""
    return need in GRANTS.get(role, frozenset())


class RetryLater(ApiError):
    """503 with `Retry-After`: the question cannot be decided now (the store is unreachable)."""

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S, *, param: str | None = None) -> None:
        super().__init__(503, message, type="service_unavailable", param=param)
        self.retry_after_s = retry_after_s

    def response(self) -> Any:
        resp = error_response(self.status, self.message, type=self.type, param=self.param)
        resp.headers["Retry-After"] = str(self.retry_after_s)
        return resp


@dataclass(frozen=True, slots=True)
class _Key:
    hash: str
    role: str
    revoked: bool


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, type="authentication_error", param="authorization")


def _cannot_check() -> RetryLater:
    return RetryLater(
        "cannot check this API key now: the key store is unreachable and the key is not among those "
        f"this server holds; retry in {RETRY_AFTER_S} s",
        param="authorization",
    )


class KeyRing:
    """Decides who a request's key belongs to, from the key rows held in memory.

    Args:
        store: the Store the key rows are read from (set before the first `refresh`).
        host: the address the server listens on; anything but loopback always needs a key.
        no_auth: open even when keys exist (`shipyard serve --no-auth`); loopback only.
    """

    def __init__(self, store: Any, *, host: str = "127.0.0.1", no_auth: bool = False) -> None:
        if no_auth and not is_loopback(host):
            raise ShipyardError(
                f"--no-auth serves without keys, which is allowed on loopback only, not on {host}",
                hint="drop --no-auth and use API keys (`shipyard keys create --role admin`), or bind 127.0.0.1",
            )
        self.store = store
        self.host = host
        self.no_auth = no_auth
        self.loopback = is_loopback(host)
        self._keys: dict[str, _Key] = {}
        self._revoked: set[str] = set()  # prefixes seen revoked: refused for good
        self._misses: dict[str, float] = {}  # prefix -> until when the store is not asked again
        self._ever_keys = False  # a key existed: never open again (without --no-auth)
        self._loaded = False  # at least one read of the key rows succeeded
        self.store_error: str | None = None  # why the store last failed to answer; None when it worked
        self._failed_at = float("-inf")
        self._lookups = asyncio.Semaphore(LOOKUPS)

    # what mode ------------------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        """True when requests need no key (see the module docstring). Unknown until the key rows
        were read once: closed."""
        return self.no_auth or (self.loopback and self._loaded and not self._ever_keys)

    @property
    def enabled(self) -> bool:
        """True when requests need a key."""
        return not self.open

    # the key rows ---------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read every key row (revoked ones too). Blocking: call it in a thread. Raises what the
        store raises, after noting it (the keys already held stay in use). Returns `enabled`."""
        try:
            rows = self.store.list_api_keys(include_revoked=True)
        except Exception as e:
            self._failed(e)
            raise
        self._keys = {r["prefix"]: self._entry(r) for r in rows}
        self._ever_keys = self._ever_keys or bool(rows)
        self._loaded, self.store_error = True, None
        return self.enabled

    async def reload(self) -> None:
        """`refresh` in a thread; a store error is kept in `store_error`, not raised."""
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.refresh)

    def remember(self, row: dict[str, Any]) -> None:
        """Take a key row into effect at once (one this process created or revoked, or found)."""
        self._keys = {**self._keys, row["prefix"]: self._entry(row)}
        self._misses.pop(row["prefix"], None)
        self._ever_keys = True

    def _entry(self, row: dict[str, Any]) -> _Key:
        revoked = row.get("revoked_at") is not None or row["prefix"] in self._revoked
        if revoked:
            self._revoked.add(row["prefix"])
        return _Key(row["hash"], row["role"], revoked)

    def _failed(self, e: Exception) -> None:
        self.store_error = f"{type(e).__name__}: {e}".splitlines()[0]
        self._failed_at = time.monotonic()

    async def _look_up(self, prefix: str) -> _Key | None:
        """A key this server does not hold yet (made by the CLI or another replica since the last
        refresh): asked of the store, at most LOOKUPS at a time; a miss is not asked again for
        MISS_TTL_S. RetryLater while the store is unreachable."""
        now = time.monotonic()
        if self._misses.get(prefix, now) > now:
            return None
        if self.store_error is not None and now - self._failed_at < RETRY_AFTER_S:
            raise _cannot_check()
        async with self._lookups:
            try:
                row = await asyncio.to_thread(self.store.find_api_key_by_prefix, prefix, include_revoked=True)
            except Exception as e:
                self._failed(e)
                raise _cannot_check() from None
        if row is None:
            if len(self._misses) >= MAX_MISSES:
                self._misses.clear()
            self._misses[prefix] = time.monotonic() + MISS_TTL_S
            return None
        self.remember(row)
        return self._keys[prefix]

    # checking a request ---------------------------------------------------------------------------
    async def role_of(self, key: str) -> str | None:
        """The role of a key; None when it is malformed, unknown or revoked. Raises RetryLater when
        the key is not among those held and the store cannot be asked."""
        prefix = prefix_of(key)
        if prefix is None:
            return None
        found = self._keys.get(prefix) or await self._look_up(prefix)
        if found is None or found.revoked or prefix in self._revoked:
            return None
        return found.role if hmac.compare_digest(found.hash, hash_key(key)) else None

    async def _closed_by(self, headers: Any) -> bool:
        """An open server (no `--no-auth`) shown a key the store holds closes at once: that key is
        the first one, made since the last re-read of the key rows. False (still open) for no key,
        one the store does not hold, or a store that cannot be asked now."""
        prefix = prefix_of(presented_key(headers))
        if self.no_auth or prefix is None:
            return False
        with contextlib.suppress(RetryLater):
            await self._look_up(prefix)
        return not self.open

    async def check(self, headers: Any, need: str) -> str:
        """The caller's role: raises 401 (no, unknown or revoked key), 403 (the role lacks `need`) or
        503 (the key cannot be checked now). In open mode the caller is `OPEN_ROLE`."""
        if self.open and not await self._closed_by(headers):
            return OPEN_ROLE
        key = presented_key(headers)
        if not key:
            if self._loaded and all(k.revoked for k in self._keys.values()):
                raise _unauthorized(
                    "this server needs an API key and has no valid key yet: create one on the "
                    "server's machine with `shipyard keys create --role admin` (it writes to the "
                    "store; this server takes it at its first use), then send 'Authorization: Bearer <key>'"
                )
            raise _unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
        role = await self.role_of(key)
        if role is None:
            raise _unauthorized("the API key is not valid (unknown or revoked)")
        if not grants(role, need):
            raise ApiError(
                403,
                f"this key has role {role!r}; this route needs a key with role "
                f"{'admin' if need == 'admin' else need + ' or admin'}",
                type="permission_error",
                param="authorization",
            )
        return role
