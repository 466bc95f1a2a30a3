"""Files and folders only their owner can read: the SQLite store, the journal, recordings.

Shipyard's own folder is `.shipyard/` in the project; what it holds (interactions, keys' hashes,
model answers) is for the owner only. Folders Shipyard creates are 0700 and files 0600, whatever
the umask; `.shipyard/` and the folders under it are tightened when they already exist looser (an
older Shipyard created them with the umask's modes). Folders outside `.shipyard/` that already
exist (a SQLite path the user chose, such as `/srv/data/`) are the user's and left as they are.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

OWN_FOLDER = ".shipyard"
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and any missing parents) readable by its owner only.

    Args:
        path: a folder; missing folders on the way are created 0700. Existing folders are
            tightened to 0700 only from `.shipyard/` down (Shipyard's own).
    """
    path = Path(path).absolute()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for p in reversed(missing):
        try:
            p.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it first
            pass
        _tighten(p, DIR_MODE)
    if OWN_FOLDER in path.parts:
        own = path.parts.index(OWN_FOLDER)
        for depth in range(own + 1, len(path.parts) + 1):
            _tighten(Path(*path.parts[:depth]), DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists and only its owner can read or write it (create it empty, 0600,
    or tighten an existing file). Its folder must exist (see `private_dir`)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    _tighten(Path(path), FILE_MODE)
    return Path(path)


def append_private(path: Path, data: bytes) -> None:
    """Append `data` to `path` in one write, creating the file 0600 and its missing folders 0700 (a
    log of alerts or traces under `.shipyard/`). Raises OSError when it cannot be written."""
    path = Path(path)
    if not path.parent.is_dir():
        private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _tighten(path: Path, mode: int) -> None:
    """chmod `path` to `mode` when group or others have any access (and we own it)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, mode)
