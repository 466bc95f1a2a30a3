"""Writing a file whole or not at all: a temp file in the same folder, then one atomic rename.

A reader never sees half a file, and a write that fails (a full disk, data that cannot be encoded,
a check of the new content that raises) leaves the old file as it was and no temp file behind.

    from shipyard._atomic import atomic_file, atomic_write

    atomic_write(path, text, private=True)       # 0600, whatever the umask
    with atomic_file(path, suffix=".yaml") as tmp:
        tmp.write_text(text)
        load_suite(tmp)                          # raising here leaves `path` untouched

The temp file is named `.<name>.<random><suffix>` and created with O_EXCL (what `tempfile.mkstemp`
does), so two writers never share one. It is not made by `mkstemp` itself because mkstemp always
creates 0600: a file that is not private gets the mode a plain `open` would give it (0666 less the
umask), which cannot be had after the fact without changing the process-wide umask.

A bottom module beside `config` (like `shipyard.types`), so every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

PRIVATE_MODE = 0o600
"""A private file's mode: its owner may read and write it, nobody else anything."""
_PUBLIC_MODE = 0o666  # less the umask, as `open` does
_TRIES = 100  # as tempfile's: names are 48 random bits, so a clash is already a rare event


def atomic_write(path: Path | str, data: bytes | str, *, private: bool = False, fsync: bool = False) -> None:
    """Replace the file at `path` with `data` atomically; its folder must exist.

    Args:
        path: the file to write; an existing file is replaced whole, or left as it was on failure.
        data: the content; a str is encoded as UTF-8 (UnicodeEncodeError before anything is
            written when it cannot be).
        private: make the file 0600 whatever the umask; otherwise it gets 0666 less the umask.
        fsync: flush the content to the disk before the rename (for records that must survive
            a crash of the machine).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _create_temp(Path(path), private=private, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_file(
    path: Path | str, *, private: bool = False, fsync: bool = False, suffix: str = ".tmp"
) -> Iterator[Path]:
    """Yield an empty temp file beside `path`; when the block ends without an exception it replaces
    `path` atomically, and when it raises the temp file is removed and `path` left as it was.

    For content that is checked before it replaces the old file (write the temp file, load it,
    raise when it is wrong). The folder of `path` must exist.

    Args:
        path: the file to replace.
        private: make the file 0600 whatever the umask; otherwise it gets 0666 less the umask.
        fsync: flush the temp file to the disk before the rename.
        suffix: the temp file's ending, for checks that tell a format by suffix (`.yaml`).
    """
    fd, tmp = _create_temp(Path(path), private=private, suffix=suffix)
    try:
        os.close(fd)
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _create_temp(path: Path, *, private: bool, suffix: str) -> tuple[int, Path]:
    """A new, empty, uniquely named file beside `path`, open for writing: (its fd, its path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    mode = PRIVATE_MODE if private else _PUBLIC_MODE
    for _ in range(_TRIES):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(tmp, flags, mode)
        except FileExistsError:
            continue
        if private:  # exactly 0600: an odd umask (0o200) must not leave its owner unable to write it
            try:
                os.chmod(tmp, PRIVATE_MODE)
            except BaseException:
                os.close(fd)
                _remove(tmp)
                raise
        return fd, tmp
    raise FileExistsError(f"no unused temp file name beside {path} after {_TRIES} tries")


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)
