"""Throwaway PostgreSQL and Redis servers of a test's own, on free ports, that the
test may stop and start again (the shared 127.0.0.1:5432 and :6379 are never touched).

PostgreSQL comes from the installed binaries (`/usr/lib/postgresql/*/bin`), run as the `postgres`
user when the tests run as root (initdb refuses root); Redis from `redis-server` on the PATH. A test
is skipped when they are missing."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


_INITDB: dict[str, Path] = {}


def _initdb_once(pg: ThrowawayPostgres) -> Path:
    """A fresh cluster's data folder from `initdb` (trust, superuser `postgres`), made once per test
    process in a folder of its own and removed at exit; each throwaway copies it (`cp -a`, which keeps
    the owner and the 0700 mode PostgreSQL wants)."""
    key = f"{pg.bindir}:{pg.user}"
    if key not in _INITDB:
        folder = Path(tempfile.mkdtemp(prefix="shipyard-pg-initdb-"))
        folder.chmod(0o755)
        if pg.user:
            shutil.chown(folder, pg.user)
        atexit.register(shutil.rmtree, folder, True)
        data = folder / "pgdata"
        pg._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        _INITDB[key] = data
    return _INITDB[key]


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp folder of its own, on its own port; `stop()` and `start()` as often as needed."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bindir = bindir
        # its own folder under the system's temp dir: pytest's tmp folders are private to root, and
        # the server runs as `postgres`
        self.folder = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
        self.folder.chmod(0o755)
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no `postgres` user to run a throwaway PostgreSQL")
            self.user = "postgres"
            shutil.chown(self.folder, "postgres")
        # a copy of the cluster initdb made once in this process: the same files, without initdb's
        # seconds per test
        subprocess.run(["cp", "-a", str(_initdb_once(self)), str(self.data)], check=True, timeout=120)
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "pg.log"), "-w", "start"
        )
        wait_until(lambda: _answers(self.port), "the throwaway PostgreSQL to listen")

    def stop(self) -> None:
        """Stop it as a crash would look to clients (immediate: connections are cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        wait_until(lambda: not _answers(self.port), "the throwaway PostgreSQL to stop listening")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    try:
        yield pg
    finally:
        pg.close()


class ThrowawayRedis:
    """A `redis-server` on its own port without persistence; `stop()` and `start()` again."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("no redis-server on the PATH")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/9"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _answers(self.port), "the throwaway Redis to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=60)
            self.proc = None
        wait_until(lambda: not _answers(self.port), "the throwaway Redis to stop listening")

    def close(self) -> None:
        if self.proc is not None:
            self.stop()


@contextlib.contextmanager
def throwaway_redis(folder: Path) -> Iterator[ThrowawayRedis]:
    r = ThrowawayRedis(folder)
    try:
        yield r
    finally:
        r.close()
