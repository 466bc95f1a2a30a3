"""Import an agent from its entry point (`package.module:function`), or the tools a model-as-agent
adapter is given (`package.module:registry`), with errors that say why not."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from typing import Any

from shipyard.agents._contract import AgentSpec, spec_for
from shipyard.errors import EntryPointError
from shipyard.types import ToolSet

_HINT = "`entry:` and `tools:` name a `module:attribute` importable from the project folder (where shipyard.yaml is)"


def _import_failure(module: str, e: BaseException, setting: str) -> EntryPointError:
    """Why `module` (named by the `setting:` of shipyard.yaml, `entry` or `tools`) did not import."""
    if isinstance(e, SyntaxError):
        return EntryPointError(
            f"cannot import module {module!r}: syntax error in {e.filename}, line {e.lineno}: {e.msg}",
            hint="fix the syntax error (python -m py_compile FILE shows it too)",
        )
    if (
        isinstance(e, ModuleNotFoundError)
        and e.name
        and (module == e.name or module.startswith(e.name + "."))
    ):
        return EntryPointError(
            f"cannot import module {module!r}: no module named {e.name!r}",
            hint=f"check the module name in `{setting}:`; {_HINT}",
        )
    if isinstance(e, ModuleNotFoundError):
        return EntryPointError(
            f"cannot import module {module!r}: it imports {e.name!r}, which is not installed",
            hint=f"install the package that provides {e.name!r} in this environment",
        )
    frames = traceback.extract_tb(e.__traceback__)
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return EntryPointError(
        f"cannot import module {module!r}: importing it raised {type(e).__name__}: {e}{where}",
        hint="run `python -c 'import " + module + "'` in the project folder to see the full error",
    )


def _forget_if_from_elsewhere(module_name: str, folder: Path) -> None:
    """A module of the same name imported earlier from another project folder must not stand in
    for this project's own file (one process can load several projects: tests, the server)."""
    module = sys.modules.get(module_name)
    own = folder.joinpath(*module_name.split("."))
    if module is None or not (own.with_suffix(".py").is_file() or (own / "__init__.py").is_file()):
        return
    current = getattr(module, "__file__", None)
    if current is None or not Path(current).resolve().is_relative_to(folder):
        for name in [m for m in sys.modules if m == module_name or m.startswith(module_name + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def load_entry(entry: str, *, root: Path | str | None = None) -> AgentSpec:
    """Import the agent function `entry` (`package.module:function`) and return its spec.

    Args:
        entry: `module:function`, as in shipyard.yaml.
        root: the folder to import from (the project folder); put first on sys.path. Defaults
            to the current folder.

    Raises EntryPointError saying which module and why: not found, a syntax error (file and
    line), an error while importing, no such attribute, or not callable."""
    fn = _import_object(entry, root, setting="entry", expects="the agent function")
    if not callable(fn):
        raise EntryPointError(
            f"{entry} is a {type(fn).__name__}, not a function",
            hint="point `entry:` at the agent function, the one decorated with @agent",
        )
    attr = entry.partition(":")[2]
    return spec_for(fn, attr)


def load_tools(ref: str, *, root: Path | str | None = None) -> ToolSet:
    """Import the tools `ref` (`package.module:attribute`) names: a `shipyard.tools.ToolRegistry`,
    or anything with `names()`, `definitions()` and `call(name, arguments)`.

    Raises EntryPointError saying which module and why, or what the attribute is instead."""
    found = _import_object(ref, root, setting="tools", expects="the tool registry")
    if not all(callable(getattr(found, m, None)) for m in ("names", "definitions", "call")):
        raise EntryPointError(
            f"{ref} is a {type(found).__name__}, not a set of tools",
            hint="point `tools:` at a shipyard.tools.ToolRegistry (tools = ToolRegistry() in your module)",
        )
    tools: ToolSet = found
    return tools


def _import_object(ref: str, root: Path | str | None, *, setting: str, expects: str) -> Any:
    """The object `ref` (`module:attribute`) names, imported from `root` (put first on sys.path)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        form = "package.module:function" if setting == "entry" else "package.module:attribute"
        raise EntryPointError(f"{setting} {ref!r} is not of the form {form!r}", hint=_HINT)
    folder = str(Path(root).resolve() if root is not None else Path.cwd())
    if not sys.path or sys.path[0] != folder:
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
    _forget_if_from_elsewhere(module_name, Path(folder))
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any import-time failure is the user's code, reported, not raised
        raise _import_failure(module_name, e, setting) from None
    where = getattr(module, "__file__", None) or module_name
    try:
        return getattr(module, attr)
    except AttributeError:
        agents = sorted(k for k, v in vars(module).items() if hasattr(v, "__shipyard_agent__"))
        found = f" (agents defined there: {', '.join(agents)})" if agents and setting == "entry" else ""
        raise EntryPointError(
            f"module {module_name!r} ({where}) has no attribute {attr!r}{found}",
            hint=f"check the name after ':' in `{setting}:` ({expects})",
        ) from None
