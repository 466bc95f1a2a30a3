"""Running the app on uvicorn (uvloop + httptools), one process or several workers."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import uvicorn

from shipyard.config import ShipyardConfig, load_config
from shipyard.server._journal import FsyncPolicy

ENV_CONFIG = "SHIPYARD_SERVE_CONFIG"
ENV_FSYNC = "SHIPYARD_SERVE_FSYNC"
ENV_LOG_LEVEL = "SHIPYARD_SERVE_LOG_LEVEL"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_from_env() -> Any:
    """The app factory uvicorn's worker processes call (`--workers` > 1)."""
    from shipyard.server._app import create_app

    fsync: Any = os.environ.get(ENV_FSYNC, "never")
    return create_app(
        load_config(os.environ[ENV_CONFIG]),
        journal_fsync=fsync,
        log_level=os.environ.get(ENV_LOG_LEVEL, "info"),
    )


def serve(
    cfg: ShipyardConfig,
    *,
    host: str,
    port: int,
    workers: int = 1,
    journal_fsync: FsyncPolicy = "never",
    log_level: str = "info",
) -> None:
    """Serve until interrupted. Several workers each keep their own journal, metrics and KPI window
    (scrape each, or run one worker per container)."""
    common: dict[str, Any] = dict(
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    if workers > 1:
        assert cfg.path is not None, "several workers need the config file's path"
        os.environ[ENV_CONFIG] = str(cfg.path)
        os.environ[ENV_FSYNC] = journal_fsync
        os.environ[ENV_LOG_LEVEL] = log_level
        uvicorn.run("shipyard.server._serve:app_from_env", factory=True, workers=workers, **common)
        return
    from shipyard.server._app import create_app

    uvicorn.run(create_app(cfg, journal_fsync=journal_fsync, log_level=log_level), **common)
