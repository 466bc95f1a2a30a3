"""Lazy public faces (PEP 562): a package's `__init__.py` names what it exports once, as imports under
`if TYPE_CHECKING:` (what readers and mypy see), and loads each name's module on first use.

    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        from shipyard.observe._kpis import KpiWindow
        from shipyard.observe import _semconv as semconv

    __all__ = ["KpiWindow", "semconv"]

    if not TYPE_CHECKING:  # mypy sees no __getattr__, so a misspelt import is still an error
        from shipyard._lazy import lazy_exports

        __getattr__, __dir__ = lazy_exports(__name__, __file__)

Why: `import shipyard.observe` used to import numpy, SQLAlchemy, alembic and the OpenTelemetry SDK
for every command, `--help` included. The import block is read (with `ast`) on the first lookup of
a name that is not loaded yet, so the list of exports stays in one place."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Callable
from importlib.util import resolve_name
from typing import Any, cast

# exported name -> (module to import, attribute of it, or None for the module itself)
Table = dict[str, tuple[str, str | None]]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def read_exports(package: str, source: str) -> Table:
    """The names bound by the imports under the module-level `if TYPE_CHECKING:` blocks of `source`."""
    table: Table = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom):
                module = resolve_name("." * stmt.level + (stmt.module or ""), package)
                for alias in stmt.names:
                    name = alias.asname or alias.name
                    if module == package:  # `from shipyard.observe import _semconv as semconv`
                        table[name] = (f"{package}.{alias.name}", None)
                    else:
                        table[name] = (module, alias.name)
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname is None:
                        raise ValueError(f"{package}: use `import {alias.name} as name` in a lazy face")
                    table[alias.asname] = (alias.name, None)
    return table


def lazy_exports(package: str, file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for the package `package` whose `__init__.py` is `file`."""
    table: Table | None = None

    def exports() -> Table:
        nonlocal table
        if table is None:
            with open(file, encoding="utf-8") as f:
                table = read_exports(package, f.read())
        return table

    def __getattr__(name: str) -> Any:
        where = exports().get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, attr = where
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        setattr(sys.modules[package], name, value)  # later lookups never come back here
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports()))

    return __getattr__, __dir__


class _LazyPattern:
    """A regular expression compiled on its first use; from then on its methods are the compiled
    pattern's own, bound in the instance (~50 ns more a call than a compiled pattern's: CPython does
    not specialize a method found on an instance as it does one found on the type)."""

    def __init__(self, source: str | Callable[[], str], flags: int) -> None:
        self._source = source
        self._flags = flags

    def __getattr__(self, name: str) -> Any:  # only for what the instance does not hold yet
        if name.startswith("__"):
            raise AttributeError(name)
        if not isinstance(self._source, str):
            self._source = self._source()
        compiled = re.compile(self._source, self._flags)
        for attr in _PATTERN_ATTRS:
            setattr(self, attr, getattr(compiled, attr))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy_re({self._source!r})"


_PATTERN_ATTRS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split",
                  "pattern", "flags", "groups", "groupindex")  # fmt: skip


def lazy_re(pattern: str | Callable[[], str], flags: int = 0) -> re.Pattern[str]:
    """`re.compile(pattern, flags)` on first use: a module with many (or large) patterns costs nothing
    to import, and a process pays only for the patterns its inputs reach (a large pattern takes
    milliseconds to compile); `pattern` may be a function that writes it, called then. Use its methods
    (`.search`, `.finditer`, ...): it is not a `re.Pattern` for `isinstance` or for the `re` module's
    functions."""
    return cast("re.Pattern[str]", _LazyPattern(pattern, flags))
