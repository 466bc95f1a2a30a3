"""Running the app on uvicorn (uvloop + httptools), one process or several workers.

SIGHUP reloads the config (server/_reload.py). With one process the app takes the signal itself; with
`--workers N` uvicorn's supervisor would restart every worker on SIGHUP, so `_Supervisor` passes it on
to each worker instead, and each one reloads in place. SIGINT and SIGTERM stay uvicorn's: a graceful
shutdown.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from shipyard.config import ShipyardConfig, load_config
from shipyard.server._connections import uvicorn_options
from shipyard.server._journal import FsyncPolicy

ENV_CONFIG = "SHIPYARD_SERVE_CONFIG"
ENV_FSYNC = "SHIPYARD_SERVE_FSYNC"
ENV_LOG_LEVEL = "SHIPYARD_SERVE_LOG_LEVEL"
ENV_HOST = "SHIPYARD_SERVE_HOST"  # the bind address: auth depends on it (server/_auth.py)
ENV_NO_AUTH = "SHIPYARD_SERVE_NO_AUTH"


def app_from_env() -> Any:
    """The app factory uvicorn's worker processes call (`--workers` > 1)."""
    from shipyard.server._app import create_app

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


def _run_workers(workers: int, common: dict[str, Any]) -> None:
    """`uvicorn.run` with `workers` > 1, supervised by `_Supervisor`."""
    config = uvicorn.Config("shipyard.server._serve:app_from_env", factory=True, workers=workers, **common)
    sock = config.bind_socket()
    extra: dict[str, Any] = {}
    if "target" in inspect.signature(Multiprocess.__init__).parameters:  # uvicorn before 0.51
        extra["target"] = uvicorn.Server(config).run
    try:
        _Supervisor(config, sockets=[sock], **extra).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def serve(
    cfg: ShipyardConfig,
    *,
    host: str,
    port: int,
    workers: int = 1,
    journal_fsync: FsyncPolicy = "never",
    log_level: str = "info",
    no_auth: bool = False,
) -> None:
    """Serve until interrupted. Several workers each keep their own journal, metrics and KPI window
    (scrape each, or run one worker per container). `no_auth`: answer without API keys even when
    keys exist (loopback only; see server/_auth.py)."""
    common = uvicorn_options(cfg.server, host=host, port=port)  # timeouts, connection limit
    if workers > 1:
        assert cfg.path is not None, "several workers need the config file's path"
        os.environ[ENV_CONFIG] = str(cfg.path)
        os.environ[ENV_FSYNC] = journal_fsync
        os.environ[ENV_LOG_LEVEL] = log_level
        os.environ[ENV_HOST] = host
        os.environ[ENV_NO_AUTH] = "1" if no_auth else "0"
        _run_workers(workers, common)
        return
    from shipyard.server._app import create_app

    app = create_app(cfg, journal_fsync=journal_fsync, log_level=log_level, host=host, no_auth=no_auth)
    uvicorn.run(app, **common)
