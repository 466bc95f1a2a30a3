"""`Idempotency-Key` on `POST /v1/agents/{agent}/invoke`: a retry gets the first answer, and the
agent (with its tools) runs once, across every replica that shares the store.

- The key: 1-255 characters of `A-Z a-z 0-9 . _ : ~ + / = -` (a UUID fits); anything else is 400.
  Keys are scoped per caller (the API key's public prefix, or `anonymous` on a server without keys)
  and per agent, so two callers can never see each other's answers.
- The first request claims the key in the store (an insert only one request can win, on SQLite as
  on PostgreSQL), runs, and stores its answer: status, body and id headers. The interaction record
  itself reaches the store later, through the journal; the key row holds what the answer needs.
- The same key with another body (or another `X-Shipyard-Version`) is 422, as Stripe does.
- A retry while the first request still runs waits for its answer, up to
  `server.idempotency.wait_s` (the store is polled, 50 ms growing to 500 ms; a retry on the same
  replica wakes at once), then gets 409 `idempotency_key_in_use` with `Retry-After`.
- The first request's server died while it ran (its lease, renewed every 10 s, lapsed): 409
  `idempotency_key_abandoned`. It may have had effects, so it is never run again: fail closed.
- A request refused before it ran (a 4xx or 503 the handler raised: a bad field, an unknown
  version, an agent that did not load) gives the key back, so a corrected retry runs. Any answer
  after the agent ran is kept, failures (500 / 502 / 504) too.
- Answers are kept `server.idempotency.ttl_s` (default 24 h); a replay carries
  `Idempotent-Replayed: true`. When the store cannot be reached the key cannot be checked: 503 with
  `Retry-After`, and the agent does not run.
- Requests without the header never touch any of this (no database wait on their hot path).
- What a caller may not ask for is refused before any of this: the handler's `before` check (for
  invoke, the version rule: choosing a version is admin-only) runs first, so a retry with a stored
  key gets the same 403 a request without a key gets, never a 422, a 503 or a replay.

Redis is not used: the store is the one truth replicas must share anyway, and a notice on every
keyed request would cost each of them a Redis round trip to save a waiter a few hundred ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import ShipyardError
from shipyard.observe import LoopSupervisor, log_event
from shipyard.server._auth import prefix_of, presented_key
from shipyard.server._http import ApiError, error_response, read_json
from shipyard.store import IdempotencyEntry, error_reason, new_id

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[A-Za-z0-9._:~+/=-]{1,255}")
LEASE_S = 30.0  # a running request renews its claim every LEASE_S / 3
RETRY_AFTER_S = 1
_KEPT_HEADERS = ("x-interaction-id", "x-trace-id")
_PURGE_EVERY_S = 60.0
_LOCAL_ANSWERS = 1000

Handler = Callable[[Request, Any], Awaitable[Response]]
Check = Callable[[Request, Any, dict[str, Any]], Awaitable[object]]


def idempotent(*, before: Check | None = None) -> Callable[[Handler], Handler]:
    """Make a gateway handler `(request, state)` honour `Idempotency-Key` (see the module docs).
    Place it under `@endpoint(...)`, so the caller's key is checked first.

    Args:
        before: `(request, state, body)`, awaited before a keyed request claims, waits for or
            replays its key; it raises ApiError for what the caller may not ask for at all (the
            handler checks the same for requests without a key).
    """

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def handler(request: Request, state: Any) -> Response:
            raw = request.headers.get(HEADER)
            if raw is None:
                return await fn(request, state)
            return await keys_of(state).handle(request, state, raw, fn, before)

        return handler

    return wrap


_KEEPERS: weakref.WeakKeyDictionary[Any, IdempotencyKeys] = weakref.WeakKeyDictionary()


def keys_of(state: Any) -> IdempotencyKeys:
    """The idempotency keys of a server (made at the first keyed request)."""
    found = _KEEPERS.get(state)
    if found is None:
        settings = state.cfg.server.idempotency
        found = _KEEPERS[state] = IdempotencyKeys(
            state.store, ttl_s=settings.ttl_s, wait_s=settings.wait_s, loops=getattr(state, "loops", None)
        )
    return found


class IdempotencyKeys:
    """Claims, waits for and replays idempotency keys of one server.

    Args:
        store: the Store (its `*_idempotency_key*` methods).
        ttl_s: how long an answer is kept.
        wait_s: how long a retry waits for a running first request.
        loops: where the background purge of expired keys reports (loop `idempotency_purge`);
            default: a failure is logged only.
    """

    def __init__(
        self, store: Any, *, ttl_s: float, wait_s: float, loops: LoopSupervisor | None = None
    ) -> None:
        self.store = store
        self.loops = loops or LoopSupervisor()
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self.instance = new_id()[:12]
        self.waiting = 0  # retries waiting for a first request right now (tests watch it)
        self._wakers: dict[tuple[str, str], set[asyncio.Event]] = {}
        self._answers: OrderedDict[tuple[str, str], IdempotencyEntry] = OrderedDict()
        self._last_purge = 0.0
        self._background: set[asyncio.Task[Any]] = set()

    async def handle(
        self, request: Request, state: Any, raw_key: str, fn: Handler, before: Check | None = None
    ) -> Response:
        """Answer a request that carries an idempotency key (`before`: see `idempotent`)."""
        if not KEY_PATTERN.fullmatch(raw_key):
            raise ApiError(
                400,
                f"header {HEADER!r} must be 1-255 characters of letters, digits and . _ : ~ + / = - "
                "(a UUID is a good key)",
                param=HEADER,
            )
        body = await read_json(request, state.cfg.server.max_body_bytes)
        if before is not None:
            await before(request, state, body)
        scope = f"{_caller(request, state)}/{request.path_params.get('agent', '')}"
        fingerprint = fingerprint_of(body, request.headers.get("x-shipyard-version", ""))
        owner = f"{self.instance}:{new_id()[:12]}"
        self._purge_now_and_then()
        deadline = time.monotonic() + self.wait_s
        delay = 0.05
        while True:
            local = self._answers.get((scope, raw_key))
            if local is not None and local.fingerprint == fingerprint:
                return _replay(local)
            try:
                won, entry = await asyncio.to_thread(
                    self.store.claim_idempotency_key,
                    scope,
                    raw_key,
                    fingerprint,
                    owner,
                    lease_s=LEASE_S,
                    ttl_s=self.ttl_s,
                )
            except Exception as e:
                return _store_unreachable(e)
            if won:
                return await self._run(entry, request, state, fn)  # it reads the body read here
            if entry.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    f"{HEADER} {raw_key!r} was first used with another request body; a key stands for "
                    "one request: send the same body to get its answer, or use a new key",
                    type="idempotency_error",
                    param=HEADER,
                )
            if entry.state == "done":
                return _replay(entry)
            if entry.lease_until < time.time():
                return _conflict(
                    "idempotency_key_abandoned",
                    f"the first request with {HEADER} {raw_key!r} stopped before it finished (its server "
                    "went away), so it may have had effects and is not run again; check "
                    "/admin/interactions, then use a new key if it must be done",
                )
            left = deadline - time.monotonic()
            if left <= 0:
                return _conflict(
                    "idempotency_key_in_use",
                    f"a request with {HEADER} {raw_key!r} is still running; retry in a moment to get "
                    "its answer",
                    retry_after=True,
                )
            await self._wait(scope, raw_key, min(delay, left))
            delay = min(delay * 2, 0.5)

    async def _run(self, entry: IdempotencyEntry, request: Request, state: Any, fn: Handler) -> Response:
        """Run the request that holds the key, renewing its lease, and keep its answer."""
        renewing = asyncio.get_running_loop().create_task(self._renew(entry))
        try:
            response = await fn(request, state)
        except ApiError as e:
            # a 4xx or a 503 refuses the request before the agent ran: a corrected retry may run;
            # any other 5xx comes after it ran, and is the answer from now on
            await self._settle(entry, None if e.status < 500 or e.status == 503 else e.response())
            raise
        except ShipyardError:  # a user error the handler did not catch: nothing ran
            await self._settle(entry, None)
            raise
        except Exception:  # the agent may have run: never again with this key
            await self._settle(entry, _internal_error())
            raise
        finally:
            renewing.cancel()
        await self._settle(entry, response)
        return response

    async def _renew(self, entry: IdempotencyEntry) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            with contextlib.suppress(Exception):  # the store is back by the next renewal, or not
                await asyncio.to_thread(
                    self.store.renew_idempotency_lease, entry.scope, entry.key, entry.owner, LEASE_S
                )

    async def _settle(self, entry: IdempotencyEntry, response: Response | None) -> None:
        """Keep the answer (or give the key back when `response` is None) and wake local waiters."""
        k = (entry.scope, entry.key)
        try:
            if response is None:
                await asyncio.to_thread(
                    self.store.release_idempotency_key, entry.scope, entry.key, entry.owner
                )
            else:
                answer = _answer_of(entry, response)
                self._answers[k] = answer  # replays from this process work even if the store fails
                while len(self._answers) > _LOCAL_ANSWERS:
                    self._answers.popitem(last=False)
                await asyncio.to_thread(
                    self.store.complete_idempotency_key,
                    entry.scope,
                    entry.key,
                    entry.owner,
                    status_code=answer.status_code or 500,
                    body=answer.body or "",
                    headers=answer.headers,
                    interaction_id=answer.interaction_id,
                )
        except Exception as e:  # other replicas will see the key lapse: 409 abandoned, never a rerun
            log_event(
                "idempotency_key_not_saved",
                level="error",
                scope=entry.scope,
                error=error_reason(e, 300).splitlines()[0],
            )
        for event in self._wakers.pop(k, set()):
            event.set()

    async def _wait(self, scope: str, key: str, timeout: float) -> None:
        """Until the key's request on this replica settles, or `timeout` (then the store is asked)."""
        event = asyncio.Event()
        waiters = self._wakers.setdefault((scope, key), set())
        waiters.add(event)
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self.waiting -= 1
            waiters.discard(event)
            if not waiters and self._wakers.get((scope, key)) is waiters:
                del self._wakers[(scope, key)]

    def _purge_now_and_then(self) -> None:
        """Forget expired keys at most once a minute, in the background."""
        now = time.monotonic()
        if now - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = now

        async def purge() -> None:
            with self.loops.guard("idempotency_purge"):
                await asyncio.to_thread(self.store.purge_idempotency_keys)

        task = asyncio.get_running_loop().create_task(purge())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _caller(request: Request, state: Any) -> str:
    """Whose key it is: the API key's public prefix (the key was checked before the handler), or
    `anonymous` on a server that needs no key (or needed none when this request was checked)."""
    if state.keys.open:
        return "anonymous"
    return prefix_of(presented_key(request.headers)) or "anonymous"


def fingerprint_of(body: dict[str, Any], version_header: str = "") -> str:
    """A hash of what makes two requests the same: the body (key order aside) and the version asked
    for in `X-Shipyard-Version`."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical + b"\n" + version_header.encode()).hexdigest()


def _answer_of(entry: IdempotencyEntry, response: Response) -> IdempotencyEntry:
    headers = {k: v for k, v in response.headers.items() if k in _KEPT_HEADERS}
    return IdempotencyEntry(
        scope=entry.scope,
        key=entry.key,
        fingerprint=entry.fingerprint,
        state="done",
        owner=entry.owner,
        lease_until=entry.lease_until,
        created_at=entry.created_at,
        expires_at=entry.expires_at,
        status_code=response.status_code,
        body=bytes(response.body).decode(),
        headers=headers,
        interaction_id=headers.get("x-interaction-id"),
    )


def _replay(entry: IdempotencyEntry) -> Response:
    headers = {**entry.headers, REPLAYED: "true"}
    return Response(entry.body or "", entry.status_code or 500, headers, media_type="application/json")


def _conflict(kind: str, message: str, *, retry_after: bool = False) -> Response:
    response = error_response(409, message, type=kind, param=HEADER)
    if retry_after:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _store_unreachable(e: Exception) -> Response:
    log_event("idempotency_key_unchecked", level="warning", error=error_reason(e, 300).splitlines()[0])
    response = error_response(
        503,
        f"the {HEADER} cannot be checked now (the store is unreachable), so the request did not run; "
        f"retry in {RETRY_AFTER_S} s",
        type="service_unavailable",
        param=HEADER,
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _internal_error() -> Response:
    return error_response(
        500,
        f"the first request with this {HEADER} failed with an internal error after the agent started, "
        "so it may have had effects and is not run again; check /admin/interactions, then use a new key",
        type="internal_error",
    )
