"""Helpers and fixtures of the incident tests (imported by them): the demo project in tmp_path, a database
of each kind, and the served app on loopback (with the incident watcher on its record path).

The incident tests run the real parts: the demo agent on its scripted model, real SQLite files and the
local PostgreSQL, and the app served by uvicorn."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from testdb import KINDS, newest_schema_database

from shipyard.config import ShipyardConfig, load_config
from shipyard.demo import STORE, copy_project
from shipyard.store import Store


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database at the newest schema: a SQLite file, or a PostgreSQL schema
    (testdb.newest_schema_database)."""
    return newest_schema_database(request.param, tmp_path / "db")


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., ShipyardConfig]:
    """The demo project copied into tmp_path; `edit` rewrites shipyard.yaml's text; reloads each call."""
    copied: list[Path] = []

    def make(edit: Callable[[str], str] | None = None) -> ShipyardConfig:
        if not copied:
            STORE.reset()
            copied.append(copy_project(tmp_path))
        path = copied[0] / "shipyard.yaml"
        if edit is not None:
            path.write_text(edit(path.read_text()))
        return load_config(path)

    return make


def with_incidents(section: str) -> Callable[[str], str]:
    """An edit that appends an `incidents:` section to shipyard.yaml."""
    return lambda text: (
        text + "\nincidents:\n" + "".join(f"  {line}\n" for line in section.strip().splitlines())
    )


@dataclass
class Served:
    url: str
    state: Any
    cfg: ShipyardConfig
    logs: io.StringIO

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Serve a project's app with uvicorn in a thread on a free loopback port."""
    from shipyard.server import create_app, uvicorn_config

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(cfg: ShipyardConfig, **options: Any) -> Served:
        logs = io.StringIO()
        app = create_app(cfg, log_stream=logs, **options)
        port = _free_port()
        server = uvicorn.Server(uvicorn_config(app, cfg.server, host="127.0.0.1", port=port))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120  # an event to wait for, not a timing
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        running.append((server, thread))
        return Served(f"http://127.0.0.1:{port}", app.state.shipyard, cfg, logs)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=60)


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy (an event to wait for, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()
