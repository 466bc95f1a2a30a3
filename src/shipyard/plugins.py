"""Plugin registries: the one way Shipyard finds model providers, suite importers, scorers, agent
adapters, store backends and guardrail kinds by the name a user writes.

A kind of plugin is a `Registry`; a package fills it with a decorator (or `add`):

    PROVIDERS: Registry[ModelProvider] = Registry("model provider")

    @PROVIDERS.register("acme")
    def acme(...): ...

Plugins are found through one entry-point group, `shipyard.plugins`. Each entry point names a module
(importing it registers things) or a callable (called with no arguments, it registers things).
Shipyard's own built-ins are declared there too, in its `pyproject.toml`, and load the same way, first;
then third-party plugins in (distribution, entry point) order. Everything is loaded once per process,
on the first lookup of any registry (`get`, `names`, `in`), so importing Shipyard stays cheap. One
exception keeps a command from paying for kinds it never uses: a registry that names the built-in
entry point filling it (`Registry("model provider", builtin="llm")`) loads only that one while no
third-party plugin is installed (nothing else can register into it then); with any third-party plugin
installed, its first lookup loads everything as above.

A plugin that fails to load (an import error, a conflicting name) is skipped with its name and error:
logged at warning, kept in `plugin_failures()`, and quoted by every "unknown name" error, so nothing
fails silently and an unrelated command keeps working.

Names are registered once. Registering a taken name again raises `PluginConflictError` (so a plugin
that reuses a built-in's name fails to load, and the built-in stays) unless the registration says
`override=True`, which replaces it and is logged. Registering the same (or an equal) object again is
a no-op, and a callable re-defined by the same module under the same qualified name (a module
reloaded, a test re-run) replaces its earlier self.

Running from a source tree without installed package metadata: Shipyard's built-ins are read from the
`pyproject.toml` beside the sources (the same declaration the metadata is built from). With neither
metadata nor that file, every lookup raises `PluginError`: the built-ins are never lost silently.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from shipyard.errors import NotFoundError, ShipyardError

GROUP = "shipyard.plugins"
"""The entry-point group every plugin (and every built-in) is declared in."""

DISTRIBUTION = "shipyard"

log = logging.getLogger("shipyard.plugins")

T = TypeVar("T")


class PluginError(ShipyardError):
    """Plugins cannot be loaded at all (Shipyard's own built-ins are not declared anywhere)."""


class PluginConflictError(ShipyardError, ValueError):
    """A name is registered twice without `override=True`."""


class UnknownPluginError(NotFoundError, ValueError):
    """A name that no plugin registered (a ValueError too, so config validation reports it)."""


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin that could not be loaded: its entry point's name, where it comes from, and why."""

    name: str
    source: str  # "shipyard" for the built-ins, else the distribution's name and version
    target: str  # the entry point's value, `module` or `module:attr`
    error: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.source}, {self.target}) failed to load: {self.error}"


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    """A plugin that loaded: its entry point's name, where it comes from, and its target."""

    name: str
    source: str
    target: str


class _Loader:
    """Finds and loads the entry points of one group, once. Registries share one loader per group."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.loaded: list[LoadedPlugin] = []
        self.failures: list[PluginFailure] = []
        self.builtins_from = ""  # "package metadata" | "pyproject.toml <path>"
        self.current: str | None = None  # the plugin being loaded (origin of what it registers)
        self._found: tuple[list[EntryPoint], list[EntryPoint]] | None = None  # (built-ins, others)
        self._tried: set[str] = set()  # built-in entry points loaded (or failed) already
        self._done = False  # every entry point of the group tried
        self._loading = False  # under way (in the thread holding the lock)
        self._error: PluginError | None = None
        self._lock = threading.RLock()

    def ensure(self, builtin: str | None = None) -> None:
        """Load every plugin of the group unless done (or under way in this thread: a plugin that
        looks something up while it loads sees what is registered so far).

        Args:
            builtin: the built-in entry point that fills the registry being looked up; while no
                third-party plugin is installed, only it is loaded.
        """
        if self._error is None and (
            self._done or (builtin in self._tried and self._found is not None and not self._found[1])
        ):
            return
        with self._lock:
            if not self._done and not self._loading:
                self._loading = True
                try:
                    builtins, others = self._discover()
                    if builtin is not None and not others and any(ep.name == builtin for ep in builtins):
                        self._load_builtins([ep for ep in builtins if ep.name == builtin])
                    else:
                        self._load_builtins(builtins)
                        for ep in others:
                            dist = ep.dist
                            self._load(ep, f"{dist.name} {dist.version}" if dist else "unknown distribution")
                        self._done = True
                finally:
                    self._loading = False
        if self._error is not None:
            raise self._error

    def _discover(self) -> tuple[list[EntryPoint], list[EntryPoint]]:
        if self._found is None:
            installed = _installed_entry_points(self.group)
            try:
                builtins, self.builtins_from = _builtin_entry_points(self.group, installed)
            except PluginError as e:
                self._error = e
                builtins = []
            # A distribution's name is read from its METADATA (the whole file is parsed, long
            # description included, on every `.name`): once per distribution, not per entry point,
            # and not for Shipyard's own: an entry point the installed Shipyard declares is its own
            # unless another distribution declares the very same one (then their names tell).
            names: dict[int, str | None] = {}

            def dist_name(ep: EntryPoint) -> str | None:
                key = id(ep.dist)
                if key not in names:
                    names[key] = _dist_name(ep)
                return names[key]

            found = list(entry_points(group=self.group))  # keeps each `ep.dist` alive (the ids stay theirs)
            declared = Counter((ep.name, ep.value) for ep in found)
            own = {(ep.name, ep.value) for ep in installed if declared[ep.name, ep.value] == 1}
            others = sorted(
                (ep for ep in found if (ep.name, ep.value) not in own and dist_name(ep) != DISTRIBUTION),
                key=lambda ep: (dist_name(ep) or "", ep.name),
            )
            self._found = (builtins, others)
        return self._found

    def _load_builtins(self, eps: list[EntryPoint]) -> None:
        for ep in eps:
            if ep.name not in self._tried:
                self._load(ep, DISTRIBUTION)
                self._tried.add(ep.name)

    def _load(self, ep: EntryPoint, source: str) -> None:
        self.current = f"{ep.name} ({source})"
        try:
            obj = ep.load()
            if not isinstance(obj, ModuleType):
                if not callable(obj):
                    raise TypeError(f"{ep.value} is neither a module nor a callable")
                obj()
        except Exception as e:  # a broken plugin must not take the others (or the command) down
            failure = PluginFailure(ep.name, source, ep.value, f"{type(e).__name__}: {e}")
            self.failures.append(failure)
            log.warning("%s", failure)
        else:
            self.loaded.append(LoadedPlugin(ep.name, source, ep.value))
        finally:
            self.current = None


def _dist_name(ep: EntryPoint) -> str | None:
    name = ep.dist.name if ep.dist is not None else None  # None: a dist-info without a Name
    return name.lower().replace("_", "-") if name else None


def _source_pyproject() -> Path | None:
    """The pyproject.toml of the source tree this package was imported from (src layout), if any."""
    here = Path(__file__).resolve().parent  # src/shipyard
    candidate = here.parent.parent / "pyproject.toml"
    return candidate if candidate.is_file() and here.parent.name == "src" else None


def _declared_in(pyproject: Path, group: str) -> list[EntryPoint] | None:
    import tomllib  # only for a source tree (an installed Shipyard reads its package metadata)

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    project = data.get("project", {})
    if project.get("name") != DISTRIBUTION:
        return None
    declared = project.get("entry-points", {}).get(group, {})
    return [EntryPoint(name, value, group) for name, value in declared.items()]


def _installed_entry_points(group: str) -> list[EntryPoint]:
    """The entry points of `group` the installed Shipyard's package metadata declares (none without)."""
    try:
        return [ep for ep in distribution(DISTRIBUTION).entry_points if ep.group == group]
    except PackageNotFoundError:
        return []


def _builtin_entry_points(group: str, installed: list[EntryPoint]) -> tuple[list[EntryPoint], str]:
    """Shipyard's own entry points of `group` and where they were read.

    The installed package metadata (`installed`) when it declares any; else the pyproject.toml of
    the source tree (running from a checkout, or an install made before the entry points were
    declared). A source tree whose pyproject.toml declares more than stale metadata wins, with a
    warning."""
    pyproject = _source_pyproject()
    declared = _declared_in(pyproject, group) if pyproject else None
    if declared and {(e.name, e.value) for e in declared} != {(e.name, e.value) for e in installed}:
        if installed:
            log.warning(
                "Shipyard's installed package metadata is stale (its %s entry points differ from %s); "
                "using %s. Run `pip install -e .` to refresh it.",
                group,
                pyproject,
                pyproject,
            )
        return declared, f"pyproject.toml {pyproject}"
    if installed:
        return installed, "package metadata"
    if group != GROUP:  # a group of the tests' own: no built-ins to find
        return [], "none"
    raise PluginError(
        f"Shipyard's built-in plugins ({group!r} entry points) are not declared: the 'shipyard' "
        "package has no installed metadata declaring them, and no pyproject.toml is beside its sources",
        hint="reinstall Shipyard (`pip install shipyard`, or `pip install -e .` in a checkout)",
    )


_LOADERS: dict[str, _Loader] = {}


def _loader(group: str) -> _Loader:
    found = _LOADERS.get(group)
    if found is None:
        found = _LOADERS[group] = _Loader(group)
    return found


def load_plugins(group: str = GROUP) -> None:
    """Load every plugin of the group now (otherwise done on the first lookup). Raises PluginError
    only when Shipyard's own built-ins cannot be found; a failing plugin is reported, not raised."""
    _loader(group).ensure()


def loaded_plugins(group: str = GROUP) -> list[LoadedPlugin]:
    """The plugins that loaded, built-ins first."""
    _loader(group).ensure()
    return list(_loader(group).loaded)


def plugin_failures(group: str = GROUP) -> list[PluginFailure]:
    """The plugins that failed to load, with their errors."""
    try:
        _loader(group).ensure()
    except PluginError:
        pass
    return list(_loader(group).failures)


def builtins_source(group: str = GROUP) -> str:
    """Where Shipyard's own entry points were read: "package metadata" or "pyproject.toml <path>"."""
    try:
        _loader(group).ensure()
    except PluginError:
        return "nowhere"
    return _loader(group).builtins_from


def _same_definition(a: Any, b: Any) -> bool:
    """`b` re-defines `a`: the same module and qualified name (a reloaded module, a re-run test)."""
    qa, qb = getattr(a, "__qualname__", None), getattr(b, "__qualname__", None)
    return qa is not None and qa == qb and getattr(a, "__module__", None) == getattr(b, "__module__", None)


class Registry(Generic[T]):
    """Named things of one kind (model providers, scorers, ...), filled by plugins.

    Args:
        kind: what one entry is, for messages ("model provider", "scorer").
        group: the entry-point group whose plugins fill it (tests use a group of their own).
        builtin: the name of Shipyard's own entry point that fills it (`llm`), if one alone does:
            its first lookup then loads only that one while no third-party plugin is installed.
    """

    def __init__(self, kind: str, *, group: str = GROUP, builtin: str | None = None) -> None:
        self.kind = kind
        self._loader = _loader(group)
        self._builtin = builtin
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def register(self, name: str, *, override: bool = False) -> Callable[[T], T]:
        """Decorator: register the decorated object under `name` (see `add`)."""

        def deco(obj: T) -> T:
            self.add(name, obj, override=override)
            return obj

        return deco

    def add(self, name: str, obj: T, *, override: bool = False) -> T:
        """Register `obj` under `name`.

        Args:
            name: the name users write (a provider in shipyard.yaml, an assertion type, ...).
            obj: the thing registered.
            override: replace what is registered under `name` (a plugin replacing a built-in must
                say so); without it a taken name raises PluginConflictError.
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        origin = self._loader.current or getattr(obj, "__module__", None) or "unknown"
        held = self._items.get(name)
        if held is not None and not (held is obj or held == obj or _same_definition(held, obj)):
            if not override:
                raise PluginConflictError(
                    f"{self.kind} {name!r} is already registered by {self._origins[name]}; "
                    f"{origin} registers it again",
                    hint="choose another name, or register with override=True to replace it on purpose",
                )
            log.info("%s %r of %s replaced by %s", self.kind, name, self._origins[name], origin)
        self._items[name] = obj
        self._origins[name] = origin
        return obj

    def get(self, name: str) -> T:
        """What is registered under `name`. Raises UnknownPluginError listing the known names (and
        any plugin that failed to load, which may be the one that would have registered it)."""
        self._loader.ensure(self._builtin)
        found = self._items.get(name)
        if found is None:
            raise UnknownPluginError(self.unknown_message(name))
        return found

    def unknown_message(self, name: str, *, label: str | None = None, note: str = "") -> str:
        """The message for a name nobody registered: the known names and the plugins that failed.

        Args:
            name: the name asked for.
            label: what the user wrote it as, when not the registry's kind ("assertion type").
            note: added inside the parentheses after the known names ("prefix not- to negate").
        """
        known = ", ".join(self.names()) or "none"
        msg = f"unknown {label or self.kind} {name!r} (known: {known}{'; ' + note if note else ''})"
        if self._loader.failures:
            msg += "; " + "; ".join(str(f) for f in self._loader.failures)
        return msg

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._loader.ensure(self._builtin)
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, object) pairs, sorted by name."""
        self._loader.ensure(self._builtin)
        return sorted(self._items.items(), key=lambda kv: kv[0])

    def origin(self, name: str) -> str:
        """Which plugin registered `name` (`<entry point> (<distribution>)`, or a module name)."""
        self.get(name)
        return self._origins[name]

    def __contains__(self, name: object) -> bool:
        self._loader.ensure(self._builtin)
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} registered)"


def import_builtins(*modules: str) -> None:
    """Import modules whose definitions register built-ins (for a package's entry-point module)."""
    for m in modules:
        import_module(m)


__all__ = [
    "GROUP",
    "LoadedPlugin",
    "PluginConflictError",
    "PluginError",
    "PluginFailure",
    "Registry",
    "UnknownPluginError",
    "builtins_source",
    "import_builtins",
    "load_plugins",
    "loaded_plugins",
    "plugin_failures",
]
