"""Programs a test suite needs from Debian's packages (chromium for the browser tests, ruby for
promptfoo's `ruby` checks, haproxy for the replica tests): installed with apt-get when the machine does not have them yet, as a
fresh CI machine does not. `make test` fetches them beside the venv's install (`prefetch`, with the
standard library only: pytest is not installed yet); a test still installs what is missing itself."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PROGRAMS = {"/usr/bin/chromium": "chromium", "ruby": "ruby", "/usr/sbin/haproxy": "haproxy"}
"""The programs the tests look for (a name on PATH or an absolute path) and their Debian packages."""

# parallel test workers (pytest-xdist) install one at a time: apt-get does not wait for dpkg's lock
_APT_LOCK = Path(tempfile.gettempdir()) / "shipyard-tests-apt.lock"


@functools.cache
def _install(package: str) -> str | None:
    """Install `package` (or several, space-separated) with apt-get; None when done, else why not."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *package.split()]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}"
    return None


def _found(program: str) -> str | None:
    return program if os.path.isabs(program) and os.path.exists(program) else shutil.which(program)


def prefetch() -> None:
    """Install the packages of the PROGRAMS missing here, in one apt-get run, holding the lock the test
    workers take (one waiting for a program finds it installed). Best effort: a failure is the tests'
    to report (they try again and skip, saying why)."""
    missing = [package for program, package in PROGRAMS.items() if _found(program) is None]
    if not missing or not shutil.which("apt-get"):
        return
    with open(_APT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [package for program, package in PROGRAMS.items() if _found(program) is None]
        if missing:
            problem = _install(" ".join(missing))
            if problem:
                print(f"tests/support/debian.py: {problem}")


def debian_program(program: str, package: str | None = None) -> Path:
    """The path of `program` (a name looked up on PATH, or an absolute path), installing Debian's
    `package` (default: the program's name) when it is missing. Skips the test when it cannot be had."""
    import pytest

    def found() -> str | None:
        return _found(program)

    if found() is None:
        problem = None
        with open(_APT_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing it: wait, then look again
            if found() is None:
                problem = _install(package or Path(program).name)
        if found() is None:
            pytest.skip(
                f"{program} is missing and could not be installed: {problem or 'not found after install'}"
            )
    return Path(found() or program)
