"""A registry that names its built-in entry point (`Registry(..., builtin="llm")`) loads only that one
while no third-party plugin is installed, so a command pays for the kinds it uses (issue 16); with a
third-party plugin installed, its first lookup loads everything, built-ins first, as before."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import EntryPoint
from pathlib import Path

from plugin_dist import PYTHON, env_with_path, install, write_package
from pytest import MonkeyPatch

PROBE = """
import json, sys
from shipyard import plugins
from shipyard.config import ADAPTERS, GUARDRAIL_KINDS, PROVIDERS
from shipyard.store._backends import STORE_BACKENDS

def state():
    return {
        "evals": "shipyard.evals._plugins" in sys.modules,
        "loaded": sorted(p.name for p in plugins._loader(plugins.GROUP).loaded),
    }

out = {}
PROVIDERS.get("scripted")
"sqlite" in STORE_BACKENDS
ADAPTERS.names()
GUARDRAIL_KINDS.get("pii")
out["after the runtime's kinds"] = state()
from shipyard.evals import SCORERS
out["has contains"] = "contains" in SCORERS
out["after a scorer"] = state()
out["every plugin"] = sorted(p.name for p in plugins.loaded_plugins())
out["failures"] = [str(f) for f in plugins.plugin_failures()]
print(json.dumps(out))
"""

THIRD_PARTY = """\
from shipyard.config import PROVIDERS

PROVIDERS.add("scripted-too", PROVIDERS.get("scripted"))
"""


def _probe(*path: Path) -> dict[str, object]:
    done = subprocess.run(
        [PYTHON, "-c", PROBE], env=env_with_path(*path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_third_party_plugins_a_lookup_loads_its_own_builtin_only(tmp_path: Path) -> None:
    out = _probe(tmp_path)
    assert out["after the runtime's kinds"] == {
        "evals": False,
        "loaded": ["agents", "guardrails", "llm", "store"],
    }
    # a registry that names no built-in (the scorers) loads what is left
    assert out["has contains"] is True
    assert out["after a scorer"] == {
        "evals": True,
        "loaded": ["agents", "evals", "guardrails", "llm", "store"],
    }
    assert out["every plugin"] == ["agents", "evals", "guardrails", "llm", "store"]
    assert out["failures"] == []


def test_with_a_third_party_plugin_the_first_lookup_loads_everything(tmp_path: Path) -> None:
    package = write_package(
        tmp_path / "pkg",
        "scripted-too",
        {"shipyard.plugins": {"scripted_too": "scripted_too"}},
        {"scripted_too.py": THIRD_PARTY},
    )
    site = install(tmp_path / "site", package)
    out = _probe(site)
    # it may register into any registry, so every built-in loads first, then it
    assert out["after the runtime's kinds"] == {
        "evals": True,
        "loaded": ["agents", "evals", "guardrails", "llm", "scripted_too", "store"],
    }
    assert out["failures"] == []


def _discover_counting_names(monkeypatch: MonkeyPatch) -> tuple[list[EntryPoint], list[str | None]]:
    """A fresh discovery's third-party entry points, and the distribution names it read."""
    from shipyard import plugins

    read: list[str | None] = []
    real = plugins._dist_name

    def counted(ep: EntryPoint) -> str | None:
        read.append(real(ep))
        return read[-1]

    monkeypatch.setattr(plugins, "_dist_name", counted)
    builtins, others = plugins._Loader(plugins.GROUP)._discover()
    assert {ep.name for ep in builtins} >= {"agents", "evals", "guardrails", "llm", "store"}
    return others, read


def test_discovery_reads_each_distributions_name_once(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    """Telling Shipyard's own entry points from others reads each one's distribution name, which
    parses that distribution's whole METADATA (Shipyard's carries its README): once per distribution,
    not once per entry point (Shipyard declares five, a plugin may declare several), and never
    Shipyard's own: the entry points its installed metadata declares are known to be its own."""
    package = write_package(
        tmp_path / "pkg",
        "two-plugins",
        {"shipyard.plugins": {"first": "two_plugins_a", "second": "two_plugins_b"}},
        {"two_plugins_a.py": "", "two_plugins_b.py": ""},
    )
    monkeypatch.syspath_prepend(str(install(tmp_path / "site", package)))
    others, read = _discover_counting_names(monkeypatch)
    assert [(ep.name, ep.value) for ep in others] == [("first", "two_plugins_a"), ("second", "two_plugins_b")]
    assert read == ["two-plugins"]


def test_a_copy_of_a_builtin_entry_point_is_told_apart_by_its_distribution(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    """Another distribution declaring the very entry point Shipyard declares (`llm`, the same
    target) is a third-party plugin all the same: the distribution names decide."""
    package = write_package(
        tmp_path / "pkg", "llm-copy", {"shipyard.plugins": {"llm": "shipyard.llm._providers"}}, {}
    )
    monkeypatch.syspath_prepend(str(install(tmp_path / "site", package)))
    others, read = _discover_counting_names(monkeypatch)
    assert [(ep.name, ep.value) for ep in others] == [("llm", "shipyard.llm._providers")]
    assert sorted(read, key=str) == ["llm-copy", "shipyard"]
