"""A version id changes whenever anything the agent is made of changes: the code it imports from the
project, the prompt bundle, the model settings, the tool definitions, and the agent's settings."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.agents import code_identity
from shipyard.config import ShipyardConfig, load_config
from shipyard.runtime import AgentVersion, Runtime

_counter = itertools.count()

AGENT = """\
from shipyard import agent
from shipyard.tools import ToolRegistry
from {pkg} import helpers
from .policy import limit
from {lib} import register

tools = ToolRegistry()
register(tools)

@agent("shop", tools=tools)
def shop(user_input, ctx):
    import {pkg}.late
    return helpers.greet(user_input) + str(limit()) + {pkg}.late.TAG
"""


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], AgentVersion]]:
    """A project whose agent lives in a package with helper modules, plus a tool library outside the
    project folder; the loader builds the current version as a fresh process would."""
    pkg = f"shoppkg{next(_counter)}"
    lib = f"{pkg}_lib"
    root = tmp_path / "project"
    (root / pkg).mkdir(parents=True)
    (root / pkg / "__init__.py").write_text("")
    (root / pkg / "agent.py").write_text(AGENT.format(pkg=pkg, lib=lib))
    (root / pkg / "helpers.py").write_text("def greet(text):\n    return 'hello ' + text\n")
    (root / pkg / "policy.py").write_text("def limit():\n    return 100\n")
    (root / pkg / "late.py").write_text("TAG = '!'\n")
    (root / pkg / "unused.py").write_text("X = 1\n")
    (root / ".venv" / "lib").mkdir(parents=True)
    libdir = tmp_path / "site"
    libdir.mkdir()
    (libdir / f"{lib}.py").write_text(
        "def register(tools):\n"
        "    @tools.tool()\n"
        "    def lookup(order_id: str) -> dict:\n"
        "        '''Find an order.'''\n"
        "        return {}\n"
    )
    (root / "rules.yaml").write_text('default: "hi"\nrules: []\n')
    bundle = root / "prompts"
    bundle.mkdir()
    (bundle / "system_prompt.txt").write_text("You help {{ company }}.\n")
    (bundle / "version.txt").write_text("1.0.0\n")
    (root / "shipyard.yaml").write_text(
        textwrap.dedent(f"""\
        models:
          scripted: {{provider: scripted, rules: rules.yaml}}
        agents:
          shop:
            entry: {pkg}.agent:shop
            prompts: prompts
            prompt_variables: {{company: Acme}}
            model: {{name: scripted}}
        """)
    )
    sys.path.insert(0, str(libdir))

    def current() -> AgentVersion:
        for name in [m for m in sys.modules if m == pkg or m.startswith((pkg + ".", lib))]:
            del sys.modules[name]  # a new process: nothing loaded yet
        cfg: ShipyardConfig = load_config(root / "shipyard.yaml")
        return Runtime(cfg).resolve_version("shop")

    current.root = root  # type: ignore[attr-defined]
    current.pkg = pkg  # type: ignore[attr-defined]
    current.lib = libdir / f"{lib}.py"  # type: ignore[attr-defined]
    yield current
    sys.path.remove(str(libdir))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_the_closure_is_the_agent_module_and_what_it_imports_from_the_project(project: Callable) -> None:
    root, pkg = project.root, project.pkg  # type: ignore[attr-defined]
    found = code_identity(root / pkg / "agent.py", f"{pkg}.agent", root)
    assert found.scope == root.resolve()
    assert set(found.files) == {
        f"{pkg}/__init__.py",
        f"{pkg}/agent.py",
        f"{pkg}/helpers.py",
        f"{pkg}/policy.py",
        f"{pkg}/late.py",  # imported inside the function
    }


GUARDRAIL = "        - {kind: tool_policy, tools: [lookup], max_calls: 2}\n"

CHANGES = {
    "a helper module it imports": ("{pkg}/helpers.py", "'hello '", "'hi '", "code"),
    "a relative import": ("{pkg}/policy.py", "100", "250", "code"),
    "an import inside a function": ("{pkg}/late.py", "'!'", "'?'", "code"),
    "the package's __init__": ("{pkg}/__init__.py", "", "# setup\n", "code"),
    "the prompt bundle": ("prompts/system_prompt.txt", "You help", "You assist", "prompts"),
    "the model settings": (
        "shipyard.yaml",
        "model: {name: scripted}",
        "model: {name: scripted, temperature: 0.3}",
        "model",
    ),
    "the scripted model's rules": ("rules.yaml", '"hi"', '"hello"', "model"),
    "the agent's settings": ("shipyard.yaml", "company: Acme", "company: Globex", "config"),
    "the agent's timeout": (
        "shipyard.yaml",
        "    prompts: prompts\n",
        "    prompts: prompts\n    timeout_s: 5\n",
        "config",
    ),
    "the agent's guardrails": (
        "shipyard.yaml",
        "    prompts: prompts\n",
        "    prompts: prompts\n    guardrails:\n      tool_call:\n" + GUARDRAIL,
        "config",
    ),
}


@pytest.mark.parametrize("what", list(CHANGES))
def test_each_part_changes_the_id(project: Callable, what: str) -> None:
    root, pkg = project.root, project.pkg  # type: ignore[attr-defined]
    before = project()
    assert project().id == before.id  # stable when nothing changed
    file, old, new, component = CHANGES[what]
    path = root / file.format(pkg=pkg)
    if old:
        _edit(path, old, new)
    else:
        path.write_text(path.read_text() + new)
    after = project()
    assert after.id != before.id
    changed = {k for k in before.components if before.components[k] != after.components[k]}
    assert changed == {component}


def test_tool_definitions_from_outside_the_project_change_the_id(project: Callable) -> None:
    before = project()
    _edit(project.lib, "order_id: str", "order_id: str, reason: str = ''")  # type: ignore[attr-defined]
    after = project()
    assert after.id != before.id
    assert after.components["tools"] != before.components["tools"]
    assert after.components["code"] == before.components["code"]  # the library is not the agent's code


def test_what_the_agent_does_not_import_leaves_the_id_alone(project: Callable) -> None:
    root, pkg = project.root, project.pkg  # type: ignore[attr-defined]
    before = project()
    (root / pkg / "unused.py").write_text("X = 2\n")
    (root / ".venv" / "lib" / "thing.py").write_text("Y = 1\n")
    (root / "notes.md").write_text("ideas\n")
    _edit(root / "shipyard.yaml", "models:\n", "models:\n  other: {provider: scripted, rules: rules.yaml}\n")
    assert project().id == before.id


def test_an_edit_the_running_process_has_not_loaded_is_not_its_version(project: Callable) -> None:
    """The id names the code that runs: until the module is imported again, an edited file on disk
    is not what this process executes."""
    root, pkg = project.root, project.pkg  # type: ignore[attr-defined]
    before = project()
    _edit(root / pkg / "helpers.py", "'hello '", "'hey '")
    cfg = load_config(root / "shipyard.yaml")
    assert Runtime(cfg).resolve_version("shop").id == before.id  # same process, same loaded code
    assert project().id != before.id  # loaded afresh


def test_a_guardrail_option_changes_the_id_and_an_empty_section_does_not(project: Callable) -> None:
    root = project.root  # type: ignore[attr-defined]
    before = project()
    _edit(root / "shipyard.yaml", "    prompts: prompts\n", "    prompts: prompts\n    guardrails: {}\n")
    assert project().id == before.id  # nothing configured: the same agent
    _edit(root / "shipyard.yaml", "    guardrails: {}\n", "    guardrails:\n      tool_call:\n" + GUARDRAIL)
    guarded = project()
    _edit(root / "shipyard.yaml", "max_calls: 2", "max_calls: 3")
    reworded = project()
    assert len({before.id, guarded.id, reworded.id}) == 3
    assert {k for k in guarded.components if guarded.components[k] != reworded.components[k]} == {"config"}
