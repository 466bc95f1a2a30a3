"""Programs a test suite needs from Debian's packages (chromium for the browser tests, ruby for
promptfoo's `ruby` checks): installed with apt-get when the machine does not have them yet, as a
fresh CI machine does not."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# parallel test workers (pytest-xdist) install one at a time: apt-get does not wait for dpkg's lock
_APT_LOCK = Path(tempfile.gettempdir()) / "shipyard-tests-apt.lock"


@functools.cache
def _install(package: str) -> str | None:
    """Install `package` with apt-get; None when done, else why it could not be."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}"
    return None


def debian_program(program: str, package: str | None = None) -> Path:
    """The path of `program` (a name looked up on PATH, or an absolute path), installing Debian's
    `package` (default: the program's name) when it is missing. Skips the test when it cannot be had."""

    def found() -> str | None:
        return program if os.path.isabs(program) and os.path.exists(program) else shutil.which(program)

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
