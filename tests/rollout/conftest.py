"""Fixtures: the demo project in a temporary folder, its SQLite store, runtime and controller, and a
real server on loopback over them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rollout_helpers import Clock, Sy, cli, serving
from testdb import migrated_sqlite

from shipyard.config import ShipyardConfig, load_config
from shipyard.demo import copy_project
from shipyard.rollout import RolloutController
from shipyard.runtime import Runtime
from shipyard.store import Store


@pytest.fixture(scope="session")
def project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def cfg(project_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ShipyardConfig:
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", migrated_sqlite(tmp_path / "shipyard.db"))
    return load_config(project_template / "shipyard.yaml")


@pytest.fixture
def store(cfg: ShipyardConfig) -> Iterator[Store]:
    s = Store.from_config(cfg)
    yield s
    s.close()


@pytest.fixture
def rt(cfg: ShipyardConfig, store: Store) -> Iterator[Runtime]:
    r = Runtime(cfg, store=store)
    yield r
    asyncio.run(r.aclose())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctl(rt: Runtime, store: Store, clock: Clock) -> RolloutController:
    return RolloutController.for_runtime(rt, store, clock=clock, hold_every_s=30)


@pytest.fixture
def ids(rt: Runtime) -> dict[str, str]:
    """Version ids by label: {"1.0": ..., "1.1": ..., "1.2": ...}."""
    return {v.label.rsplit(".", 1)[0]: v.id for v in rt.versions("support")}


@pytest.fixture
def server(cfg: ShipyardConfig, store: Store) -> Iterator[tuple[str, Any]]:
    """A real server on loopback over `cfg` and `store`: (its base URL, its ServerState)."""
    with serving(cfg, store) as served:
        yield served


@pytest.fixture
def sy(cfg: ShipyardConfig) -> Sy:
    """`shipyard ARGS --config` on the test's project (rollout_helpers.cli)."""
    return cli(cfg.path)  # type: ignore[arg-type]  # a loaded file always has its path
