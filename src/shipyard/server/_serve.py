"""Running the app on uvicorn (uvloop + httptools), one process or several workers.

Start-up fails fast (server/_preflight.py): the socket is bound before anything else, so a busy port
is one line and exit 2, and "serving at" is said (`on_ready`) only once the socket is bound and the
app has started. A failure while the app starts is one line too (`StartupError`).

SIGTERM / SIGINT drain (`server.drain`): `/readyz` turns unready at once, the server keeps serving for
`drain.delay_s`, then stops accepting, lets requests in flight finish for up to `drain.timeout_s`,
moves the journal into the store (best effort: an unreachable store leaves it on disk for the next
start) and exits 0. A second signal stops waiting.

SIGHUP reloads the config (server/_reload.py). With one process the app takes the signal itself; with
`--workers N` uvicorn's supervisor would restart every worker on SIGHUP, so `_Supervisor` passes it on
to each worker instead, and each one reloads in place. With workers, SIGINT and SIGTERM are uvicorn's
supervisor's: each worker stops gracefully (no `drain.delay_s`).
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from shipyard.config import ShipyardConfig, load_config
from shipyard.server._connections import uvicorn_options
from shipyard.server._journal import FsyncPolicy
from shipyard.server._malloc import tune_malloc
from shipyard.server._preflight import StartupError, bind_socket
from shipyard.server._worker_metrics import forget_workers, worker_metrics_dir

ENV_CONFIG = "SHIPYARD_SERVE_CONFIG"
ENV_FSYNC = "SHIPYARD_SERVE_FSYNC"
ENV_LOG_LEVEL = "SHIPYARD_SERVE_LOG_LEVEL"
ENV_HOST = "SHIPYARD_SERVE_HOST"  # the bind address: auth depends on it (server/_auth.py)
ENV_NO_AUTH = "SHIPYARD_SERVE_NO_AUTH"
WORKER_HEALTHCHECK_S = 60
_STARTUP_FAILED = "Application startup failed. Exiting."  # uvicorn's line; ours names the problem


def _stop_with_parent(every_s: float = 1.0) -> None:
    """In a worker: when the supervisor is gone (SIGKILL, the OOM killer), SIGTERM this worker, which
    drains and exits as on any SIGTERM, instead of serving on as an orphan that holds the port."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="shipyard-parent-watch", daemon=True).start()


def app_from_env() -> Any:
    """The app factory uvicorn's worker processes call (`--workers` > 1)."""
    from shipyard.server._app import create_app

    _stop_with_parent()

    fsync: Any = os.environ.get(ENV_FSYNC, "never")
    return create_app(
        load_config(os.environ[ENV_CONFIG]),
        journal_fsync=fsync,
        log_level=os.environ.get(ENV_LOG_LEVEL, "info"),
        host=os.environ.get(ENV_HOST),  # unset: server.host
        no_auth=os.environ.get(ENV_NO_AUTH) == "1",
    )


class _Supervisor(Multiprocess):
    """uvicorn's supervisor of worker processes, except that SIGHUP reaches every worker, which
    reloads its config in place, rather than restarting them all (which would drop what each one
    holds in memory: KPI windows, held traces, alert states)."""

    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                # a worker still starting up dies of it, is restarted, and reads the file afresh
                os.kill(process.pid, signal.SIGHUP)
        logging.getLogger("uvicorn.error").info(
            "Received SIGHUP, told %d workers to reload.", len(self.processes)
        )

    # a worker replaced (it died or hung) or retired: its live gauges leave /metrics (server/_worker_metrics.py)
    def _pids(self) -> set[int]:
        return {p.pid for p in self.processes if p.pid is not None}

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        forget_workers(before - self._pids())

    def handle_ttou(self) -> None:
        before = self._pids()
        super().handle_ttou()
        forget_workers(before - self._pids())


class _Server(uvicorn.Server):
    """uvicorn's server, with Shipyard's start and stop.

    - `on_ready` is called once the socket listens and the app has started;
    - the first SIGTERM / SIGINT starts a drain: `state.draining` (so `/readyz` answers 503), then after
      `drain_delay_s` uvicorn's graceful shutdown (stop accepting, requests in flight get
      `drain.timeout_s`, then the app's shutdown moves the journal into the store); a second signal
      ends the delay, a third stops waiting for requests in flight;
    - a drained server exits 0: the signal is not raised again once the server has stopped (uvicorn
      does, which ends the process with the signal's status).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        state: Any,
        *,
        drain_delay_s: float,
        on_ready: Callable[[], None] | None,
    ) -> None:
        super().__init__(config)
        self.state = state
        self.drain_delay_s = drain_delay_s
        self.on_ready = on_ready
        self._exit_at: float | None = None
        self._drain_signal: str | None = None  # told to the state on the next tick, not in the handler

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._exit_at is None and self.started and not self.should_exit:
            self._exit_at = time.monotonic() + self.drain_delay_s
            self._drain_signal = signal.Signals(sig).name
        elif not self.should_exit:
            self.should_exit = True  # a signal during start-up, or a second one: stop now
        else:
            self.force_exit = True  # a third: stop waiting for requests in flight

    async def on_tick(self, counter: int) -> bool:
        if self._drain_signal is not None:
            self.state.begin_drain(self._drain_signal, self.drain_delay_s)
            self._drain_signal = None
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        return await super().on_tick(counter)


class _QuietStartupFailure(logging.Filter):
    """Drops uvicorn's generic start-up failure line: the CLI prints one naming the problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _STARTUP_FAILED


class _QuietLifespan:
    """The app, except that a failed start-up reaches uvicorn without its traceback (uvicorn would log
    it): `ServerState.startup_error` holds the one line the CLI prints."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def quiet(message: Any) -> None:
            if message.get("type") == "lifespan.startup.failed":
                message = {**message, "message": ""}
            await send(message)

        return await self.app(scope, receive, quiet)


def _run_workers(workers: int, common: dict[str, Any], sock: socket.socket) -> None:
    """`uvicorn.run` with `workers` > 1 on an already bound socket, supervised by `_Supervisor`."""
    config = uvicorn.Config("shipyard.server._serve:app_from_env", factory=True, workers=workers, **common)
    if hasattr(config, "timeout_worker_healthcheck"):
        # a worker answers the supervisor's ping only once it has imported the app; at uvicorn's 5 s a
        # busy machine killed every worker before it started, for ever
        config.timeout_worker_healthcheck = WORKER_HEALTHCHECK_S
    extra: dict[str, Any] = {}
    if "target" in inspect.signature(Multiprocess.__init__).parameters:  # uvicorn before 0.51
        extra["target"] = uvicorn.Server(config).run
    try:
        _Supervisor(config, sockets=[sock], **extra).run()
    except KeyboardInterrupt:
        pass


def serve(
    cfg: ShipyardConfig,
    *,
    host: str,
    port: int,
    workers: int = 1,
    journal_fsync: FsyncPolicy = "never",
    log_level: str = "info",
    no_auth: bool = False,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM / SIGINT, then drain (see the module docs) and return.

    Several workers each keep their own journal and KPI window (or run one worker per container);
    their metrics are shared: `/metrics` of any worker shows the sum (server/_worker_metrics.py).
    `no_auth`: answer without API keys even when keys exist (loopback only; see server/_auth.py).
    `on_ready` is called once the socket listens (with workers: once it is
    bound). Raises StartupError (exit 2) when the socket cannot be bound or the app does not start.
    """
    sock = bind_socket(host, port)  # before anything else: a busy port fails in a second
    tune_malloc()  # before the app starts its threads
    common = uvicorn_options(cfg.server, host=host, port=port)  # timeouts, connection limit, drain
    try:
        if workers > 1:
            assert cfg.path is not None, "several workers need the config file's path"
            os.environ[ENV_CONFIG] = str(cfg.path)
            os.environ[ENV_FSYNC] = journal_fsync
            os.environ[ENV_LOG_LEVEL] = log_level
            os.environ[ENV_HOST] = host
            os.environ[ENV_NO_AUTH] = "1" if no_auth else "0"
            if on_ready is not None:
                on_ready()
            with worker_metrics_dir():  # /metrics sums every worker's (server/_worker_metrics.py)
                _run_workers(workers, common, sock)
            return
        from shipyard.server._app import create_app

        app = create_app(cfg, journal_fsync=journal_fsync, log_level=log_level, host=host, no_auth=no_auth)
        state = app.state.shipyard
        server = _Server(
            uvicorn.Config(_QuietLifespan(app), **common),
            state,
            drain_delay_s=cfg.server.drain.delay_s,
            on_ready=on_ready,
        )
        quiet = _QuietStartupFailure()
        logging.getLogger("uvicorn.error").addFilter(quiet)
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn's way out of a failed start-up
            pass
        finally:
            logging.getLogger("uvicorn.error").removeFilter(quiet)
        if not server.started:
            raise StartupError(
                f"the server did not start: {state.startup_error or 'see the log lines above'}",
                hint="fix what it names and start it again",
            )
    finally:
        sock.close()
