"""Evaluating flags: the store holding the current flag set, and `ctx.flags` for one interaction.

The hot path does no I/O and no parsing: targeting is compiled when a flag set is installed, and
installing a new set is one reference swap, so readers never see half a change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.flags._model import (
    FlagDefinition,
    FlagKind,
    FlagSet,
    SplitVariant,
    broken_rule,
    compile_targeting,
    has_targeting,
    load_flag_file,
)

if TYPE_CHECKING:  # the rule engine loads with the first flag that has targeting (most have none)
    from shipyard.flags._jsonlogic import Fn

_log = logging.getLogger("shipyard.flags")


class Reason(StrEnum):
    """Why a flag has its value (OpenFeature's reasons)."""

    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DEFAULT = "DEFAULT"
    DISABLED = "DISABLED"
    ERROR = "ERROR"


class ErrorCode(StrEnum):
    """What went wrong when the reason is ERROR (OpenFeature's error codes)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    PARSE_ERROR = "PARSE_ERROR"
    GENERAL = "GENERAL"


@dataclass(frozen=True, slots=True)
class EvaluationDetails:
    """The outcome of one evaluation. On ERROR or DISABLED, `value` is the caller's default."""

    flag: str
    value: Any
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The compact form the runtime puts on the trace."""
        out: dict[str, Any] = {"flag": self.flag, "variant": self.variant, "reason": self.reason.value}
        if self.error_code:
            out["error"] = self.error_code.value
        return out


@dataclass(frozen=True, slots=True)
class _Compiled:
    definition: FlagDefinition
    rule: Fn | None
    metadata: dict[str, Any]  # the flag set's metadata, overridden by the flag's (as flagd reports it)


def _variant_key(out: Any) -> str:
    """flagd turns a non-string targeting result into a variant name: true -> "true", 2 -> "2"."""
    if isinstance(out, bool):
        return "true" if out else "false"
    if isinstance(out, float) and out.is_integer():
        return str(int(out))
    return str(out)


def _fits(value: Any, kind: str | None) -> bool:
    if kind is None:
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, dict | list)  # object


def _rule(flag: FlagDefinition, flag_set: FlagSet) -> Fn | None:
    """The flag's compiled targeting, as flagd reads it (see `parse_flag_set`)."""
    if not has_targeting(flag.targeting):
        return None
    from shipyard.flags._jsonlogic import LogicError  # the rule engine loads with the first rule

    try:
        return compile_targeting(flag.name, flag.targeting, flag_set.evaluators, strict=False)
    except LogicError as e:
        return broken_rule(e)


Listener = Callable[[FlagSet], None]


class FlagStore:
    """Holds the current flag set and evaluates flags against a context.

    Args:
        flags: the initial flag set (default: none).
        source: where the set came from, for messages (a file path, "redis", ...).
        clock: seconds since the epoch, for `$flagd.timestamp` (tests may pass their own).
    """

    def __init__(
        self,
        flags: FlagSet | None = None,
        *,
        source: str = "<memory>",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._set = FlagSet()
        self._compiled: dict[str, _Compiled] = {}
        self.replace(flags or FlagSet())

    @classmethod
    def from_file(cls, path: Path | str) -> FlagStore:
        """A store holding the flags of a file (raises ConfigError when the file is invalid)."""
        return cls(load_flag_file(path), source=str(path))

    @property
    def flag_set(self) -> FlagSet:
        return self._set

    @property
    def revision(self) -> int:
        return self._set.revision

    def replace(self, flag_set: FlagSet) -> None:
        """Install a new flag set (compiled here, off the hot path) and tell the listeners."""
        compiled = {
            name: _Compiled(f, _rule(f, flag_set), {**flag_set.metadata, **f.metadata})
            for name, f in flag_set.flags.items()
        }
        if flag_set.warnings:  # loaded as flagd loads them; those flags resolve with PARSE_ERROR or default
            _log.warning(
                "flag rules that can only fail or give null in %s: %s",
                self.source,
                "; ".join(flag_set.warnings),
            )
        with self._lock:
            self._set, self._compiled = flag_set, compiled
            listeners = list(self._listeners)
        for listener in listeners:
            listener(flag_set)

    def on_change(self, listener: Listener) -> None:
        """Call `listener(flag_set)` after every `replace` (OpenFeature events, kill switches)."""
        with self._lock:
            self._listeners.append(listener)

    def get(self, name: str) -> FlagDefinition | None:
        c = self._compiled.get(name)
        return c.definition if c else None

    def metadata(self, name: str) -> dict[str, Any]:
        """The flag's metadata as flagd reports it: the flag set's, merged under the flag's own."""
        c = self._compiled.get(name)
        return c.metadata if c else {}

    def names(self) -> list[str]:
        return list(self._compiled)

    def evaluate(
        self, name: str, default: Any, context: Mapping[str, Any] | None = None, *, kind: str | None = None
    ) -> EvaluationDetails:
        """Evaluate flag `name` for `context`; never raises.

        Args:
            name: the flag key.
            default: returned on ERROR (unknown flag, wrong type, failed rule) and DISABLED.
            context: the evaluation context (targetingKey, user_id, session_id, agent, version, ...).
            kind: the type the caller wants (boolean, string, number, integer, object); another
                type gives the default with reason ERROR / TYPE_MISMATCH.
        """
        c = self._compiled.get(name)
        if c is None:
            return EvaluationDetails(
                name, default, None, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND, f"no flag named {name!r}"
            )
        flag = c.definition
        if flag.state != "ENABLED":
            return EvaluationDetails(name, default, None, Reason.DISABLED)
        variant = flag.default_variant
        reason = Reason.STATIC
        if c.rule is not None:
            data = dict(context) if context else {}
            data["$flagd"] = {"flagKey": name, "timestamp": int(self._clock())}
            try:
                out = c.rule(data)
            except Exception as e:  # a rule that fails on odd input must not fail the interaction
                return EvaluationDetails(
                    name, default, None, Reason.ERROR, ErrorCode.PARSE_ERROR, f"targeting failed: {e}"
                )
            if out is None:
                reason = Reason.DEFAULT
            else:
                variant = _variant_key(out)
                reason = Reason.SPLIT if isinstance(out, SplitVariant) else Reason.TARGETING_MATCH
                if variant not in flag.variants:
                    return EvaluationDetails(
                        name,
                        default,
                        None,
                        Reason.ERROR,
                        ErrorCode.GENERAL,
                        f"targeting chose {variant!r}, which is not a variant of {name!r}",
                    )
        if variant is None:
            return EvaluationDetails(name, default, None, Reason.DEFAULT)
        value = flag.variants[variant]
        if not _fits(value, kind):
            return EvaluationDetails(
                name,
                default,
                variant,
                Reason.ERROR,
                ErrorCode.TYPE_MISMATCH,
                f"flag {name!r} is a {flag.kind} flag, asked for a {kind}",
            )
        return EvaluationDetails(name, value, variant, reason)


def interaction_context(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    agent: str | None = None,
    version: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The evaluation context of one interaction. `targetingKey` is the user id when there is one
    (a user keeps their flags across sessions), else the session id."""
    ctx: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    for key, value in (
        ("session_id", session_id),
        ("user_id", user_id),
        ("agent", agent),
        ("version", version),
    ):
        if value is not None:
            ctx[key] = value
    targeting_key = user_id or session_id
    if targeting_key is not None:
        ctx.setdefault("targetingKey", targeting_key)
    return ctx


class FlagsForContext:
    """`ctx.flags` for one interaction: the agents' `Flags` protocol over a `FlagStore`.

    Args:
        store: where flags come from.
        context: the evaluation context (see `interaction_context`).
        on_evaluation: called with each evaluation's details (e.g. to add a span event).

    Every evaluation is also kept in `evaluations` (the last one per flag) for the trace.
    """

    __slots__ = ("_context", "_on_evaluation", "_seen", "store")

    def __init__(
        self,
        store: FlagStore,
        context: Mapping[str, Any] | None = None,
        *,
        on_evaluation: Callable[[EvaluationDetails], None] | None = None,
    ) -> None:
        self.store = store
        self._context = dict(context or {})
        self._on_evaluation = on_evaluation
        self._seen: dict[str, EvaluationDetails] = {}

    @property
    def context(self) -> dict[str, Any]:
        return self._context

    @property
    def evaluations(self) -> list[EvaluationDetails]:
        return list(self._seen.values())

    def details(self, name: str, default: Any, kind: FlagKind | str | None = None) -> EvaluationDetails:
        d = self.store.evaluate(name, default, self._context, kind=kind)
        self._seen[name] = d
        if self._on_evaluation is not None:
            self._on_evaluation(d)
        return d

    def enabled(self, name: str, default: bool = False) -> bool:
        return bool(self.details(name, default, "boolean").value)

    def string(self, name: str, default: str = "") -> str:
        return str(self.details(name, default, "string").value)

    def number(self, name: str, default: float = 0.0) -> float:
        return float(self.details(name, default, "number").value)

    def object(self, name: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
        d = self.details(name, default if default is not None else {}, "object")
        value = d.value
        return dict(value) if isinstance(value, dict) else {"value": value}
