"""A command imports what it uses, when it uses it (issue 16): `shipyard --help` loads none of the heavy
libraries, `shipyard run` on the starter loads neither numpy nor Alembic nor the OpenFeature SDK, a
store whose schema is current opens without Alembic, a command line has Typer build only the command
it names, `--help` defines no dataclass only a command's body uses, the lazy package faces still
export every public name, and the PII detectors compile a pattern only when a text gets through to it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard._lazy import read_exports

HEAVY_FOR_HELP = ("numpy", "scipy", "sqlalchemy", "alembic", "opentelemetry.sdk", "uvicorn", "aiohttp")
# what one interaction on the starter (scripted model, SQLite store) has no use for: numeric and
# HTTP stacks, the server, migrations (the schema is current), templating, the ORM and the PostgreSQL
# dialect (the store uses Core), structlog (JSON log lines), the eval plugins, and libphonenumber
# (its input has no phone-like number, and no guardrail scans it); the OpenFeature SDK (the runtime
# evaluates flags itself; only `ShipyardProvider` needs it) and the flag admin, kill switch and shared
# flag set (no flag is changed)
NOT_FOR_RUN = (
    "sqlalchemy.orm",
    "sqlalchemy.dialects.postgresql",
    "structlog",
    "phonenumbers",
    "shipyard.evals",
    "alembic",
    "numpy",
    "scipy",
    "aiohttp",
    "httpx",
    "uvicorn",
    "uvloop",
    "starlette",
    "fastapi",
    "mako",
    "redis",
    "opentelemetry.exporter",
    "shipyard.server",
    "shipyard.evals._runner",
    "openfeature",
    "shipyard.flags._provider",
    "shipyard.flags._admin",
    "shipyard.flags._killswitch",
    "shipyard.flags._shared",
    # the caches, model routing and budgets the starter has not turned on (`cache:`, `routing:`,
    # `budgets:`), and the pipeline steps of caches and budgets
    "shipyard.cache",
    "shipyard.routing",
    "shipyard.runtime._caching",
    "shipyard.runtime._budgeting",
    # the budgets themselves (the pipeline catches their errors from cost/_errors.py), the output
    # checks (the starter's agent has no output guardrails), the OpenAI client (a scripted model), the
    # flag rule engine (no flag has targeting), the SDK's span export (no exporter) and package
    # metadata's email parser (Shipyard's own entry points are known without their distribution's name)
    "shipyard.cost._budgets",
    "shipyard.guardrails._leak",
    "shipyard.llm._openai",
    "shipyard.flags._jsonlogic",
    "shipyard.flags._flagd_ops",
    "shipyard.flags._fractional",
    "mmh3",
    "opentelemetry.sdk.trace.export",
    "email.parser",
    # prompt diffs and lints (the runtime loads bundles only)
    "shipyard.prompts._diff",
    "shipyard.prompts._lint",
    # the command modules of other commands (`run` is in shipyard.cli.core)
    "shipyard.cli.evals",
    "shipyard.cli.serve",
    "shipyard.cli.demo",
    "shipyard.cli.rollout",
)
LAZY_PACKAGES = (
    "shipyard",
    "shipyard.observe",
    "shipyard.store",
    "shipyard.evals",
    "shipyard.llm",
    "shipyard.flags",
    "shipyard.cost",
    "shipyard.loop",
    "shipyard.routing",
    "shipyard.rollout",
    "shipyard.server",
    "shipyard.guardrails",
    "shipyard.prompts",
    "shipyard.runtime",
)

# Runs a command in a fresh interpreter (what a user's process imports, not this test process's) and
# prints which of the named modules it loaded, as JSON on the last line of stderr.
PROBE = """
import contextlib, io, json, sys
names = json.loads(sys.argv[1])
sys.argv = ["shipyard", *sys.argv[2:]]
from shipyard.cli import main
code = 0
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
print(json.dumps({"code": code, "loaded": [n for n in names if n in sys.modules]}), file=sys.stderr)
"""


def _probe(args: list[str], names: tuple[str, ...], cwd: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(names), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_clean_env(), "SHIPYARD_LOG_LEVEL": "error"},
    )
    assert proc.stderr.strip(), proc.stdout
    result: dict[str, object] = json.loads(proc.stderr.strip().splitlines()[-1])
    return result


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("SHIPYARD_CONFIG", "SHIPYARD_DATABASE_URL")}


@pytest.mark.parametrize("args", [["--help"], ["eval", "--help"], ["run", "--help"], ["version"]])
def test_help_and_version_import_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    result = _probe(args, HEAVY_FOR_HELP, tmp_path)
    assert result == {"code": 0, "loaded": []}


def _python(code: str, *args: str) -> str:
    """Run `code` in a fresh interpreter (`args` its sys.argv[1:]); its stdout, stripped."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    return out.stdout.strip()


def test_run_on_the_starter_imports_neither_numpy_nor_alembic(tmp_path: Path) -> None:
    assert _probe(["init", "proj"], (), tmp_path)["code"] == 0
    project = tmp_path / "proj"
    first = _probe(["run", "assistant", "What is 2 plus 3?"], ("alembic", "numpy", "scipy"), project)
    assert first == {"code": 0, "loaded": ["alembic"]}  # the first open creates the schema
    again = _probe(["run", "assistant", "What is 2 plus 3?"], NOT_FOR_RUN, project)
    assert again == {"code": 0, "loaded": []}


def test_a_command_line_builds_only_the_command_it_names() -> None:
    """Typer builds a Click command for each command `app` holds (reading each function's signature
    and annotations): while a line runs, `app` holds the command or group its first word names."""
    from shipyard.cli import app
    from shipyard.cli._app import only_command

    every = (list(app.registered_commands), list(app.registered_groups))
    assert len(every[0]) + len(every[1]) > 20
    with only_command(["run", "assistant", "What is 2 plus 3?"]):
        assert [c.callback.__name__ for c in app.registered_commands if c.callback] == ["run"]
        assert app.registered_groups == []
    with only_command(["mock-llm", "--port", "0"]):  # a name given to the command, not its function's
        assert [c.name for c in app.registered_commands] == ["mock-llm"]
    with only_command(["eval", "run", "--help"]):
        assert app.registered_commands == []
        assert [g.name for g in app.registered_groups] == ["eval"]
    for args in (["--help"], [], ["rnu", "x"]):  # an option, nothing, a typo: every command
        with only_command(args):
            assert (app.registered_commands, app.registered_groups) == every
    assert (app.registered_commands, app.registered_groups) == every


def test_each_command_module_registers_the_names_it_is_listed_with() -> None:
    """`main()` imports only the module of the command it runs (`COMMAND_MODULES`): the list must
    say what each module registers, and `shipyard.cli.app` has every command."""
    from typer import Typer

    from shipyard.cli import COMMAND_MODULES, app, modules_for

    def module_of(typer_app: Typer) -> str:
        for command in typer_app.registered_commands:
            return command.callback.__module__ if command.callback else ""
        return module_of(typer_app.registered_groups[0].typer_instance)  # type: ignore[arg-type]

    registered: dict[str, set[str]] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        name = command.name or command.callback.__name__.lower().replace("_", "-")
        registered.setdefault(command.callback.__module__, set()).add(name)
    for group in app.registered_groups:
        assert group.typer_instance is not None and isinstance(group.name, str)
        registered.setdefault(module_of(group.typer_instance), set()).add(group.name)
    listed = {f"shipyard.cli.{module}": set(names) for module, names in COMMAND_MODULES.items()}
    assert registered == listed
    assert modules_for(["run", "assistant", "hi"]) == ["core"]
    assert modules_for(["eval", "run"]) == ["evals"]
    for args in (["--help"], [], ["rnu"]):
        assert modules_for(args) == list(COMMAND_MODULES)


def test_command_functions_annotate_with_objects_not_strings() -> None:
    """Typer reads every command function's annotations to build its Click command (`--help` builds
    them all): a string annotation (`from __future__ import annotations`) is compiled and evaluated
    each time, ~9% of `--help`'s instructions for the ~70 commands."""
    import inspect
    from collections.abc import Callable, Iterator
    from typing import Any

    from typer import Typer

    from shipyard.cli import app

    def callbacks(typer_app: Typer) -> Iterator[Callable[..., Any]]:
        if typer_app.registered_callback and typer_app.registered_callback.callback:
            yield typer_app.registered_callback.callback
        for command in typer_app.registered_commands:
            if command.callback:
                yield command.callback
        for group in typer_app.registered_groups:
            if group.typer_instance:
                yield from callbacks(group.typer_instance)

    found = list(callbacks(app))
    assert len(found) > 60
    strings = {
        f"{fn.__module__}.{fn.__qualname__}: {name}"
        for fn in map(inspect.unwrap, found)
        for name, annotation in fn.__annotations__.items()
        if isinstance(annotation, str)
    }
    assert strings == set()


def test_help_defines_no_dataclass_only_a_command_body_uses(tmp_path: Path) -> None:
    """Defining a dataclass generates and compiles its methods (~3M instructions each): `--help`
    loads the closed sets without the value types (`shipyard._closed_sets`, not `shipyard.types`), and
    a command module's dataclasses live in a module its command loads when it runs."""
    import dataclasses
    import inspect

    from shipyard.cli import COMMAND_MODULES

    defined = [
        f"{module.__name__}.{name}"
        for module in (importlib.import_module(f"shipyard.cli.{m}") for m in COMMAND_MODULES)
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
    ]
    assert defined == []
    run_only = (
        "shipyard.types",
        "shipyard.cli._traffic",
        "shipyard.cli._lint_targets",
        "shipyard.cli._routing_arms",
    )
    assert _probe(["--help"], run_only, tmp_path) == {"code": 0, "loaded": []}


def test_a_mistyped_command_is_still_told_its_neighbours(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shipyard", "rnu", "assistant"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_clean_env(), "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert "No such command 'rnu'. Did you mean 'run'?" in proc.stderr


def test_opening_a_current_store_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code = (
        "import sys\nfrom shipyard.store import Store\n"
        f"Store({url!r}).close()\nassert 'alembic' in sys.modules\n"  # creating the schema uses it
    )
    _python(code)
    again = (
        "import sys\nfrom shipyard.store import Store\n"
        f"s = Store({url!r})\nassert s.migrate() is False\ns.close()\nprint('alembic' in sys.modules)\n"
    )
    out = _python(again)
    assert out == "False"


def test_the_runtime_face_loads_its_parts_on_first_use() -> None:
    code = (
        "import sys\nimport shipyard.runtime as rt\n"
        "before = sorted(m for m in sys.modules if m.startswith('shipyard.runtime.'))\n"
        "rt.Runtime\nprint(before, 'shipyard.runtime._runtime' in sys.modules)\n"
    )
    out = _python(code)
    assert out == "[] True"


def test_the_scripted_rules_lists_default_to_new_empty_lists() -> None:
    """Their factory is `empty_list` (pydantic reads a factory's signature, and `list`'s is parsed
    from text): the defaults are as `list` gives them, a new list each."""
    from shipyard.llm._scripted import Rule, Rules, When

    first, second = Rule(reply="x"), Rule(reply="y")
    assert first.tool_calls == [] and first.tool_calls is not second.tool_calls
    assert (first.when.called, first.when.not_called, first.when.tools_available) == ([], [], [])
    assert Rules().rules == [] and Rules().rules is not Rules().rules
    assert When().called is not When().called


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_faces_export_every_public_name(package: str) -> None:
    module = importlib.import_module(package)
    exported = set(module.__all__) - {"__version__"}
    missing = [name for name in sorted(exported) if getattr(module, name, None) is None]
    assert missing == []
    assert exported <= set(dir(module))
    if package != "shipyard":  # the root face is three names, written out
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        assert set(read_exports(package, source)) == exported  # __all__ and the imports agree


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import shipyard.observe

    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = shipyard.observe.not_a_name  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = shipyard.nope


def test_read_exports_reads_the_type_checking_imports_only() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "from pkg._eager import kept\n"
        "if TYPE_CHECKING:\n"
        "    from pkg._a import A, b as renamed\n"
        "    from . import _sub as sub\n"
        "    from ._c import C\n"
        "    import json as js\n"
        "if typing.TYPE_CHECKING:\n"
        "    from pkg import _d as d\n"
    )
    assert read_exports("pkg", source) == {
        "A": ("pkg._a", "A"),
        "renamed": ("pkg._a", "b"),
        "sub": ("pkg._sub", None),
        "C": ("pkg._c", "C"),
        "js": ("json", None),
        "d": ("pkg._d", None),
    }
    with pytest.raises(ValueError, match="import json as name"):
        read_exports("pkg", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import json\n")


def test_a_lazy_pattern_compiles_on_first_use_and_acts_as_the_compiled_one() -> None:
    import re

    from shipyard._lazy import lazy_re

    lazy = lazy_re(r"(\d+)-(\d+)", re.I)
    assert "search" not in vars(lazy)  # nothing compiled yet
    compiled = re.compile(r"(\d+)-(\d+)", re.I)
    text = "from 10-20 to 30-40"
    assert lazy.search(text).group(2) == compiled.search(text).group(2) == "20"  # type: ignore[union-attr]
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in compiled.finditer(text)]
    assert lazy.sub(r"\2-\1", text) == "from 20-10 to 40-30"
    assert (lazy.pattern, lazy.flags, lazy.groups) == (compiled.pattern, compiled.flags, compiled.groups)
    assert "search" in vars(lazy)  # compiled once: from now on the compiled pattern's own methods


# Which of the street-address patterns (and the pattern gating the Spanish/Italian/Portuguese kind) a
# process compiled after masking the texts given in argv: the PII detectors compile on first use, per kind.
ADDRESS_PROBE = """
import json, sys
from shipyard.guardrails import find_pii
from shipyard.guardrails._pii import _ADDRESS_PARTS, _ADDRESS_PATTERNS
for text in sys.argv[1:]:
    find_pii(text)
kinds = ["english", "flat", "german", "french", "romance", "india", "japan"]
compiled = [kind for kind, (_, pattern) in zip(kinds, _ADDRESS_PATTERNS) if "search" in vars(pattern)]
print(json.dumps(compiled))
"""


@pytest.mark.parametrize(
    ("texts", "compiled"),
    [
        (["What is 2 plus 3?", "The answer is 5.0."], []),
        (["Ship it to 12 Main Street, Boston, MA 02110"], ["english"]),
        (["Vivo en Calle de Alcalá 42, Madrid", "Flat 6, Claire Plaza"], ["english", "flat", "romance"]),
        (["Meine Adresse: Hauptstraße 5"], ["german"]),
    ],
)
def test_pii_patterns_compile_only_for_the_kinds_a_text_may_hold(
    texts: list[str], compiled: list[str]
) -> None:
    out = _python(ADDRESS_PROBE, *texts)
    assert json.loads(out.splitlines()[-1]) == compiled
