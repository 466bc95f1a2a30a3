"""shipyard.plugins: a Registry, names taken twice, and entry points loaded once, lazily, with every
failing plugin reported by name. Each test loads its own entry-point group from packages installed
into a folder on sys.path (a dist-info with entry_points.txt, as pip writes it)."""

from __future__ import annotations

import importlib
import logging
import sys
import uuid
from pathlib import Path

import pytest
from plugin_dist import install, write_package

from shipyard.errors import NotFoundError
from shipyard.plugins import (
    PluginConflictError,
    Registry,
    UnknownPluginError,
    loaded_plugins,
    plugin_failures,
)


@pytest.fixture
def group() -> str:
    """An entry-point group of this test alone (its loader starts fresh)."""
    return f"shipyard.test-{uuid.uuid4().hex[:10]}"


def _widget() -> str:
    return "widget"


def _gadget() -> str:
    return "gadget"


def test_register_get_names_and_an_unknown_name(group: str) -> None:
    reg: Registry[object] = Registry("widget", group=group)

    @reg.register("b")
    def b() -> None: ...

    reg.add("a", _widget)
    assert reg.get("a") is _widget and reg.get("b") is b
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and "a" in reg and "z" not in reg
    with pytest.raises(UnknownPluginError) as info:
        reg.get("z")
    assert str(info.value) == "unknown widget 'z' (known: a, b)"
    # a user's error (clean CLI message) and a ValueError (a config validator reports it with its line)
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="needs a non-empty name"):
        reg.add("", _widget)


def test_a_taken_name_needs_override(group: str) -> None:
    reg: Registry[object] = Registry("widget", group=group)
    reg.add("w", _widget)
    with pytest.raises(PluginConflictError) as info:
        reg.add("w", _gadget)
    msg = str(info.value)
    assert "widget 'w' is already registered by" in msg and "override=True" in msg
    assert reg.get("w") is _widget  # the first one stays

    reg.add("w", _widget)  # the same object again: nothing changes
    reg.add("w", _gadget, override=True)  # on purpose
    assert reg.get("w") is _gadget


def test_a_function_defined_again_by_its_module_replaces_itself(group: str) -> None:
    reg: Registry[object] = Registry("widget", group=group)
    made = []
    for _ in range(2):  # the same module and qualified name: a module reloaded, a test run again

        def f() -> None: ...

        made.append(f)
        reg.add("f", f)
    assert made[0] is not made[1] and reg.get("f") is made[1]


REGISTRY = """\
from shipyard.plugins import Registry
WIDGETS = Registry("widget", group={group!r})
"""

PLUGIN_GOOD = """\
from registry_{tag} import WIDGETS
WIDGETS.add("good", len)
"""

PLUGIN_CALLABLE = """\
from registry_{tag} import WIDGETS
CALLS = []
def register():
    CALLS.append(1)
    WIDGETS.add("called", abs)
"""

PLUGIN_THIEF = """\
from registry_{tag} import WIDGETS
WIDGETS.add("builtin", max)
"""

PLUGIN_OVERRIDER = """\
from registry_{tag} import WIDGETS
WIDGETS.add("special", min, override=True)
"""


def _install_plugins(tmp_path: Path, group: str) -> Path:
    site = tmp_path / "site"
    tag = group.rsplit("-", 1)[1]
    packages = {
        "good": {"mod": f"good_{tag}", "target": f"good_{tag}", "text": PLUGIN_GOOD},
        "called": {"mod": f"called_{tag}", "target": f"called_{tag}:register", "text": PLUGIN_CALLABLE},
        "broken": {"mod": f"broken_{tag}", "target": f"broken_{tag}", "text": "raise RuntimeError('boom')\n"},
        "missing": {"mod": f"missing_{tag}", "target": f"nowhere_{tag}.nothing", "text": ""},
        "thief": {"mod": f"thief_{tag}", "target": f"thief_{tag}", "text": PLUGIN_THIEF},
        "overrider": {"mod": f"overrider_{tag}", "target": f"overrider_{tag}", "text": PLUGIN_OVERRIDER},
    }
    for name, p in packages.items():
        pkg = write_package(
            tmp_path / "src" / name,
            f"{name}-plugin",
            {group: {name: p["target"]}},
            {f"{p['mod']}.py": p["text"].format(tag=tag)},
        )
        install(site, pkg)
    (site / f"registry_{tag}.py").write_text(REGISTRY.format(group=group))
    return site


def test_entry_points_load_once_on_first_lookup_and_failures_are_reported(
    tmp_path: Path, group: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    site = _install_plugins(tmp_path, group)
    monkeypatch.syspath_prepend(str(site))
    tag = group.rsplit("-", 1)[1]
    reg: Registry[object] = importlib.import_module(f"registry_{tag}").WIDGETS
    reg.add("builtin", sum)  # taken before any plugin loads, as a built-in is
    reg.add("special", sorted)
    assert f"good_{tag}" not in sys.modules  # nothing loaded yet: importing Shipyard stays cheap

    with caplog.at_level(logging.WARNING, logger="shipyard.plugins"):
        names = reg.names()  # the first lookup loads every plugin of the group
    assert names == ["builtin", "called", "good", "special"]
    assert reg.get("builtin") is sum  # the thief could not take a built-in's name...
    assert reg.get("special") is min  # ...the overrider said override=True
    assert reg.origin("good") == "good (good-plugin 1.0)"
    assert [p.name for p in loaded_plugins(group)] == ["called", "good", "overrider"]

    failures = {f.name: f for f in plugin_failures(group)}
    assert set(failures) == {"broken", "missing", "thief"}
    assert failures["broken"].error == "RuntimeError: boom"
    assert failures["broken"].source == "broken-plugin 1.0" and failures["broken"].target == f"broken_{tag}"
    assert failures["missing"].error.startswith("ModuleNotFoundError")
    assert (
        "PluginConflictError" in failures["thief"].error and "already registered" in failures["thief"].error
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert all(f"plugin {n!r} ({n}-plugin 1.0" in logged for n in failures)  # never a silent skip

    # the error for a name nobody registered quotes the plugins that failed (one may have been it)
    with pytest.raises(UnknownPluginError) as info:
        reg.get("nope")
    assert "unknown widget 'nope' (known: builtin, called, good, special)" in str(info.value)
    assert "plugin 'broken' (broken-plugin 1.0" in str(info.value) and "RuntimeError: boom" in str(info.value)

    # loaded once: later lookups (and other registries of the group) import nothing again
    other: Registry[object] = Registry("gizmo", group=group)
    assert other.names() == [] and reg.names() == names
    assert sys.modules[f"called_{tag}"].CALLS == [1]
