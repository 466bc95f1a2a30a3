"""Make a folder look like an installed package: its files plus a `*.dist-info` with METADATA and
the `entry_points.txt` its pyproject.toml declares (what pip writes), so `importlib.metadata` finds
its entry points once the folder is on sys.path."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path


def install(site: Path, package: Path) -> Path:
    """Install the package whose pyproject.toml is in `package` into `site` (a folder put on sys.path):
    copy its modules, write its dist-info. Returns `site`."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    site.mkdir(parents=True, exist_ok=True)
    for src in package.rglob("*.py"):
        dest = site / src.relative_to(package)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(src.read_text())
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in entries.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    return site


def write_package(
    root: Path, name: str, entry_points: dict[str, dict[str, str]], files: dict[str, str]
) -> Path:
    """A package folder: pyproject.toml declaring `entry_points` (group -> name -> target) and `files`."""
    root.mkdir(parents=True, exist_ok=True)
    eps = "".join(
        f'\n[project.entry-points."{group}"]\n' + "".join(f'{k} = "{v}"\n' for k, v in entries.items())
        for group, entries in entry_points.items()
    )
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "1.0"\n{eps}')
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def env_with_path(*folders: Path) -> dict[str, str]:
    """The environment for a subprocess that sees `folders` first on sys.path (no database URL)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SHIPYARD_DATABASE_URL", "SHIPYARD_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join(str(f) for f in folders)
    return env


PYTHON = sys.executable
