"""flagd's custom targeting operations: `fractional`, `sem_ver`, `starts_with`, `ends_with`.

They follow flagd's evaluator (core/pkg/evaluator): an operation that cannot work on its input
returns null, so the flag falls back to its default variant instead of failing.
"""

from __future__ import annotations

import re
from typing import Any

from shipyard.flags._fractional import fractional
from shipyard.flags._jsonlogic import (
    STANDARD_OPERATORS,
    Compiler,
    Fn,
    LogicError,
    Node,
    NullOperation,
    OpCompiler,
    Path,
    arity,
)
from shipyard.flags._model import SplitVariant

MAX_TOTAL_WEIGHT = 2**31 - 1


def _null_arity(args: list[Node], path: Path, lo: int, hi: int | None = None) -> None:
    """flagd's operators give null for a wrong argument count (the flag takes its default variant)."""
    try:
        arity(args, path, lo, hi)
    except LogicError as e:
        raise NullOperation(e.path, e.message) from None


def _parse_distribution(item: Any) -> tuple[Any, int] | None:
    """`[variant, weight?]` -> (variant, weight); None if malformed (weight defaults to 1)."""
    if not isinstance(item, list) or not item:
        return None
    variant = item[0]
    if variant is not None and not isinstance(variant, str | bool | int | float):
        return None
    weight: Any = item[1] if len(item) >= 2 else 1
    if weight is None:
        weight = 1
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight != int(weight):
        return None
    if weight > MAX_TOTAL_WEIGHT:
        return None
    return variant, max(0, int(weight))  # flagd clamps a negative weight to 0


def _pick(key: str, dists: list[tuple[Any, int]]) -> Any:
    variant = fractional(key, dists)
    return SplitVariant(variant) if isinstance(variant, str) else variant


def _check_static_distributions(args: list[Node], path: Path, skip_first: bool) -> None:
    for i, a in enumerate(args):
        if i == 0 and skip_first:
            continue
        if a.is_const and _parse_distribution(a.const) is None:
            raise NullOperation(
                (*path, i),
                f"a fractional bucket must be [variant, weight] with a whole weight up to {MAX_TOTAL_WEIGHT}, "
                f"got {a.const!r}",
            )


def _op_fractional(args: list[Node], c: Compiler, path: Path) -> Fn:
    """`{"fractional": [bucketKey?, [variant, weight], ...]}`: murmur3 (x86 32-bit, seed 0) of the key,
    bucket = (hash × total weight) >> 32. Without a bucketing key: `$flagd.flagKey` + targetingKey."""
    _null_arity(args, path, 1)
    flag_key = c.flag_key
    first = args[0]
    lead_is_dist = first.is_const and isinstance(first.const, list)
    dist_args = args if lead_is_dist else args[1:]
    _check_static_distributions(args, path, skip_first=not lead_is_dist)
    if not dist_args:
        raise NullOperation(path, "fractional needs at least one [variant, weight] bucket")
    total_static = MAX_TOTAL_WEIGHT + 1  # "not known at load time"
    dists: list[tuple[Any, int]] = []
    if all(a.is_const for a in dist_args):
        static = [_parse_distribution(a.const) for a in dist_args]
        dists = [d for d in static if d is not None]
        total_static = sum(w for _, w in dists)
        if total_static > MAX_TOTAL_WEIGHT:
            raise NullOperation(path, f"the weights add up to {total_static}, more than {MAX_TOTAL_WEIGHT}")
    fns = [a.fn for a in args]

    def dynamic(d: Any) -> Any:
        values = [f(d) for f in fns]
        head = values[0]
        if isinstance(head, str):
            key, rest = head, values[1:]
        else:
            rest = values[1:] if head is None else values
            tk = d.get("targetingKey") if isinstance(d, dict) else None
            if not isinstance(tk, str):
                return None
            key = flag_key + tk
        parsed = [_parse_distribution(v) for v in rest]
        if not parsed or any(p is None for p in parsed):
            return None
        ds = [p for p in parsed if p is not None]
        total = sum(w for _, w in ds)
        return None if total > MAX_TOTAL_WEIGHT else _pick(key, ds)

    if total_static > MAX_TOTAL_WEIGHT:
        return dynamic
    if lead_is_dist:

        def by_targeting_key(d: Any) -> Any:
            tk = d.get("targetingKey") if isinstance(d, dict) else None
            return _pick(flag_key + tk, dists) if isinstance(tk, str) else None

        return by_targeting_key
    key_fn = first.fn

    def by_key(d: Any) -> Any:
        key = key_fn(d)
        if isinstance(key, str):
            return _pick(key, dists)
        if key is None:
            # a bucketing expression that resolved to nothing falls back to the targeting key
            tk = d.get("targetingKey") if isinstance(d, dict) else None
            return _pick(flag_key + tk, dists) if isinstance(tk, str) else None
        return dynamic(d)  # the first argument was a computed bucket, not a key

    return by_key


# --- sem_ver ----------------------------------------------------------------------------------------

_CORE = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?$")
_IDENT = re.compile(r"^[0-9A-Za-z-]+$")
SemVer = tuple[int, int, int, tuple[Any, ...] | None]


def parse_semver(value: Any) -> SemVer | None:
    """`v1.2.3-rc.1+build` -> (1, 2, 3, ("rc", 1)); partial versions pad with zeros ("1.2" -> 1.2.0);
    numbers are read as their text; None if it is not a version."""
    if isinstance(value, bool) or value is None:
        return None
    text = repr(value) if isinstance(value, float) else str(value)
    if text[:1] in ("v", "V"):
        text = text[1:]
    text = text.split("+", 1)[0]
    core, sep, pre = text.partition("-")
    m = _CORE.match(core)
    if not m or (sep and not pre):
        return None
    prerelease: tuple[Any, ...] | None = None
    if sep:
        parts: list[Any] = []
        for ident in pre.split("."):
            if not _IDENT.match(ident):
                return None
            parts.append(int(ident) if ident.isdigit() else ident)
        prerelease = tuple(parts)
    return int(m[1]), int(m[2] or 0), int(m[3] or 0), prerelease


def _pre_key(pre: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """Precedence of a pre-release: none sorts after any; numbers before words; shorter first."""
    if pre is None:
        return (1,)
    return (0, *((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre))


def compare_semver(a: SemVer, b: SemVer) -> int:
    ka = (a[0], a[1], a[2], _pre_key(a[3]))
    kb = (b[0], b[1], b[2], _pre_key(b[3]))
    return (ka > kb) - (ka < kb)


_SEMVER_OPS = {
    "=": lambda a, b: compare_semver(a, b) == 0,
    "!=": lambda a, b: compare_semver(a, b) != 0,
    "<": lambda a, b: compare_semver(a, b) < 0,
    "<=": lambda a, b: compare_semver(a, b) <= 0,
    ">": lambda a, b: compare_semver(a, b) > 0,
    ">=": lambda a, b: compare_semver(a, b) >= 0,
    "^": lambda a, b: a[0] == b[0],
    "~": lambda a, b: a[0] == b[0] and a[1] == b[1],
}


def _op_sem_ver(args: list[Node], c: Compiler, path: Path) -> Fn:
    """`{"sem_ver": [version, op, target]}` with op one of = != < <= > >= ^ (same major) ~ (same minor).
    Null for another operator, a target that is not a version, or another argument count."""
    _null_arity(args, path, 3, 3)
    if args[1].is_const and args[1].const not in _SEMVER_OPS:
        raise NullOperation(
            (*path, 1), f"sem_ver operator must be one of {' '.join(_SEMVER_OPS)}, got {args[1].const!r}"
        )
    if args[2].is_const and parse_semver(args[2].const) is None:
        raise NullOperation((*path, 2), f"{args[2].const!r} is not a semantic version")
    v_fn, op_fn, t_fn = (a.fn for a in args)
    if args[1].is_const and args[2].is_const:
        # the usual form: a constant operator and target, parsed once here
        fixed_test, target = _SEMVER_OPS[args[1].const], parse_semver(args[2].const)

        def sem_ver_fixed(d: Any) -> bool | None:
            a = parse_semver(v_fn(d))
            return None if a is None else fixed_test(a, target)

        return sem_ver_fixed

    def sem_ver(d: Any) -> bool | None:
        test = _SEMVER_OPS.get(op_fn(d))
        a, b = parse_semver(v_fn(d)), parse_semver(t_fn(d))
        if test is None or a is None or b is None:
            return None
        return test(a, b)

    return sem_ver


def _string_op(test: Any) -> OpCompiler:
    def compile_(args: list[Node], c: Compiler, path: Path) -> Fn:
        _null_arity(args, path, 2, 2)
        a, b = args[0].fn, args[1].fn

        def op(d: Any) -> bool | None:
            s, part = a(d), b(d)
            if not isinstance(s, str) or not isinstance(part, str):
                return None
            return test(s, part)

        return op

    return compile_


FLAGD_OPERATORS: dict[str, OpCompiler] = {
    **STANDARD_OPERATORS,
    "fractional": _op_fractional,
    "sem_ver": _op_sem_ver,
    "starts_with": _string_op(str.startswith),
    "ends_with": _string_op(str.endswith),
}
"""The standard JsonLogic operators plus flagd's."""
