"""Keeping every replica's flags current without a restart.

With the project's store (`shared`, what `shipyard serve` uses) the store holds the truth
(flags/_shared.py), and everything here runs off the hot path (background threads):

- Redis (when configured) carries change notices `{"revision": N}` on `shipyard:flags`; a replica
  hearing of a revision it does not have reads the set from the store and installs it.
- Every `poll_interval_s` each replica reads the stored revision (one cheap query), so a replica
  that missed a notice, or runs without Redis, catches up from the store; and it checks its flag
  file's mtime and size: a changed file whose content the store never saw is imported as a new
  revision. Redis or the store unreachable: the flags keep their last known values, and the loops
  (reported to `loops`) recover by themselves.

Without a store (a bare file), the file is reloaded when it changes and Redis carries the whole
set under `shipyard:flags:document`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import ConfigError, ShipyardError
from shipyard.flags._evaluator import FlagStore
from shipyard.flags._model import FlagSet, load_flag_file, parse_flag_set

if TYPE_CHECKING:
    from shipyard.config import ShipyardConfig
    from shipyard.flags._shared import SharedFlags

log = logging.getLogger("shipyard.flags")

CHANNEL = "shipyard:flags"
DOCUMENT_KEY = f"{CHANNEL}:document"  # the whole flag set; the channel carries only notices


class LoopHealth(Protocol):
    """Where the sync's background loops report each pass (`shipyard.observe.LoopSupervisor` is one:
    it logs a failure with its traceback, counts it and alerts on a loop that keeps failing)."""

    def failed(self, loop: str, error: BaseException) -> None: ...

    def succeeded(self, loop: str) -> None: ...


def redis_url_from_env() -> str | None:
    """`SHIPYARD_REDIS_URL`, else `REDIS_URL`, else None."""
    return os.environ.get("SHIPYARD_REDIS_URL") or os.environ.get("REDIS_URL") or None


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def publish_flag_set(flag_set: FlagSet, redis_url: str, *, channel: str = CHANNEL, client: Any = None) -> int:
    """Store `flag_set` in Redis and publish a change notice; returns how many listeners got it."""
    r = client or _redis(redis_url)
    try:
        doc = json.dumps({"revision": flag_set.revision, "document": flag_set.to_json()})
        r.set(f"{channel}:document", doc)
        return int(r.publish(channel, json.dumps({"revision": flag_set.revision})))
    finally:
        if client is None:
            r.close()


def publish_notice(revision: int, redis_url: str, *, channel: str = CHANNEL, client: Any = None) -> int:
    """Publish a change notice carrying only the revision (the set is in the store); returns how
    many listeners got it."""
    r = client or _redis(redis_url)
    try:
        return int(r.publish(channel, json.dumps({"revision": revision})))
    finally:
        if client is None:
            r.close()


def fetch_flag_set(redis_url: str, *, channel: str = CHANNEL, client: Any = None) -> FlagSet | None:
    """The flag set last published to Redis, or None if there is none."""
    r = client or _redis(redis_url)
    try:
        raw = r.get(f"{channel}:document")
    finally:
        if client is None:
            r.close()
    if raw is None:
        return None
    data = json.loads(raw)
    return parse_flag_set(data["document"], f"redis {channel}")


class FlagSync:
    """Background refresh of a `FlagStore` from the project's store, a file and/or Redis.

    Args:
        store: the store to keep current.
        file: the flag file to poll (optional).
        redis_url: Redis to listen to (optional; see `redis_url_from_env`).
        poll_interval_s: how often the file's mtime (and with `shared` the stored revision) is checked.
        channel: the Redis pub/sub channel.
        loops: where each pass of the poller (`flag_file_poll`: the file, and the stored revision
            with `shared`) and the Redis listener (`flag_redis_listener`) is reported; without it,
            failures are only logged.
        shared: the flag set in the project's store, the truth: notices and the poll read it, a
            changed file is imported into it (optional; without it the file and Redis are the truth).

    Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        store: FlagStore,
        *,
        file: Path | str | None = None,
        redis_url: str | None = None,
        poll_interval_s: float = 1.0,
        channel: str = CHANNEL,
        loops: LoopHealth | None = None,
        shared: SharedFlags | None = None,
    ) -> None:
        self.store = store
        self.shared = shared
        self.loops = loops
        self.file = Path(file) if file is not None else None
        self.redis_url = redis_url
        self.poll_interval_s = poll_interval_s
        self.channel = channel
        self.last_error: str | None = None
        self._stamp: tuple[int, int] | None = self._file_stamp()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._subscribed = threading.Event()

    # file ----------------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int] | None:
        if self.file is None:
            return None
        try:
            st = self.file.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check_file(self) -> bool:
        """One poll: reload the file if it changed since the last look; True if flags were replaced."""
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            flag_set = load_flag_file(self.file)  # type: ignore[arg-type]
        except ShipyardError as e:
            self.last_error = str(e)
            log.error("flags: %s changed but is invalid; keeping the current flags\n%s", self.file, e)
            return False
        self.last_error = None
        if self.shared is not None:  # imported only when the store never saw this content
            imported = self.shared.import_flag_set(flag_set)
            if imported is None:
                return False
            return self._install(imported)
        self.store.replace(flag_set)
        log.info("flags: reloaded %s (revision %d)", self.file, flag_set.revision)
        return True

    # store ---------------------------------------------------------------------------------------
    def catch_up(self) -> bool:
        """Install the stored set if its revision differs from the one held; True if replaced."""
        if self.shared is None:
            return False
        revision = self.shared.revision()
        if revision is None or revision == self.store.revision:
            return False
        stored = self.shared.stored()
        return stored is not None and self._install(stored)

    def _install(self, flag_set: FlagSet) -> bool:
        if flag_set.revision == self.store.revision and flag_set.to_json() == self.store.flag_set.to_json():
            return False
        self.store.replace(flag_set)
        log.info("flags: installed revision %d from the store", flag_set.revision)
        return True

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.check_file()
                self.catch_up()
            except Exception as e:
                log.exception("flags: polling %s failed", self.file)
                if self.loops is not None:
                    self.loops.failed("flag_file_poll", e)
            else:
                if self.loops is not None:
                    self.loops.succeeded("flag_file_poll")

    # redis ---------------------------------------------------------------------------------------
    def pull(self) -> bool:
        """Install the flag set published in Redis if its revision differs; True if replaced."""
        if not self.redis_url:
            return False
        if self.shared is not None:
            return self.catch_up()
        flag_set = fetch_flag_set(self.redis_url, channel=self.channel)
        if flag_set is None or flag_set.to_json() == self.store.flag_set.to_json():
            return False
        self.store.replace(flag_set)
        log.info("flags: installed revision %d from redis", flag_set.revision)
        return True

    def _listen_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            r = None
            try:
                r = _redis(self.redis_url)  # type: ignore[arg-type]
                pubsub = r.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self.pull()  # catch up on whatever was published while not listening
                self._subscribed.set()
                if self.loops is not None:
                    self.loops.succeeded("flag_redis_listener")
                backoff = 0.5
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.5)
                    if msg and msg.get("type") == "message" and self._news(msg.get("data")):
                        self.pull()
                pubsub.close()
            except Exception as e:
                self.last_error = f"redis: {e}"
                log.warning("flags: redis listener error (%s); retrying in %.1fs", e, backoff)
                if self.loops is not None:
                    self.loops.failed("flag_redis_listener", e)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if r is not None:
                    r.close()

    def _news(self, data: Any) -> bool:
        """Whether a notice speaks of a revision other than the one held (unreadable: assume so)."""
        try:
            revision = json.loads(data)["revision"]
        except (ValueError, TypeError, KeyError):
            return True
        return bool(revision != self.store.revision)

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> FlagSync:
        """Start the background threads (a poller when there is a file, a listener when Redis is set)."""
        if self._threads:
            return self
        self._stop.clear()
        if self.file is not None or self.shared is not None:
            self._threads.append(threading.Thread(target=self._poll_loop, name="flags-poll", daemon=True))
        if self.redis_url:
            self._threads.append(threading.Thread(target=self._listen_loop, name="flags-redis", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """Block until the Redis listener is subscribed (for tests and orderly start-up)."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self._subscribed.clear()

    def __enter__(self) -> FlagSync:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def project_flags(
    cfg: ShipyardConfig,
    *,
    start: bool = True,
    loops: LoopHealth | None = None,
    shared: SharedFlags | None = None,
) -> tuple[FlagStore, FlagSync]:
    """The flag store of a project (from `flags:` in shipyard.yaml) and the sync keeping it current.

    With `shared` (the project's flag set in its store) the flags come from the store, the file
    seeding it the first time (see flags/_shared.py); if the store cannot be read at start, the
    file's flags serve (as revision 0) until the poll reaches the store. Without it, from the
    file: a missing flag file means no flags yet (every flag has its default) until one is written.
    Redis comes from SHIPYARD_REDIS_URL / REDIS_URL, else `flags.redis_url`. With `start`, the
    background poller and listener are running when this returns; call `sync.stop()` on shutdown.
    `loops` hears of each pass of the sync's loops (see `FlagSync`)."""
    path = cfg.resolve(cfg.flags.file)
    initial = load_flag_file(path) if path.exists() else None
    source = str(path)
    if shared is not None:
        try:
            initial = shared.current()
            source = f"store flag set {shared.name!r}"
        except ConfigError:
            raise  # the flag file does not validate: as without a store
        except Exception as e:  # the database does not answer: the poll catches up when it does
            log.warning("flags: the store's flags are unreadable (%s); serving %s until it answers", e, path)
            initial = initial.with_revision(0) if initial is not None else None
    store = FlagStore(initial, source=source)
    sync = FlagSync(
        store,
        file=path,
        redis_url=redis_url_from_env() or cfg.flags.redis_url,
        poll_interval_s=cfg.flags.poll_interval_s,
        channel=cfg.flags.channel,
        loops=loops,
        shared=shared,
    )
    return store, sync.start() if start else sync
