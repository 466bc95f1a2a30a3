"""Shipyard's built-ins load through the `shipyard.plugins` entry points its pyproject.toml declares:
from the installed metadata (this editable install), from the source tree's pyproject.toml when there
is no metadata (or it is stale), and never silently not at all."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
from plugin_dist import PYTHON, env_with_path

from shipyard import plugins
from shipyard.config import ADAPTERS, GUARDRAIL_KINDS, PROVIDERS
from shipyard.evals import IMPORTERS, REPORT_FORMATS, SCORERS

ROOT = Path(__file__).resolve().parents[2]
SITE_PACKAGES = Path(distribution("pydantic").locate_file(""))

PROBE = """
from shipyard import plugins
from shipyard.config import PROVIDERS
from shipyard.evals import SCORERS
print("providers", PROVIDERS.names())
print("has contains", "contains" in SCORERS)
print("from", plugins.builtins_source())
print("failures", plugins.plugin_failures())
"""


def declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entries: dict[str, str] = project["entry-points"][plugins.GROUP]
    return entries


def test_the_installed_metadata_declares_what_pyproject_declares() -> None:
    installed = {
        ep.name: ep.value for ep in distribution("shipyard").entry_points if ep.group == plugins.GROUP
    }
    assert installed == declared(), "stale metadata: run `pip install -e .`"
    assert plugins.builtins_source() == "package metadata"
    assert {p.name for p in plugins.loaded_plugins()} >= set(declared())
    assert plugins.plugin_failures() == []


def test_every_kind_has_its_builtins() -> None:
    assert {"openai", "scripted"} <= set(PROVIDERS.names())
    assert {"http", "openai_chat"} <= set(ADAPTERS.names())
    assert {"contains", "trajectory", "must_not_call", "llm_judge", "python"} <= set(SCORERS.names())
    assert {"shipyard", "promptfoo", "adk", "jsonl"} <= set(IMPORTERS.names())
    assert {"terminal", "json", "junit", "html", "markdown"} <= set(REPORT_FORMATS.names())
    assert GUARDRAIL_KINDS.names()  # the guardrails package registers its kinds the same way
    assert PROVIDERS.origin("openai") == "llm (shipyard)"


def _site_without_shipyard(tmp_path: Path, stale_metadata: bool = False) -> Path:
    """The venv's packages, less Shipyard's own metadata and its editable-install path hook."""
    site = tmp_path / "site"
    site.mkdir()
    for entry in SITE_PACKAGES.iterdir():
        if entry.name.startswith(("shipyard-", "shipyard.", "__editable__")) or entry.suffix == ".pth":
            continue
        (site / entry.name).symlink_to(entry)
    if stale_metadata:  # an install made before some entry points were declared
        info = site / "shipyard-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shipyard\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\nllm = shipyard.llm._providers\n")
    return site


def _checkout(tmp_path: Path, *, with_pyproject: bool) -> Path:
    """A copy of the source tree (src layout), with or without its pyproject.toml."""
    tree = tmp_path / "checkout"
    shutil.copytree(
        ROOT / "src" / "shipyard", tree / "src" / "shipyard", ignore=shutil.ignore_patterns("__pycache__")
    )
    if with_pyproject:
        shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree / "src"


def _run(args: list[str], *path: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # -S: no site-packages, no .pth files; the folders given are all there is
    return subprocess.run(
        [PYTHON, "-S", *args], env=env_with_path(*path), cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_from_a_source_tree_without_metadata_the_builtins_come_from_pyproject(tmp_path: Path) -> None:
    src = _checkout(tmp_path, with_pyproject=True)
    done = _run(["-c", PROBE], _site_without_shipyard(tmp_path), src)
    assert done.returncode == 0, done.stderr
    assert "providers ['openai', 'scripted']" in done.stdout and "has contains True" in done.stdout
    assert f"from pyproject.toml {src.parent / 'pyproject.toml'}" in done.stdout
    assert "failures []" in done.stdout and "stale" not in done.stderr


def test_stale_metadata_is_said_and_the_source_tree_wins(tmp_path: Path) -> None:
    src = _checkout(tmp_path, with_pyproject=True)
    done = _run(["-c", PROBE], _site_without_shipyard(tmp_path, stale_metadata=True), src)
    assert done.returncode == 0, done.stderr
    assert "has contains True" in done.stdout  # the evals entry point the stale metadata lacks
    assert "metadata is stale" in done.stderr and "pip install -e ." in done.stderr


@pytest.mark.parametrize("where", ["python", "cli"])
def test_with_neither_metadata_nor_pyproject_every_lookup_fails_loudly(tmp_path: Path, where: str) -> None:
    src = _checkout(tmp_path, with_pyproject=False)
    site = _site_without_shipyard(tmp_path)
    if where == "python":
        done = _run(["-c", "from shipyard.config import PROVIDERS; PROVIDERS.get('openai')"], site, src)
        assert done.returncode == 1 and "PluginError" in done.stderr
    else:  # a command that loads a config: a clean message, exit 2, no traceback
        project = tmp_path / "project"
        project.mkdir()
        (project / "shipyard.yaml").write_text("models:\n  m: {provider: scripted, rules: r.yaml}\n")
        done = _run(["-m", "shipyard", "versions"], site, src, cwd=project)
        assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout, done.stderr
    text = done.stderr + done.stdout
    assert "built-in plugins ('shipyard.plugins' entry points) are not declared" in text
    assert "pip install -e ." in text
