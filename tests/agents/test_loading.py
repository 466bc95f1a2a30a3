"""Entry points: importing `module:function`, and errors that say which module and why."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.agents import AgentSpec, load_entry
from shipyard.errors import EntryPointError

_ids = itertools.count()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("entrymod_"):
            del sys.modules[name]


def module(root: Path, source: str) -> str:
    name = f"entrymod_{next(_ids)}"
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(source)
    return name


def test_loads_a_decorated_agent_and_a_plain_function(tmp_path: Path) -> None:
    name = module(
        tmp_path,
        (
            "from shipyard import agent\n"
            "@agent('helper')\nasync def helper(user_input, ctx):\n    return 'hi'\n"
            "def plain(user_input, ctx):\n    return 'plain'\n"
        ),
    )
    spec = load_entry(f"{name}:helper", root=tmp_path)
    assert isinstance(spec, AgentSpec) and spec.name == "helper" and spec.is_async
    plain = load_entry(f"{name}:plain", root=tmp_path)
    assert plain.name == "plain" and not plain.is_async


def test_missing_module(tmp_path: Path) -> None:
    with pytest.raises(EntryPointError) as e:
        load_entry("entrymod_absent.sub:fn", root=tmp_path)
    assert "cannot import module 'entrymod_absent.sub': no module named 'entrymod_absent'" in e.value.message
    assert e.value.hint and "entry" in e.value.hint


def test_module_importing_a_missing_package(tmp_path: Path) -> None:
    name = module(tmp_path, "import definitely_not_installed_pkg\n")
    with pytest.raises(
        EntryPointError, match="imports 'definitely_not_installed_pkg', which is not installed"
    ):
        load_entry(f"{name}:fn", root=tmp_path)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    name = module(tmp_path, "x = 1\ndef broken(:\n    pass\n")
    with pytest.raises(EntryPointError) as e:
        load_entry(f"{name}:broken", root=tmp_path)
    assert f"syntax error in {tmp_path / name}.py, line 2" in e.value.message


def test_error_raised_while_importing(tmp_path: Path) -> None:
    name = module(tmp_path, "x = 1\nraise RuntimeError('no database')\n")
    with pytest.raises(EntryPointError) as e:
        load_entry(f"{name}:fn", root=tmp_path)
    assert "raised RuntimeError: no database" in e.value.message and "line 2" in e.value.message


def test_missing_attribute_lists_the_agents_there(tmp_path: Path) -> None:
    name = module(tmp_path, "from shipyard import agent\n@agent('a')\ndef support(u, c):\n    return u\n")
    with pytest.raises(EntryPointError) as e:
        load_entry(f"{name}:suport", root=tmp_path)
    assert f"module '{name}'" in e.value.message and "no attribute 'suport'" in e.value.message
    assert "agents defined there: support" in e.value.message


def test_not_callable(tmp_path: Path) -> None:
    name = module(tmp_path, "support = 'a string'\n")
    with pytest.raises(EntryPointError, match="is a str, not a function"):
        load_entry(f"{name}:support", root=tmp_path)


def test_malformed_entry() -> None:
    for bad in ("nocolon", ":fn", "mod:"):
        with pytest.raises(EntryPointError, match="is not of the form"):
            load_entry(bad)
