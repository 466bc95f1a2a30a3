"""JsonLogic, compiled once into Python closures so evaluating a rule does no parsing.

`compile_logic(rule)` checks the rule (unknown operators, wrong argument counts) and returns a
function `data -> value`. Semantics follow json-logic-js (truthiness, loose equality, numeric
coercion); operators are plain registered compile functions, so flagd's custom operations
(`shipyard.flags._flagd_ops`) plug in without special cases here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Fn = Callable[[Any], Any]
"""A compiled rule: data in, value out."""

Path = tuple[str | int, ...]


class LogicError(ValueError):
    """A rule cannot be compiled; `path` locates the problem inside the rule."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class NullOperation(LogicError):
    """An operation that can only give null (wrong argument count, a constant argument it cannot
    use). A strict compiler refuses it; a lenient one (reading a flag file, as flagd does) compiles
    it to null, so the rule goes on and the flag falls back to its default variant."""


_NOT_CONST: Any = object()


@dataclass(frozen=True, slots=True)
class Node:
    """A compiled argument: its function, and its value when it is a constant (else `_NOT_CONST`)."""

    fn: Fn
    const: Any = _NOT_CONST

    @property
    def is_const(self) -> bool:
        return self.const is not _NOT_CONST


OpCompiler = Callable[[list[Node], "Compiler", Path], Fn]
"""Compiles one operator: (compiled arguments, compiler, path of the operator) -> function."""


# --- JavaScript-like value semantics ----------------------------------------------------------------


def truthy(v: Any) -> bool:
    """JsonLogic truthiness: null, false, 0, NaN, "" and [] are false; everything else is true."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, int | float):
        return v != 0 and v == v
    if isinstance(v, str | list | tuple):
        return len(v) > 0
    return True


def to_number(v: Any) -> float:
    """JavaScript `Number(v)`: bools and null become 0/1/0, numeric strings parse, the rest is NaN."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return v
    if v is None:
        return 0.0
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return 0.0
        try:
            return float(s)
        except ValueError:
            return math.nan
    if isinstance(v, list) and len(v) <= 1:
        return to_number(v[0]) if v else 0.0
    return math.nan


def to_str(v: Any) -> str:
    """JavaScript `String(v)`."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        if v.is_integer():
            return str(int(v))
        return repr(v)
    if isinstance(v, list):
        return ",".join("" if x is None else to_str(x) for x in v)
    if isinstance(v, dict):
        return "[object Object]"
    return str(v)


def _js_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "object"


def strict_eq(a: Any, b: Any) -> bool:
    """`===`: same JavaScript type and equal."""
    return _js_type(a) == _js_type(b) and (a is b if isinstance(a, list | dict) else a == b)


def loose_eq(a: Any, b: Any) -> bool:
    """`==` with JavaScript coercion (null equals only null; numbers, strings and bools compare as numbers)."""
    ta, tb = _js_type(a), _js_type(b)
    if ta == tb:
        return a is b if ta == "object" else a == b
    if ta == "null" or tb == "null":
        return False
    if ta == "object":
        return loose_eq(to_str(a), b)
    if tb == "object":
        return loose_eq(a, to_str(b))
    return to_number(a) == to_number(b)


def _lt(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a < b
    return to_number(a) < to_number(b)


def _le(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a <= b
    return to_number(a) <= to_number(b)


def _num_out(x: float) -> float | int:
    """Arithmetic results as JSON numbers: whole floats become ints (3.0 -> 3)."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


# --- the compiler -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Compiler:
    """Compiles rules with a set of operators.

    Args:
        operators: operator name -> compile function (defaults: the standard JsonLogic set).
        evaluators: named rules that `{"$ref": name}` refers to (flagd's `$evaluators`).
        flag_key: the flag being compiled, for operators that need it (flagd's `fractional`).
        strict: refuse operations that can only give null (`NullOperation`); when False they
            compile to null, as flagd evaluates them.
    """

    operators: Mapping[str, OpCompiler] = field(default_factory=lambda: STANDARD_OPERATORS)
    evaluators: Mapping[str, Any] = field(default_factory=dict)
    flag_key: str = ""
    strict: bool = True
    _refs: list[str] = field(default_factory=list)

    def compile(self, logic: Any, path: Path = ()) -> Fn:
        return self.node(logic, path).fn

    def node(self, logic: Any, path: Path) -> Node:
        if isinstance(logic, list):
            items = [self.node(x, (*path, i)) for i, x in enumerate(logic)]
            if all(n.is_const for n in items):
                value = [n.const for n in items]
                return Node(lambda _d: list(value), value)
            fns = [n.fn for n in items]
            return Node(lambda d: [f(d) for f in fns])
        if not isinstance(logic, dict) or len(logic) != 1:
            # a dict with zero or several keys is data, as in json-logic-js
            value = logic
            return Node(lambda _d: value, value)
        ((op, raw),) = logic.items()
        if op == "$ref":
            return self._ref(raw, path)
        compile_op = self.operators.get(op)
        if compile_op is None:
            known = ", ".join(sorted(self.operators))
            raise LogicError((*path, op), f"unknown operator {op!r} (known: {known})")
        raw_args = raw if isinstance(raw, list) else [raw]
        args = [
            self.node(a, (*path, op, i) if isinstance(raw, list) else (*path, op))
            for i, a in enumerate(raw_args)
        ]
        try:
            return Node(compile_op(args, self, (*path, op)))
        except NullOperation:
            if self.strict:
                raise
            return Node(lambda _d: None, None)

    def _ref(self, name: Any, path: Path) -> Node:
        if not isinstance(name, str):
            raise LogicError((*path, "$ref"), "$ref needs the name of an evaluator (a string)")
        if name not in self.evaluators:
            known = ", ".join(sorted(self.evaluators)) or "none"
            raise LogicError(
                (*path, "$ref"), f"no evaluator named {name!r} under $evaluators (known: {known})"
            )
        if name in self._refs:
            cycle = " -> ".join([*self._refs, name])
            raise LogicError((*path, "$ref"), f"$evaluators refer to each other in a cycle: {cycle}")
        self._refs.append(name)
        try:
            return self.node(self.evaluators[name], ("$evaluators", name))
        finally:
            self._refs.pop()


def compile_logic(logic: Any, *, operators: Mapping[str, OpCompiler] | None = None, **kw: Any) -> Fn:
    """Compile a JsonLogic rule into a function `data -> value`; raises LogicError on a bad rule."""
    return Compiler(operators=operators or STANDARD_OPERATORS, **kw).compile(logic)


def arity(args: Sequence[Node], path: Path, lo: int, hi: int | None = None) -> None:
    """Raise LogicError unless `lo <= len(args) <= hi`."""
    n = len(args)
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if hi == lo else f"{lo} or more" if hi is None else f"{lo} to {hi}"
        raise LogicError(path, f"{path[-1]!r} takes {want} argument(s), got {n}")


# --- standard operators -----------------------------------------------------------------------------


def _walk_var(data: Any, parts: tuple[str, ...], default: Any) -> Any:
    for p in parts:
        if isinstance(data, dict):
            if p not in data:
                return default
            data = data[p]
        elif isinstance(data, list):
            try:
                data = data[int(p)]
            except (ValueError, IndexError):
                return default
        else:
            return default
        if data is None:
            return default
    return data


def _split(path: Any) -> tuple[str, ...]:
    s = to_str(path) if not isinstance(path, str) else path
    return tuple(s.split(".")) if s else ()


def _op_var(args: list[Node], c: Compiler, path: Path) -> Fn:
    if not args:
        return lambda d: d
    arity(args, path, 1, 2)
    default_fn = args[1].fn if len(args) > 1 else (lambda _d: None)
    key = args[0]
    if not key.is_const:
        fn = key.fn
        return lambda d: _walk_var(d, _split(fn(d)), default_fn(d))
    parts = _split(key.const)
    if not parts:
        return lambda d: d
    default = None if len(args) == 1 else args[1].const
    if len(parts) == 1 and default is not _NOT_CONST:
        (k,) = parts

        def var1(d: Any) -> Any:
            # the hot path: one key of the context dict
            if type(d) is dict:
                v = d.get(k)
                return default if v is None else v
            return _walk_var(d, parts, default)

        return var1
    return lambda d: _walk_var(d, parts, default_fn(d))


def _is_missing(d: Any, key: Any) -> bool:
    v = _walk_var(d, _split(key), None)
    return v is None or v == ""


def _op_missing(args: list[Node], c: Compiler, path: Path) -> Fn:
    fns = [a.fn for a in args]

    def missing(d: Any) -> list[Any]:
        keys = [f(d) for f in fns]
        if keys and isinstance(keys[0], list):
            keys = keys[0]
        return [k for k in keys if _is_missing(d, k)]

    return missing


def _op_missing_some(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 2, 2)
    need_fn, keys_fn = args[0].fn, args[1].fn

    def missing_some(d: Any) -> list[Any]:
        keys = keys_fn(d) or []
        miss = [k for k in keys if _is_missing(d, k)]
        return [] if len(keys) - len(miss) >= to_number(need_fn(d)) else miss

    return missing_some


def _op_if(args: list[Node], c: Compiler, path: Path) -> Fn:
    fns = [a.fn for a in args]
    if len(fns) == 3:
        cond, then, other = fns
        return lambda d: then(d) if truthy(cond(d)) else other(d)
    pairs = [(fns[i], fns[i + 1]) for i in range(0, len(fns) - 1, 2)]
    other = fns[-1] if len(fns) % 2 == 1 else (lambda _d: None)

    def if_(d: Any) -> Any:
        for cond, then in pairs:
            if truthy(cond(d)):
                return then(d)
        return other(d)

    return if_


def _binary(test: Callable[[Any, Any], bool]) -> OpCompiler:
    def compile_(args: list[Node], c: Compiler, path: Path) -> Fn:
        arity(args, path, 2, 2)
        a, b = args[0].fn, args[1].fn
        if args[1].is_const:
            k = args[1].const
            return lambda d: test(a(d), k)
        return lambda d: test(a(d), b(d))

    return compile_


def _compare(test: Callable[[Any, Any], bool]) -> OpCompiler:
    """`<` and `<=`, with the three-argument "between" form."""

    def compile_(args: list[Node], c: Compiler, path: Path) -> Fn:
        arity(args, path, 2, 3)
        fns = [a.fn for a in args]
        if len(fns) == 2:
            a, b = fns
            return lambda d: test(a(d), b(d))
        lo, x, hi = fns

        def between(d: Any) -> bool:
            v = x(d)
            return test(lo(d), v) and test(v, hi(d))

        return between

    return compile_


def _greater(test: Callable[[Any, Any], bool]) -> OpCompiler:
    def compile_(args: list[Node], c: Compiler, path: Path) -> Fn:
        arity(args, path, 2, 2)
        a, b = args[0].fn, args[1].fn
        return lambda d: test(b(d), a(d))

    return compile_


def _op_and(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 1)
    fns = [a.fn for a in args]

    def and_(d: Any) -> Any:
        v = None
        for f in fns:
            v = f(d)
            if not truthy(v):
                return v
        return v

    return and_


def _op_or(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 1)
    fns = [a.fn for a in args]

    def or_(d: Any) -> Any:
        v = None
        for f in fns:
            v = f(d)
            if truthy(v):
                return v
        return v

    return or_


def _op_not(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 1, 1)
    f = args[0].fn
    return lambda d: not truthy(f(d))


def _op_notnot(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 1, 1)
    f = args[0].fn
    return lambda d: truthy(f(d))


def _op_in(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 2, 2)
    a, b = args[0].fn, args[1].fn

    def in_(d: Any) -> bool:
        needle, hay = a(d), b(d)
        if isinstance(hay, str):
            return to_str(needle) in hay
        if isinstance(hay, list):
            return any(strict_eq(needle, x) for x in hay)
        return False

    return in_


def _op_cat(args: list[Node], c: Compiler, path: Path) -> Fn:
    fns = [a.fn for a in args]
    return lambda d: "".join(to_str(f(d)) for f in fns)


def _op_substr(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 2, 3)
    fns = [a.fn for a in args]

    def substr(d: Any) -> str:
        s = to_str(fns[0](d))
        start = int(to_number(fns[1](d)))
        if start < 0:
            start = max(len(s) + start, 0)
        if len(fns) == 2:
            return s[start:]
        n = int(to_number(fns[2](d)))
        return s[start : len(s) + n] if n < 0 else s[start : start + n]

    return substr


def _op_add(args: list[Node], c: Compiler, path: Path) -> Fn:
    fns = [a.fn for a in args]
    return lambda d: _num_out(math.fsum(to_number(f(d)) for f in fns))


def _op_mul(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 1)
    fns = [a.fn for a in args]

    def mul(d: Any) -> Any:
        out = 1.0
        for f in fns:
            out *= to_number(f(d))
        return _num_out(out)

    return mul


def _op_sub(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 1, 2)
    if len(args) == 1:
        f = args[0].fn
        return lambda d: _num_out(-to_number(f(d)))
    a, b = args[0].fn, args[1].fn
    return lambda d: _num_out(to_number(a(d)) - to_number(b(d)))


def _div(x: float, y: float) -> float:
    if y == 0:
        return math.nan if x == 0 or x != x else math.copysign(math.inf, x) * math.copysign(1, y)
    return x / y


def _op_div(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 2, 2)
    a, b = args[0].fn, args[1].fn
    return lambda d: _num_out(_div(to_number(a(d)), to_number(b(d))))


def _op_mod(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 2, 2)
    a, b = args[0].fn, args[1].fn

    def mod(d: Any) -> Any:
        x, y = to_number(a(d)), to_number(b(d))
        return math.nan if y == 0 else _num_out(math.fmod(x, y))  # JS %: the sign of the dividend

    return mod


def _extreme(pick: Callable[..., float]) -> OpCompiler:
    def compile_(args: list[Node], c: Compiler, path: Path) -> Fn:
        fns = [a.fn for a in args]

        def ext(d: Any) -> Any:
            vals = [to_number(f(d)) for f in fns]
            if not vals:
                return None
            if any(v != v for v in vals):
                return math.nan
            return _num_out(pick(vals))

        return ext

    return compile_


def _op_merge(args: list[Node], c: Compiler, path: Path) -> Fn:
    fns = [a.fn for a in args]

    def merge(d: Any) -> list[Any]:
        out: list[Any] = []
        for f in fns:
            v = f(d)
            if isinstance(v, list):
                out.extend(v)
            else:
                out.append(v)
        return out

    return merge


def _array_op(kind: str) -> OpCompiler:
    """map / filter / all / some / none: the second argument runs with each item as its data."""

    def compile_(args: list[Node], c: Compiler, path: Path) -> Fn:
        arity(args, path, 2, 2)
        items_fn, body = args[0].fn, args[1].fn

        def run(d: Any) -> Any:
            items = items_fn(d)
            if not isinstance(items, list):
                items = []
            if kind == "map":
                return [body(x) for x in items]
            if kind == "filter":
                return [x for x in items if truthy(body(x))]
            if kind == "all":
                return bool(items) and all(truthy(body(x)) for x in items)
            if kind == "some":
                return any(truthy(body(x)) for x in items)
            return not any(truthy(body(x)) for x in items)  # none

        return run

    return compile_


def _op_reduce(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 2, 3)
    items_fn, body = args[0].fn, args[1].fn
    init_fn = args[2].fn if len(args) == 3 else (lambda _d: None)

    def reduce_(d: Any) -> Any:
        items = items_fn(d)
        acc = init_fn(d)
        if not isinstance(items, list):
            return acc
        for x in items:
            acc = body({"current": x, "accumulator": acc})
        return acc

    return reduce_


def _op_log(args: list[Node], c: Compiler, path: Path) -> Fn:
    arity(args, path, 1, 1)
    return args[0].fn


STANDARD_OPERATORS: dict[str, OpCompiler] = {
    "var": _op_var,
    "missing": _op_missing,
    "missing_some": _op_missing_some,
    "if": _op_if,
    "?:": _op_if,
    "==": _binary(loose_eq),
    "===": _binary(strict_eq),
    "!=": _binary(lambda a, b: not loose_eq(a, b)),
    "!==": _binary(lambda a, b: not strict_eq(a, b)),
    "<": _compare(_lt),
    "<=": _compare(_le),
    ">": _greater(_lt),
    ">=": _greater(_le),
    "and": _op_and,
    "or": _op_or,
    "!": _op_not,
    "!!": _op_notnot,
    "in": _op_in,
    "cat": _op_cat,
    "substr": _op_substr,
    "+": _op_add,
    "-": _op_sub,
    "*": _op_mul,
    "/": _op_div,
    "%": _op_mod,
    "min": _extreme(min),
    "max": _extreme(max),
    "merge": _op_merge,
    "map": _array_op("map"),
    "filter": _array_op("filter"),
    "all": _array_op("all"),
    "some": _array_op("some"),
    "none": _array_op("none"),
    "reduce": _op_reduce,
    "log": _op_log,
}
