"""A served demo project: the real app on uvicorn in a thread, on a free loopback port."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from server_helpers import Served, free_port, run_in_thread
from testdb import KINDS, at_newest_schema, fresh_database, newest_schema_database
from yaml_sections import merge_sections

from shipyard.config import ShipyardConfig, load_config
from shipyard.demo import copy_project
from shipyard.server import create_app
from shipyard.store import Store, default_database_url


@pytest.fixture
def demo_project(tmp_path: Path) -> Callable[..., ShipyardConfig]:
    """Copy the demo project into tmp_path; `edit` rewrites shipyard.yaml's text (a section it appends
    again is merged into the file's own: yaml_sections.merge_sections). Its default store starts as a
    migrated copy (testdb.migrated_sqlite)."""

    def make(edit: Callable[[str], str] | None = None) -> ShipyardConfig:
        copy_project(tmp_path)
        at_newest_schema(default_database_url(tmp_path))
        path = tmp_path / "shipyard.yaml"
        if edit is not None:
            path.write_text(merge_sections(edit(path.read_text())))
        return load_config(path)

    return make


@pytest.fixture
def serve_project(demo_project: Callable[..., ShipyardConfig]) -> Iterator[Callable[..., Served]]:
    """Start the app for the demo project (`edit` rewrites shipyard.yaml; options go to ServerState)."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(edit: Callable[[str], str] | None = None, **options: Any) -> Served:
        cfg = demo_project(edit)
        logs = io.StringIO()
        app = create_app(cfg, log_stream=logs, **options)
        port = free_port()
        running.append(run_in_thread(app, port))
        return Served(f"http://127.0.0.1:{port}", app.state.shipyard, logs, cfg)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=60)


@pytest.fixture
def served(serve_project: Callable[..., Served]) -> Served:
    return serve_project()


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database for `store=Store(db_url)`: a SQLite file, or a PostgreSQL schema of its own."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A Store on an empty database at the newest schema, migrated once per process (each test runs on
    SQLite and on PostgreSQL: testdb.newest_schema_database), closed afterwards."""
    s = Store(newest_schema_database(request.param, tmp_path_factory.mktemp("db")))
    yield s
    s.close()
