"""The scorer registry: `@scorer("name")` registers a factory that returns a scoring function.

A factory's first parameter receives the assertion's `value`; its keyword-only parameters are the
options a suite may set (each with a default, documented in the docstring). The factory checks its
options and raises `ValueError` for bad ones, so a misconfigured scorer is found before a run starts.
The scoring function takes a `ScoreInput` and returns a `ScoreResult` (or a bool, a 0..1 float, or a
`{"pass", "score", "reason"}` dict), sync or async.

    @scorer("shouts")
    def shouts(value: None = None, *, min_ratio: float = 0.5) -> ScoreFn:
        \"\"\"Passes when most letters are upper case.

        Args:
            min_ratio: the share of upper-case letters needed.\"\"\"
        def score(inp: ScoreInput) -> ScoreResult:
            ...
        return score
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.evals._types import ScoreResult
from shipyard.plugins import Registry

if TYPE_CHECKING:
    from shipyard.evals._judge import JudgeHandle
    from shipyard.evals._suite import Assertion, Case

ScoreFn = Callable[["ScoreInput"], Any]
Factory = Callable[..., ScoreFn]

NEGATE_PREFIXES = ("not-", "not_")


@dataclass(slots=True)
class ScoreInput:
    """Everything a scorer may look at for one case repeat.

    `tool_calls` are `{name, arguments, status, turn}` dicts across all turns (turn: 0-based); `turn_outputs` holds each
    turn's reply of a conversation (the last equals `output`); `cost_usd` is what the agent's model
    calls cost (priced from their tokens when replayed); `system_prompt` is the version's rendered
    system prompt (for leak checks); `judge` calls a configured judge model; `spans` are the
    interaction's finished spans (`SpanRecord`s of every turn: model calls with their finish reasons,
    tool calls), for checks on the trace."""

    case: Case
    output: str
    status: str = "completed"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    system_prompt: str = ""
    judge: JudgeHandle | None = None
    replayed: bool = False
    turn_outputs: list[str] = field(default_factory=list)
    user_input: str = ""
    spans: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class ScorerInfo:
    """A registered scorer factory and what its signature allows."""

    name: str
    factory: Factory
    value_param: str | None  # the parameter that receives the assertion's `value`
    value_required: bool
    options: tuple[str, ...]  # keyword options a suite may set
    takes_threshold: bool
    doc: str


SCORERS: Registry[Factory] = Registry("scorer")
"""Scorer factories by assertion type; `@scorer` registers into it (built-ins and plugins alike)."""

_INFO: dict[tuple[str, Factory], ScorerInfo] = {}


def scorer(name: str, *, override: bool = False) -> Callable[[Factory], Factory]:
    """Register a scorer factory under `name` (also reachable with `-` for `_`, and `not-name`).

    Args:
        name: the assertion type suites write.
        override: replace a scorer already registered under `name` (a built-in, say); without it a
            taken name raises `shipyard.plugins.PluginConflictError`."""

    def deco(factory: Factory) -> Factory:
        _info(name, factory)  # a signature it cannot describe fails here, at registration
        SCORERS.add(name, factory, override=override)
        return factory

    return deco


def _info(name: str, factory: Factory) -> ScorerInfo:
    found = _INFO.get((name, factory))
    if found is not None:
        return found
    params = list(inspect.signature(factory).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    value = positional[0] if positional else None
    options = tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY)
    found = _INFO[(name, factory)] = ScorerInfo(
        name=name,
        factory=factory,
        value_param=value.name if value else None,
        value_required=value is not None and value.default is inspect.Parameter.empty,
        options=tuple(o for o in options if o != "threshold"),
        takes_threshold="threshold" in options,
        doc=inspect.getdoc(factory) or "",
    )
    return found


def scorer_names() -> list[str]:
    """Every registered scorer name."""
    return SCORERS.names()


@functools.lru_cache(maxsize=1024)  # a suite names a few types, once per case
def split_type(type_: str) -> tuple[str, bool]:
    """`not-contains` -> (`contains`, True); `starts-with` -> (`starts_with`, False)."""
    t = type_.strip().lower()
    negate = t.startswith(NEGATE_PREFIXES)
    if negate:
        t = t[4:]
    return t.replace("-", "_"), negate


def scorer_info(type_: str) -> ScorerInfo:
    """The registered scorer an assertion type names; ValueError listing the known ones otherwise."""
    base, _ = split_type(type_)
    if base not in SCORERS:
        raise ValueError(SCORERS.unknown_message(type_, label="assertion type", note="prefix not- to negate"))
    return _info(base, SCORERS.get(base))


def check_options(type_: str, options: dict[str, Any]) -> None:
    """ValueError when an option is not one the scorer takes."""
    _check_options(type_, scorer_info(type_), options)


def _check_options(type_: str, info: ScorerInfo, options: dict[str, Any]) -> None:
    if not options:
        return
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        allowed = ", ".join(info.options) or "none"
        raise ValueError(f"{type_}: unknown option(s) {', '.join(unknown)} (options: {allowed})")


@dataclass(slots=True)
class BuiltScorer:
    """A scorer ready to run: the function, and how its verdict counts for the case."""

    name: str
    fn: ScoreFn
    weight: float = 1.0
    negate: bool = False
    threshold: float | None = None  # applied here when the factory takes no threshold itself
    models: tuple[str, ...] = ()  # judge model keys it needs (checked against shipyard.yaml)
    turn: int | None = None  # scores that turn's reply of a conversation instead of the last one

    async def __call__(self, inp: ScoreInput) -> ScoreResult:
        """Run the scorer; a crash is an undecided result (ERROR), never an exception."""
        now = self.score_now(inp)
        return now if isinstance(now, ScoreResult) else await now

    def score_now(self, inp: ScoreInput) -> ScoreResult | Awaitable[ScoreResult]:
        """As `__call__`, but a scorer that returns its verdict at once (most do) is scored here and
        now, with no task: the result, or what to await for it (a judge's, say)."""
        try:
            out = self.fn(inp)
        except Exception as e:  # a scorer's bug must not stop the run: the repeat becomes ERROR
            return self._failed(e)
        if inspect.isawaitable(out):
            return self._settle(out)
        return self._finish(out)

    async def _settle(self, out: Awaitable[Any]) -> ScoreResult:
        try:
            return self._finish(await out)
        except Exception as e:
            return self._failed(e)

    def _failed(self, e: Exception) -> ScoreResult:
        return ScoreResult(
            self.name, None, reason="scorer failed", weight=self.weight, error=f"{type(e).__name__}: {e}"
        )

    def _finish(self, out: Any) -> ScoreResult:
        try:
            result = coerce_result(self.name, out)
        except Exception as e:
            return self._failed(e)
        result.scorer = self.name
        result.weight = self.weight
        if self.threshold is not None and result.passed is not None:
            result.passed = result.score >= self.threshold
            result.details.setdefault("threshold", self.threshold)
        if self.negate and result.passed is not None:
            result.passed = not result.passed
            result.score = 1.0 - result.score
            result.reason = f"negated: {result.reason}" if result.reason else "negated"
        return result


def coerce_result(name: str, out: Any) -> ScoreResult:
    """Turn what a scoring function returned into a ScoreResult."""
    if isinstance(out, ScoreResult):
        return out
    if isinstance(out, bool):
        return ScoreResult(name, out, 1.0 if out else 0.0, f"returned {out}")
    if isinstance(out, int | float) and math.isfinite(out):
        score = min(max(float(out), 0.0), 1.0)
        return ScoreResult(name, score >= 0.5, score, f"score {score:.2f}")
    if isinstance(out, dict) and "pass" in out:
        passed = out["pass"]
        if not isinstance(passed, bool):
            raise TypeError(f"'pass' must be true or false, got {passed!r}")
        score = out.get("score", 1.0 if passed else 0.0)
        return ScoreResult(name, passed, float(score), reason=str(out.get("reason", "")))
    raise TypeError(
        f"a scorer must return ScoreResult, bool, a 0..1 number or a dict with 'pass'; got {out!r}"
    )


def build_scorer(assertion: Assertion, *, value: Any = None) -> BuiltScorer:
    """Make the scoring function an assertion describes. Raises ValueError / TypeError when it is
    misconfigured (bad regex, bad schema, unknown option, missing value).

    Args:
        assertion: the assertion from the suite.
        value: used instead of `assertion.value` when given (the `expected` text of a case)."""
    info = scorer_info(assertion.type)
    _, negate = split_type(assertion.type)
    options = assertion.options
    _check_options(assertion.type, info, options)
    v = assertion.value if value is None else value
    args: list[Any] = []
    if info.value_param is not None:
        if v is None and info.value_required:
            raise ValueError(f"{assertion.type}: needs a value")
        if v is not None:
            args.append(v)
    elif v is not None:
        raise ValueError(f"{assertion.type}: takes no value (options: {', '.join(info.options) or 'none'})")
    kwargs = dict(options)
    threshold = assertion.threshold
    if info.takes_threshold and threshold is not None:
        kwargs["threshold"] = threshold
        threshold = None
    fn = info.factory(*args, **kwargs)
    models = tuple(getattr(fn, "models", ()))
    return BuiltScorer(assertion.type, fn, assertion.weight, negate, threshold, models)


__all__ = [
    "SCORERS",
    "BuiltScorer",
    "Factory",
    "ScoreFn",
    "ScoreInput",
    "ScorerInfo",
    "build_scorer",
    "check_options",
    "coerce_result",
    "scorer",
    "scorer_info",
    "scorer_names",
    "split_type",
]
