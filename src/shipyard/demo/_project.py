"""The packaged demo project folder and copying it into a work folder."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from shipyard.errors import ShipyardError


def project_dir() -> Path:
    """The packaged demo project folder (shipyard.yaml, prompts/, rules/)."""
    return Path(str(resources.files("shipyard.demo") / "project"))


def _files(root: Path) -> list[Path]:
    return sorted(
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )


def copy_project(dest: Path | str, *, overwrite: bool = True) -> Path:
    """Copy the demo project into `dest` (created if needed) and return `dest`.

    Args:
        dest: the work folder.
        overwrite: replace files of an earlier copy (the default). When False, refuse to touch a
            folder that already holds any of the project's files.
    Raises ShipyardError when `dest` is a file, or (overwrite=False) when files would be replaced."""
    src = project_dir()
    out = Path(dest)
    if out.exists() and not out.is_dir():
        raise ShipyardError(
            f"{out} is a file, not a folder", hint="choose another folder for the demo project"
        )
    files = _files(src)
    if not overwrite:
        clash = [str(f) for f in files if (out / f).exists()]
        if clash:
            shown = ", ".join(clash[:5]) + (f" and {len(clash) - 5} more" if len(clash) > 5 else "")
            raise ShipyardError(
                f"{out} already has files of the demo project: {shown}",
                hint="choose an empty folder, or remove those files first",
            )
    for f in files:
        target = out / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / f, target)
    return out
