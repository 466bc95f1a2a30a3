"""Data at rest: what a served project writes under `.shipyard/` is its owner's only (folders 0700,
files 0600), whatever the umask, and an older project's looser modes are tightened at start."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from server_helpers import Served
from waiting import wait_until

from shipyard.config import ShipyardConfig
from shipyard.evals import ReplayCache, replay_path


@pytest.fixture
def lax_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The usual umask (022): without care, files come out world-readable."""
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)  # the project's own SQLite file
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): _mode(p) for p in [root, *root.rglob("*")]}


def test_a_served_project_writes_owner_only_files(
    serve_project: Callable[..., Served], lax_umask: None
) -> None:
    served = serve_project()
    own = served.cfg.root / ".shipyard"
    with served.client() as c:
        assert (
            c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"}).status_code == 200
        )
    journal = own / "journal"
    wait_until(lambda: any(journal.glob("*.ckpt")), "the journal to checkpoint a batch")
    names = {p.name for p in own.rglob("*")}
    assert {"shipyard.db", "shipyard.db-wal", "shipyard.db-shm", "journal"} <= names, names
    modes = _modes(own)
    assert all(m == (0o700 if (own / p).is_dir() else 0o600) for p, m in modes.items()), {
        p: oct(m) for p, m in modes.items()
    }


def test_an_older_projects_loose_modes_are_tightened(
    serve_project: Callable[..., Served], demo_project: Callable[..., ShipyardConfig], lax_umask: None
) -> None:
    cfg = demo_project()
    own = cfg.root / ".shipyard"
    (own / "journal").mkdir(parents=True, mode=0o755)
    os.chmod(own, 0o755)
    (own / "shipyard.db").touch(mode=0o644)  # an empty file is an empty SQLite database
    os.chmod(own / "shipyard.db", 0o644)
    assert _mode(own) == 0o755 and _mode(own / "shipyard.db") == 0o644
    serve_project()
    assert _mode(own) == 0o700 and _mode(own / "journal") == 0o700
    assert _mode(own / "shipyard.db") == 0o600


def test_eval_recordings_are_owner_only(tmp_path: Path, lax_umask: None) -> None:
    path = replay_path(tmp_path / ".shipyard" / "replay", "support", "evals/support/smoke.yaml")
    cache = ReplayCache(path, "record")
    cache.put("k", {"answer": "an order number and a name"})
    cache.close()
    assert _mode(tmp_path / ".shipyard") == 0o700 and _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
