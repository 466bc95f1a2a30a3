"""shipyard._atomic: a file is replaced whole or not at all, with the mode its caller asked for, and no
temp file is ever left behind."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard._atomic import atomic_file, atomic_write


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask: a plain `open` makes 0644 files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fsync", [False, True])
def test_text_and_bytes_are_written_whole_and_replace_the_old_file(tmp_path: Path, fsync: bool) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, '{"a": "é"}\n', fsync=fsync)
    assert path.read_bytes() == '{"a": "é"}\n'.encode()
    atomic_write(path, b"\x00\x01binary", fsync=fsync)
    assert path.read_bytes() == b"\x00\x01binary"
    assert _names(tmp_path) == ["state.json"]


def test_private_files_are_0600_and_others_get_opens_mode(tmp_path: Path, umask_022: None) -> None:
    public, private = tmp_path / "report.json", tmp_path / "checkpoint"
    atomic_write(public, "{}")
    atomic_write(private, "42", private=True)
    assert _mode(public) == 0o644
    assert _mode(private) == 0o600
    public.chmod(0o644)
    atomic_write(public, "17", private=True)  # replacing a looser file makes it private
    assert _mode(public) == 0o600 and public.read_text() == "17"


def test_a_private_file_stays_writable_by_its_owner_under_an_odd_umask(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        atomic_write(tmp_path / "a", "x", private=True)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == 0o600


def test_data_that_cannot_be_encoded_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write(path, "half \ud800 a surrogate", private=True)
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["flags.json"]


def test_a_failed_rename_removes_the_temp_file(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "inside").write_text("kept")
    with pytest.raises(OSError):  # a file cannot replace a folder that is not empty
        atomic_write(folder, "data")
    assert _names(tmp_path) == ["taken"] and _names(folder) == ["inside"]


def test_a_missing_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "no" / "such.json", "{}")
    assert _names(tmp_path) == []


def test_a_check_that_raises_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "regression.yaml"
    path.write_text("cases: [old]\n")
    seen: list[Path] = []
    with (
        pytest.raises(ValueError, match="not a suite"),
        atomic_file(path, private=True, suffix=".yaml") as tmp,
    ):
        seen.append(tmp)
        tmp.write_text("cases: [new, broken\n")
        assert tmp.parent == tmp_path and tmp.suffix == ".yaml" and tmp != path
        raise ValueError("not a suite")
    assert path.read_text() == "cases: [old]\n"
    assert not seen[0].exists()
    assert _names(tmp_path) == ["regression.yaml"]


def test_a_checked_file_replaces_the_old_one_when_the_check_passes(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "regression.yaml"
    path.write_text("cases: [old]\n")
    path.chmod(0o644)
    with atomic_file(path, private=True, fsync=True, suffix=".yaml") as tmp:
        assert _mode(tmp) == 0o600 and tmp.read_text() == ""  # a fresh, empty, private file
        tmp.write_text("cases: [old, new]\n")
    assert path.read_text() == "cases: [old, new]\n" and _mode(path) == 0o600
    with atomic_file(tmp_path / "public.yaml") as tmp:
        tmp.write_text("a: 1\n")
    assert _mode(tmp_path / "public.yaml") == 0o644
    assert _names(tmp_path) == ["public.yaml", "regression.yaml"]


def test_concurrent_writers_never_share_a_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    payloads = [bytes([65 + n]) * 200_000 for n in range(6)]  # large, so writes overlap
    start = threading.Barrier(len(payloads))
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        start.wait()
        try:
            for _ in range(20):
                atomic_write(path, data)
                assert path.read_bytes() in payloads  # every reader sees one whole file
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_bytes() in payloads
    assert _names(tmp_path) == ["shared.json"]
