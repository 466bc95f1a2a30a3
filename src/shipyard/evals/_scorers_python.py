"""Custom Python scorers: a function by import path, or a promptfoo-style inline expression."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from shipyard.config import MODULE_ATTR
from shipyard.evals._scorers import ScoreFn, ScoreInput, scorer
from shipyard.evals._types import ScoreResult

_FILE_PATH = re.compile(r"^file://(?P<file>.+\.py)(?::(?P<fn>[A-Za-z_]\w*))?$")


def _load_file(path: str, fn: str, base: Path | None) -> Any:
    p = Path(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    if not p.is_file():
        raise ValueError(f"python: no file {p}")
    name = f"_shipyard_scorer_{abs(hash(str(p.resolve())))}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, p)
        if spec is None or spec.loader is None:
            raise ValueError(f"python: cannot load {p}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    try:
        return getattr(module, fn)
    except AttributeError:
        raise ValueError(f"python: {p} has no function {fn!r}") from None


def _import(path: str) -> Any:
    module_name, _, fn = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"python: cannot import {module_name!r}: {e}") from None
    try:
        return getattr(module, fn)
    except AttributeError:
        raise ValueError(f"python: module {module_name!r} has no {fn!r}") from None


def _context(inp: ScoreInput, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a promptfoo-style expression sees as `context` (promptfoo's `prompt`, `vars`, `test` and
    `config`, and Shipyard's facts of the interaction)."""
    from shipyard.evals._scorers_promptfoo import pf_context

    return {
        **pf_context(inp, config),
        "input": inp.user_input,
        "expected": inp.case.expected,
        "tool_calls": inp.tool_calls,
        "status": inp.status,
        "latency_ms": inp.latency_ms,
        "cost_usd": inp.cost_usd,
        "metadata": inp.case.metadata,
    }


def _promptfoo_result(out: Any) -> Any:
    """promptfoo's reading of a result: a number passes above 0; `pass_` is `pass`."""
    if isinstance(out, int | float) and not isinstance(out, bool):
        return ScoreResult("python", out > 0, float(out), f"returned {out:g}")
    if isinstance(out, dict) and "pass" not in out and "pass_" in out:
        return {**out, "pass": out["pass_"]}
    return out


@scorer("python")
def python(
    value: str, *, base_dir: str | None = None, promptfoo: bool = False, config: dict[str, Any] | None = None
) -> ScoreFn:
    """A custom scorer in Python.

    Args:
        value: `package.module:function` (called with the ScoreInput), `file://path.py:function`
            (called promptfoo-style as `function(output, context)`), or an inline expression using
            `output` and `context` (several lines: a function body that returns). The result may be
            a bool, a 0..1 number, a `{"pass", "score", "reason"}` dict or a ScoreResult.
        base_dir: the folder relative `file://` paths start from (default: the working directory).
        promptfoo: read results as promptfoo does (a number passes above 0, not at 0.5 and above).
        config: the assertion's `config`, given to the code as `context["config"]`."""
    built = _python(value, base_dir, config)
    if not promptfoo:
        return built
    return lambda inp: _promptfoo_result(built(inp))


def _python(value: str, base_dir: str | None, config: dict[str, Any] | None) -> ScoreFn:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("python: value must be an import path or a Python expression")
    text = value.strip()
    m = _FILE_PATH.match(text)
    if m:
        fn = _load_file(m.group("file"), m.group("fn") or "get_assert", Path(base_dir) if base_dir else None)
        return lambda inp: fn(inp.output, _context(inp, config))
    if MODULE_ATTR.match(text):
        target = _import(text)
        if not callable(target):
            raise ValueError(f"python: {text} is not callable")
        return target
    if "\n" in text:
        source = "def _scorer(output, context):\n" + textwrap.indent(text, "    ")
    else:
        source = f"def _scorer(output, context):\n    return ({text})"
    try:
        code = compile(source, "<python assertion>", "exec")
    except SyntaxError as e:
        raise ValueError(f"python: syntax error in {text.splitlines()[0]!r}: {e.msg}") from None
    namespace: dict[str, Any] = {"json": __import__("json"), "re": re}
    exec(code, namespace)  # the suite author's own scorer code, by design
    inline = namespace["_scorer"]
    return lambda inp: inline(inp.output, _context(inp, config))
