"""Start-up fails fast and clearly: a busy port, an unreachable PostgreSQL or Redis, or a schema the
server cannot migrate is one error line naming the problem and exit code 2; "serving at" is said
only once the socket is bound. Real `shipyard serve` processes."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from fault_helpers import SHIPYARD, demo_project, env_with, start_ready
from server_helpers import HTTP, free_port
from throwaway import throwaway_redis

from shipyard.config import load_config
from shipyard.store import Store


def serve_fails(project: Path, env: dict[str, str], port: int | None = None) -> str:
    """Run `shipyard serve` to its end; assert exit code 2 and one error line; return stderr."""
    port = port or free_port()
    done = subprocess.run(
        [str(SHIPYARD), "serve", "--port", str(port), "--config", str(project / "shipyard.yaml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang (the bug this guards against) fails here, far above any machine's speed
    )
    err = done.stderr
    assert done.returncode == 2, f"exit {done.returncode}:\n{err}"
    assert "Traceback" not in err and "Traceback" not in done.stdout
    assert [line for line in err.splitlines() if line.startswith("error:")] != []
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    assert "shipyard serving" not in err
    return " ".join(err.split())  # the console wraps long lines


def test_a_busy_port_is_one_line_and_exit_2_also_with_redis(tmp_path: Path) -> None:
    """With Redis configured the failed bind used to hang for ever (redis-py swallowed the listeners'
    cancellation) and ignore SIGTERM; before that the server said "serving at" and exited 3."""
    project = demo_project(tmp_path / "p")
    with socket.socket() as taken, throwaway_redis(tmp_path) as redis:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = serve_fails(project, env_with(SHIPYARD_REDIS_URL=redis.url), port)
    assert f"port {port} on 127.0.0.1 is already in use" in err


def test_an_unreachable_postgresql_is_one_line_and_exit_2(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    err = serve_fails(project, env_with(SHIPYARD_DATABASE_URL=url))
    assert "cannot open the database" in err and "Connection refused" in err


@pytest.mark.parametrize("where", ["env", "config"])
def test_an_unreachable_redis_is_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/9"
    if where == "env":
        project, env = demo_project(tmp_path / "p"), env_with(SHIPYARD_REDIS_URL=url)
        named = "$SHIPYARD_REDIS_URL"
    else:
        project = demo_project(tmp_path / "p", extra_yaml=f"\nflags:\n  redis_url: {url}\n")
        env, named = env_with(), "flags.redis_url"
    err = serve_fails(project, env)
    assert f"Redis at {url} ({named}) does not answer" in err


def test_a_schema_it_cannot_migrate_is_one_line_and_exit_2(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    db = tmp_path / "other.db"
    Store(f"sqlite:///{db}").close()  # a current schema, then a revision no Shipyard knows
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff0000beef'")
    err = serve_fails(project, env_with(SHIPYARD_DATABASE_URL=f"sqlite:///{db}"))
    assert "schema is at revision 'ffff0000beef', which this Shipyard does not know" in err


def test_serving_at_is_said_once_the_socket_answers_and_sigterm_exits_0(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    served = start_ready(project, env_with())
    try:
        # said only once bound and started: the very first request after the line is answered
        assert HTTP.get(served.url + "/healthz", timeout=60).status_code == 200
        assert HTTP.get(served.url + "/readyz", timeout=60).json()["status"] == "ready"
        served.signal()
        assert served.wait() == 0
    finally:
        served.kill()
    assert served.events("server_draining")[0]["signal"] == "SIGTERM"
    assert served.events("server_stopped")
    with Store.from_config(load_config(project / "shipyard.yaml")) as store:
        assert store.ping()
