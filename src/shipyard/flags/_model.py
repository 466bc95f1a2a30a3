"""Flag definitions in flagd's flag-file format, validated with errors that give the JSON path.

```json
{"$schema": "https://flagd.dev/schema/v0/flags.json",
 "flags": {"new_refund_flow": {"state": "ENABLED", "variants": {"on": true, "off": false},
                               "defaultVariant": "off",
                               "targeting": {"fractional": [["on", 10], ["off", 90]]},
                               "metadata": {"killSwitch": {"toolErrorRate": 0.2, "tools": ["process_refund"]}}}},
 "$evaluators": {"beta": {"starts_with": [{"var": "user_id"}, "beta-"]}},
 "metadata": {"shipyard.revision": 3}}
```
Files may be JSON or YAML (same structure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from shipyard._atomic import atomic_write
from shipyard.errors import ConfigError

if TYPE_CHECKING:  # the rule engine loads with the first rule compiled: most projects have none
    from shipyard.flags._jsonlogic import Fn, LogicError

SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json"
REVISION_KEY = "shipyard.revision"
STATES = ("ENABLED", "DISABLED")
FlagKind = Literal["boolean", "string", "number", "object"]

JsonPath = tuple[str | int, ...]
Lines = dict[tuple[str | int, ...], int]


class SplitVariant(str):
    """A variant name chosen by `fractional` (flags/_flagd_ops.py); the evaluator reports it with reason
    SPLIT. Here, not beside `fractional`: the evaluator checks every rule's result against it without
    loading the rule engine."""

    __slots__ = ()


def format_path(path: JsonPath) -> str:
    """`("flags", "x", "targeting", "if", 0)` -> `flags.x.targeting.if[0]`."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def value_kind(v: Any) -> FlagKind | None:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, dict | list):
        return "object"
    return None


@dataclass(frozen=True, slots=True)
class FlagDefinition:
    """One flag. `default_variant` None means "the caller's default" (flagd allows a null default)."""

    name: str
    state: Literal["ENABLED", "DISABLED"]
    variants: dict[str, Any]
    default_variant: str | None
    targeting: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.state == "ENABLED"

    @property
    def kind(self) -> FlagKind:
        """The type of the flag's values (all variants share it)."""
        for v in self.variants.values():
            k = value_kind(v)
            if k:
                return k
        return "object"

    def to_json(self) -> dict[str, Any]:
        """The flag in flagd's JSON form."""
        out: dict[str, Any] = {
            "state": self.state,
            "variants": self.variants,
            "defaultVariant": self.default_variant,
        }
        if self.targeting:
            out["targeting"] = self.targeting
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def replace(self, **changes: Any) -> FlagDefinition:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class FlagSet:
    """A whole flag file: flags, shared `$evaluators`, and set-level metadata."""

    flags: dict[str, FlagDefinition] = field(default_factory=dict)
    evaluators: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # rules that load but can only fail or give null (`line N: json.path: problem`), as flagd loads them
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def revision(self) -> int:
        """Bumped by every change made through the admin API or CLI."""
        r = self.metadata.get(REVISION_KEY, 0)
        return r if isinstance(r, int) and not isinstance(r, bool) else 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "$schema": SCHEMA_URL,
            "flags": {n: f.to_json() for n, f in self.flags.items()},
        }
        if self.evaluators:
            out["$evaluators"] = self.evaluators
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def with_flag(self, flag: FlagDefinition) -> FlagSet:
        return FlagSet({**self.flags, flag.name: flag}, self.evaluators, self.metadata, self.warnings)

    def with_revision(self, revision: int) -> FlagSet:
        return FlagSet(self.flags, self.evaluators, {**self.metadata, REVISION_KEY: revision})


# --- validation -------------------------------------------------------------------------------------


class _Problems:
    def __init__(self, lines: Lines | None) -> None:
        self.items: list[str] = []
        self.lines = lines or {}

    def add(self, path: JsonPath, message: str) -> None:
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        where = f"line {line}: " if line else ""
        self.items.append(f"{where}{format_path(path)}: {message}")


_FLAG_KEYS = ("state", "variants", "defaultVariant", "targeting", "metadata")
_TOP_KEYS = ("$schema", "flags", "$evaluators", "metadata")


def has_targeting(targeting: Any) -> bool:
    """Whether a flag's `targeting` is a rule to compile (flagd reads none and `{}` as no rule)."""
    return targeting is not None and targeting != {}


def compile_targeting(
    name: str,
    targeting: Any,
    evaluators: Mapping[str, Any],
    path: JsonPath | None = None,
    *,
    strict: bool = True,
) -> Fn | None:
    """Compile a flag's targeting rule (None when it has none); raises LogicError with a path.
    `strict=False` compiles operations that can only give null to null, as flagd evaluates them."""
    if not has_targeting(targeting):
        return None
    from shipyard.flags._flagd_ops import FLAGD_OPERATORS
    from shipyard.flags._jsonlogic import Compiler

    compiler = Compiler(operators=FLAGD_OPERATORS, evaluators=evaluators, flag_key=name, strict=strict)
    return compiler.compile(targeting, path if path is not None else ("flags", name, "targeting"))


def broken_rule(error: LogicError) -> Fn:
    """The rule of a flag whose targeting flagd cannot parse (an unknown operator, a `$ref` to no
    evaluator): evaluating it fails, so the flag resolves with PARSE_ERROR, as in flagd."""
    from shipyard.flags._jsonlogic import LogicError

    message = f"{format_path(error.path)}: {error.message}"

    def fail(_d: Any) -> Any:
        raise LogicError(error.path, message)

    return fail


def _check_flag(
    name: str, raw: Any, evaluators: dict[str, Any], p: _Problems, w: _Problems
) -> FlagDefinition | None:
    base: JsonPath = ("flags", name)
    if not isinstance(raw, dict):
        p.add(
            base,
            f"a flag must be an object with state, variants and defaultVariant, got {type(raw).__name__}",
        )
        return None
    before = len(p.items)
    for key in raw:
        if key not in _FLAG_KEYS:
            p.add((*base, key), f"unknown key (a flag has: {', '.join(_FLAG_KEYS)})")
    state = raw.get("state")
    if state is None:
        p.add((*base, "state"), "required field is missing (ENABLED or DISABLED)")
    elif state not in STATES:
        p.add((*base, "state"), f"{state!r} is not a state (use ENABLED or DISABLED)")
    variants = raw.get("variants")
    if variants is None:
        p.add((*base, "variants"), "required field is missing (an object of variant name -> value)")
        variants = {}
    elif not isinstance(variants, dict) or not variants:
        p.add((*base, "variants"), "must be a non-empty object of variant name -> value")
        variants = {}
    kinds: dict[str, str] = {}
    for vname, value in variants.items():
        k = value_kind(value)
        if k is None:
            p.add((*base, "variants", vname), "a variant value must be a boolean, string, number or object")
            continue
        kinds.setdefault(k, vname)
    if len(kinds) > 1:
        first_kind, first_name = next(iter(kinds.items()))
        for other, vname in list(kinds.items())[1:]:
            p.add(
                (*base, "variants", vname),
                f"is a {other} but variant {first_name!r} is a {first_kind}; all variants of a flag have one type",
            )
    names = ", ".join(variants)
    default = raw.get("defaultVariant")  # missing or null: the caller's default (flagd's no-default-variant)
    if default is not None and variants and default not in variants:
        p.add((*base, "defaultVariant"), f"{default!r} is not a variant (variants: {names})")
    targeting = raw.get("targeting")
    if targeting is not None and not isinstance(targeting, dict):
        p.add((*base, "targeting"), "must be a JsonLogic object (or {} for none)")
    elif targeting:
        # a file is read as flagd reads it (`w` is then a list of warnings: what cannot be parsed
        # fails that flag's evaluations with PARSE_ERROR); a flag written through Shipyard must compile
        from shipyard.flags._jsonlogic import LogicError

        try:
            compile_targeting(name, targeting, evaluators)
        except LogicError as e:
            w.add(e.path, e.message)
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        p.add((*base, "metadata"), "must be an object")
        metadata = {}
    elif "killSwitch" in metadata:
        from shipyard.flags._killswitch import check_kill_switch

        for sub, message in check_kill_switch(metadata["killSwitch"]):
            p.add((*base, "metadata", "killSwitch", *sub), message)
    if len(p.items) > before:
        return None
    return FlagDefinition(
        name,
        "ENABLED" if state == "ENABLED" else "DISABLED",
        dict(variants),
        default,
        targeting or None,
        dict(metadata),
    )


def parse_flag_set(
    data: Any, source: str = "<flags>", lines: Lines | None = None, *, strict: bool = False
) -> FlagSet:
    """Validate a flagd document; raise ConfigError with one `line N: json.path: problem` per problem.

    What flagd loads loads: a targeting rule flagd cannot parse (unknown operator, `$ref` to no
    evaluator) makes that flag resolve with PARSE_ERROR, and an operation that can only give null
    gives null. `strict=True` (flags written through Shipyard) refuses those rules instead."""
    p = _Problems(lines)
    w = p if strict else _Problems(lines)
    if not isinstance(data, dict):
        p.add((), 'a flag file must be an object with a "flags" key')
        raise ConfigError(source, p.items)
    for key in data:
        if key not in _TOP_KEYS:
            p.add((key,), f"unknown key (a flag file has: {', '.join(_TOP_KEYS)})")
    evaluators = data.get("$evaluators") or {}
    if not isinstance(evaluators, dict):
        p.add(("$evaluators",), "must be an object of name -> JsonLogic rule")
        evaluators = {}
    # a broken evaluator is a warning even when strict: a flag that uses it fails to compile itself
    ew = w if not strict else _Problems(lines)
    if evaluators:  # the rule engine loads with the first rule: most flag files have none
        from shipyard.flags._flagd_ops import FLAGD_OPERATORS
        from shipyard.flags._jsonlogic import Compiler, LogicError

        for ename, rule in evaluators.items():
            try:
                Compiler(operators=FLAGD_OPERATORS, evaluators=evaluators).compile(
                    rule, ("$evaluators", ename)
                )
            except LogicError as e:
                ew.add(e.path, e.message)
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        p.add(("metadata",), "must be an object")
        metadata = {}
    flags_raw = data.get("flags")
    flags: dict[str, FlagDefinition] = {}
    if flags_raw is None:
        p.add(("flags",), "required field is missing (an object of flag name -> definition)")
    elif not isinstance(flags_raw, dict):
        p.add(("flags",), "must be an object of flag name -> definition")
    else:
        for name, raw in flags_raw.items():
            flag = _check_flag(str(name), raw, evaluators, p, w)
            if flag is not None:
                flags[flag.name] = flag
    if p.items:
        raise ConfigError(source, p.items, hint="see https://flagd.dev/reference/flag-definitions/")
    return FlagSet(flags, dict(evaluators), dict(metadata), () if strict else tuple(w.items))


def parse_flag(name: str, definition: Any, evaluators: Mapping[str, Any] | None = None) -> FlagDefinition:
    """Validate one flag definition (as the admin API receives it); errors name `flags.NAME.field`."""
    fs = parse_flag_set(
        {"flags": {name: definition}, "$evaluators": dict(evaluators or {})},
        f"flag {name!r}",
        strict=True,
    )
    return fs.flags[name]


# --- files ------------------------------------------------------------------------------------------


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _lines_of(text: str) -> Lines:
    """Field path -> line number, best effort (JSON is read through the YAML composer)."""
    from shipyard.config import load_yaml_with_lines

    try:
        return load_yaml_with_lines(Path("-"), text)[1]
    except Exception:
        return {}


def read_flag_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(path), ["file not found"], hint="create it with `shipyard flags set NAME '{...}'`"
        ) from None
    except OSError as e:
        raise ConfigError(str(path), [f"cannot read: {e.strerror}"]) from None


def parse_flag_text(text: str, path: Path) -> FlagSet:
    """Parse a flag file's text (JSON, or YAML for .yaml/.yml) and validate it."""
    if _is_yaml(path):
        from shipyard.config import load_yaml_with_lines

        data, lines = load_yaml_with_lines(path, text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(
                str(path), [f"line {e.lineno}, column {e.colno}: malformed JSON: {e.msg}"]
            ) from None
        lines = _lines_of(text)
    return parse_flag_set(data, str(path), lines)


def load_flag_file(path: Path | str) -> FlagSet:
    """Load and validate a flag file."""
    p = Path(path)
    return parse_flag_text(read_flag_text(p), p)


def dump_flag_set(flag_set: FlagSet, path: Path) -> str:
    """The file text for `flag_set` in the format `path` asks for."""
    doc = flag_set.to_json()
    if _is_yaml(path):
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_flag_file(flag_set: FlagSet, path: Path | str) -> None:
    """Write atomically (temp file + rename), so a reader never sees half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, dump_flag_set(flag_set, p))  # a project file: the mode any file of the user's gets
