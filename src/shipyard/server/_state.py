"""Everything one server process holds: store, runtime, journal, metrics, KPI window, alerts, keys."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import IO, Any

from shipyard.config import AlertRule, ShipyardConfig
from shipyard.errors import ShipyardError
from shipyard.observe import (
    LOOP_EVENT,
    AlertEngine,
    EventCounter,
    Kpis,
    KpiWindow,
    LoopSupervisor,
    Metrics,
    TraceSampler,
    configure_logging,
    configure_otlp,
    configure_otlp_file,
    flush_export,
    log_event,
    log_interaction,
)
from shipyard.server._auth import KeyRing
from shipyard.server._dashboard import start_shared_kpis
from shipyard.server._incidents_api import start_incidents
from shipyard.server._journal import FsyncPolicy, Journal
from shipyard.server._malloc import MALLOC_TRIM_S, can_trim_malloc, trim_malloc
from shipyard.server._rate_limits import RateLimiter
from shipyard.server._reload import Reloader, ReloadResult, kpi_horizon
from shipyard.server._rollout_api import start_rollouts
from shipyard.server._steps import run_record_steps
from shipyard.store import DeadLetter, InteractionRecord, error_reason

AUTH_REFRESH_S = 10.0


async def stop_tasks(tasks: list[asyncio.Task[None]], *, recancel_s: float = 0.5) -> None:
    """Cancel background tasks and wait until each has ended. A task that swallowed its cancellation
    (redis-py's asyncio client does, when it arrives while a connection is being made) is cancelled
    again every `recancel_s`, so a stop never hangs on it."""
    pending = {t for t in tasks if not t.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=recancel_s)
        for task in pending:
            task.cancel()
    for task in tasks:
        if not task.cancelled():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()


@contextlib.contextmanager
def _stop_step(part: str) -> Iterator[None]:
    """One part of a server's stop: an error is logged (`server_stop_step_failed`), not raised."""
    try:
        yield
    except Exception as e:
        log_event(
            "server_stop_step_failed", level="error", part=part, error=error_reason(e, 300).splitlines()[0]
        )


class ServerState:
    """The parts of a running server, started and stopped with the app's lifespan.

    Args:
        cfg: the project's shipyard.yaml.
        store: a Store to use (default: `Store.from_config(cfg)`, closed on stop).
        journal_fsync: never | batch | always (see `Journal`).
        log_stream: where event lines go (default: standard output); `configure_logs=False`
            leaves the process's logging as it is.
        log_level: debug | info | warning | error.
        host: the address the server listens on (default `server.host`): on anything but
            loopback every request needs an API key, even before the first key exists.
        no_auth: answer without keys even when keys exist (`shipyard serve --no-auth`); loopback
            only. See `server/_auth.py` for when a server is open.
    """

    def __init__(
        self,
        cfg: ShipyardConfig,
        *,
        store: Any = None,
        journal_fsync: FsyncPolicy = "never",
        log_stream: IO[Any] | None = None,
        log_level: str = "info",
        configure_logs: bool = True,
        host: str | None = None,
        no_auth: bool = False,
    ) -> None:
        self.cfg = cfg
        self.host = host or cfg.server.host
        self.keys = KeyRing(None, host=self.host, no_auth=no_auth)  # reads the store from start()
        self._own_store = store is None
        self.store: Any = store
        self.journal_fsync = journal_fsync
        self.log_stream = log_stream
        self.log_level = log_level
        self.configure_logs = configure_logs
        self.metrics = Metrics()
        self.window = KpiWindow(horizon_s=kpi_horizon(self.rules))
        self.log_interaction = log_interaction
        self.load_errors: dict[str, str] = {}
        self.started_at = time.time()
        self.recovered = 0
        self.rt: Any = None
        self.journal: Journal = None  # type: ignore[assignment]
        self.dead_letter_events = EventCounter()  # records the store refused (server/_dead_letters.py)
        self.rate_limiter = RateLimiter(
            cfg.rate_limits, self.metrics.registry
        )  # per key / user, gateway routes (server/_rate_limits.py)
        self.alerts = AlertEngine(
            self.rules,
            lambda rule, now: self.window.kpis(rule.window_s, now=now, agent=rule.agent),
            webhooks=cfg.alerts.webhooks,
            files=[cfg.resolve(f) for f in cfg.alerts.files],
            webhook_timeout_s=cfg.alerts.webhook_timeout_s,
            project=cfg.project,
            counters={"dead_letters": self.dead_letter_events, LOOP_EVENT: EventCounter()},
        )
        # every background loop reports to it: failures logged, counted, alerted (observe/_loops.py)
        self.loops = LoopSupervisor(self.metrics, self.alerts)
        self._tasks: list[asyncio.Task[None]] = []
        self.reloader = Reloader(self)  # config reloads: file watcher, SIGHUP, admin API (server/_reload.py)
        self.flags: Any = None
        self.flag_sync: Any = None
        self.flag_admin: Any = None
        self.kill_switch: Any = None
        self.incidents: Any = None  # the IncidentWatcher, from start() (server/_incidents_api.py)
        self.incident_handover: Any = None  # records to it, a loop turn's at a time (the same module)
        self._llm_unlisten: Any = None  # set by start: model retries/fallbacks/breakers -> metrics
        self.startup_error: str | None = None  # why start() failed, in one line (`shipyard serve` says it)
        self.draining = False  # a stop signal came: /readyz answers 503 (server/_serve.py)
        self.shadow_mirror: Any = None  # live traffic replayed to candidates (shadow.mirror), from start()

    @property
    def rules(self) -> list[AlertRule]:
        return self.cfg.alerts.effective_rules()

    async def start(self) -> None:
        """Open the store, load the journals of dead processes, load agents, start background tasks.
        A failure is also kept, in one line, in `startup_error`."""
        try:
            await self._start()
        except BaseException as e:
            reason = e.message if isinstance(e, ShipyardError) else error_reason(e, 300).splitlines()[0]
            self.startup_error = reason or type(e).__name__
            log_event("server_start_failed", level="error", error=self.startup_error)
            raise

    def begin_drain(self, signal_name: str, delay_s: float) -> None:
        """A stop signal came: `/readyz` turns unready; the server stops accepting after `delay_s`."""
        self.draining = True
        log_event(
            "server_draining",
            signal=signal_name,
            delay_s=delay_s,
            timeout_s=self.cfg.server.drain.timeout_s,
            journal_pending=self.journal.pending if self.journal is not None else 0,
        )

    async def _start(self) -> None:
        from shipyard.llm import add_listener
        from shipyard.runtime import Runtime
        from shipyard.store import Store

        if self.configure_logs:
            configure_logging(
                stream=self.log_stream,
                level=self.log_level,
                content_capture=self.cfg.server.content_capture.enabled,
            )
        if self.store is None:
            self.store = await asyncio.to_thread(Store.from_config, self.cfg)
        self.journal = Journal(
            self.cfg.root / ".shipyard" / "journal",
            self.store,
            fsync=self.journal_fsync,
            batch_size=self.cfg.store.batch_size,
            flush_interval_s=self.cfg.store.flush_interval_ms / 1000,
            on_dead_letter=self._dead_letter,
            max_memory_records=self.cfg.store.journal_memory_records,
            max_memory_bytes=self.cfg.store.journal_memory_bytes,
        )
        await asyncio.to_thread(self._count_dead_letters)
        self.recovered = await asyncio.to_thread(self.journal.recover)
        self.journal.open()
        self.keys.store = self.store
        await asyncio.to_thread(self.keys.refresh)  # every key row, revoked too (server/_auth.py)
        self.rt = Runtime(self.cfg, store=self.store)
        self._llm_unlisten = add_listener(self.metrics.observe_llm_event)
        self.rt.sampler = TraceSampler(self.cfg.server.trace_sample_rate)
        if self.cfg.server.otlp_endpoint:
            configure_otlp(self.cfg.server.otlp_endpoint)
        if self.cfg.server.otlp_file:
            configure_otlp_file(
                self.cfg.resolve(self.cfg.server.otlp_file),
                max_mb=self.cfg.server.otlp_file_max_mb,
                backups=self.cfg.server.otlp_file_backups,
            )
        await asyncio.to_thread(self._start_flags)
        for agent in self.cfg.agents:
            try:
                await asyncio.to_thread(self.rt.versions, agent)
            except ShipyardError as e:
                self.load_errors[agent] = e.message
                log_event("agent_load_failed", level="error", agent=agent, error=e.message)
                continue
            warm_failed = await self.rt.warm_up(agent)  # before /readyz says ready (logged there)
            if warm_failed:
                self.load_errors[agent] = "; ".join(f"{v}: {err}" for v, err in warm_failed.items())
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.journal.run(loops=self.loops)),
            loop.create_task(self.alerts.run(self.cfg.alerts.interval_s, loops=self.loops)),
            loop.create_task(self._refresh_keys()),
            loop.create_task(self._record_versions()),
        ]
        if self.cfg.store.retention.enabled:
            self._tasks.append(loop.create_task(self._prune_store()))
        if can_trim_malloc():
            self._tasks.append(loop.create_task(self._trim_malloc()))
        self._tasks += await start_rollouts(self)  # assignment + canary ticks (server/_rollout_api.py)
        self._tasks += await start_shared_kpis(self)  # the fleet's KPIs, with Redis (server/_dashboard.py)
        self._tasks += await start_incidents(self)  # traffic -> incidents (server/_incidents_api.py)
        self._tasks += await self.reloader.start()  # watch the config, SIGHUP, Redis notices
        if self.cfg.shadow.mirror:  # after the answer, a share of live traffic to a candidate (loop)
            from shipyard.loop import ShadowMirror

            self.shadow_mirror = ShadowMirror(self.cfg.shadow, self.reloader.lease, self.finish)
        log_event(
            "server_started",
            agents=sorted(self.cfg.agents),
            recovered=self.recovered,
            auth="on" if self.keys.enabled else "off",
            host=self.host,
            journal=str(self.journal.path),
        )

    def _start_flags(self) -> None:
        """The project's flags: held in the store (one truth for every replica, compare-and-set),
        kept current from Redis notices and a revision poll, managed through /admin/flags, and
        switched off by their kill switches (flags/_shared.py)."""
        from shipyard.flags import (
            FlagAdmin,
            KillSwitchMonitor,
            SharedFlags,
            project_flags,
            redis_url_from_env,
        )

        shared = SharedFlags(self.store, self.cfg.project, self.cfg.resolve(self.cfg.flags.file))
        self.flags, self.flag_sync = project_flags(self.cfg, loops=self.loops, shared=shared)
        self.rt.flags = self.flags
        self.flag_admin = FlagAdmin(
            self.cfg.resolve(self.cfg.flags.file),
            redis_url=redis_url_from_env() or self.cfg.flags.redis_url,
            store=self.flags,
            channel=self.cfg.flags.channel,
            shared=shared,
        )
        self.kill_switch = KillSwitchMonitor(
            self.flags,
            admin=self.flag_admin,
            on_decision=lambda d: log_event("kill_switch", level="warning", **d.to_dict()),
        )

    async def _refresh_keys(self) -> None:
        """Re-read the key rows every AUTH_REFRESH_S (revocations made elsewhere take that long);
        while the store is unreachable the keys already held keep working (loop `api_key_refresh`)."""

        async def refresh() -> None:
            failing = self.keys.store_error
            try:
                await asyncio.to_thread(self.keys.refresh)  # raises what the store raises, after noting it
            finally:
                if self.keys.store_error != failing:
                    if self.keys.store_error is None:
                        log_event("api_keys_readable")
                    else:
                        log_event("api_keys_unreadable", level="warning", error=self.keys.store_error)

        await self.loops.every("api_key_refresh", AUTH_REFRESH_S, refresh)

    async def _record_versions(self) -> None:
        """Versions loaded while the store was unreachable are written once it answers again
        (loop `version_recorder`)."""

        async def record() -> None:
            if self.rt.unrecorded_versions:
                await asyncio.to_thread(self.rt.record_versions)

        await self.loops.every("version_recorder", AUTH_REFRESH_S, record)

    async def _prune_store(self) -> None:
        """Apply `store.retention` now and every `every` (loop `store_retention`); read at start, like
        every `store` setting."""
        retention = self.cfg.store.retention

        async def prune() -> None:
            result = await asyncio.to_thread(
                self.store.prune,
                max_age_s=retention.max_age_s,
                max_bytes=retention.max_bytes,
                ledger_max_age_s=retention.ledger_max_age_s,
            )
            if result.deleted or result.ledger_deleted:
                log_event(
                    "store_pruned",
                    deleted=result.deleted,
                    bytes_before=result.bytes_before,
                    bytes_after=result.bytes_after,
                    max_age=retention.max_age,
                    max_size_mb=retention.max_size_mb,
                    ledger_deleted=result.ledger_deleted,
                    ledger_max_age=retention.ledger_max_age,
                )

        with self.loops.guard("store_retention"):
            await prune()
        await self.loops.every("store_retention", retention.every_s, prune)

    async def _trim_malloc(self) -> None:
        """Hand glibc's free pages back to the kernel every MALLOC_TRIM_S (loop `malloc_trim`; see
        server/_malloc.py): the server's memory stays flat once its data stops growing."""

        async def trim() -> None:
            await asyncio.to_thread(trim_malloc)

        await self.loops.every("malloc_trim", MALLOC_TRIM_S, trim)

    async def stop(self) -> None:
        """Stop background tasks, move what the journal holds into the store, close everything. A
        part that fails to close (its store or Redis is gone) is logged and the others still close:
        a stop always ends, and what the journal could not move stays on disk for the next start."""
        if self.shadow_mirror is not None:  # mirrored replays in flight finish into the journal
            with _stop_step("shadow_mirror"):
                await self.shadow_mirror.drain()
        await stop_tasks(self._tasks)
        with _stop_step("rate_limits"):
            await self.rate_limiter.aclose()
        if self.flag_sync is not None:
            with _stop_step("flag_sync"):
                self.flag_sync.stop()
        if self.journal is not None:
            with _stop_step("journal"):
                await self.journal.aclose()
        with _stop_step("alerts"):
            await self.alerts.aclose()
        if self._llm_unlisten is not None:
            self._llm_unlisten()
        if self.rt is not None:
            with _stop_step("runtime"):
                await self.rt.aclose()
        with _stop_step("reloader"):
            await self.reloader.aclose()  # runtimes a reload swapped out, the SIGHUP handler
        with _stop_step("trace_export"):
            await asyncio.to_thread(flush_export)
        if self.cfg.server.otlp_file:
            # the file is this project's: a later server in this process may belong to another
            configure_otlp_file(None)
        if self._own_store and self.store is not None:
            self.store.close()
        log_event("server_stopped")

    def _count_dead_letters(self) -> None:
        """The dead letters of the last day, so the `dead_letters` alert outlives a restart."""
        try:
            times = self.store.dead_letter_times(time.time() - 86400)
        except Exception as e:  # the alert then counts from now on
            log_event("dead_letters_unreadable", level="warning", error=error_reason(e, 300).splitlines()[0])
            return
        for at in times:
            self.dead_letter_events.add(at)

    def _dead_letter(self, letter: DeadLetter) -> None:
        """A record the store refused was kept aside: count it and raise the `dead_letters` alert."""
        self.metrics.observe_dead_letter(letter.kind, letter.error_type)
        self.alerts.record_event("dead_letters")

    async def reload(self, trigger: str = "api") -> ReloadResult:
        """Read the config again and swap it in if every part of it loads; else keep the running
        one. `trigger` says why (file, signal, api, notice). See server/_reload.py."""
        return await self.reloader.reload(trigger)

    def finish(self, record: InteractionRecord) -> None:
        """Run the record steps (journal, metrics, KPI window, log) for a finished interaction; raises
        NotRecorded when the journal could not take it (the other steps ran)."""
        run_record_steps(self, record)

    def kpis(
        self, window_s: float, *, offset_s: float = 0.0, agent: str | None = None, version: str | None = None
    ) -> Kpis:
        return self.window.kpis(window_s, offset_s=offset_s, agent=agent, version=version)
