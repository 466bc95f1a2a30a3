"""Kill switches: a flag that turns itself off when the tools it guards start failing.

A flag's metadata carries the rule:

```json
"metadata": {"killSwitch": {"toolErrorRate": 0.2, "tools": ["process_refund"], "minCalls": 20, "window_s": 300}}
```

`KillSwitchMonitor.observe(record)` counts calls of the guarded tools in a sliding window (by the
interactions' own timestamps); once at least `minCalls` calls are in the window and the share that
failed reaches `toolErrorRate`, the flag is disabled and a `KillDecision` with the numbers is kept.

The decision needs two numbers, calls and failures in the window, so that is all a rule keeps: a
ring of `SLICES` + 1 counters, each for `window_s / SLICES` seconds. Its memory and the work per
observed call are the same at one call a minute or ten thousand a second. A call counts for at least
`window_s` after it was made and leaves the window within one slice (`window_s / 60`) after that.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shipyard.flags._model import FlagSet

if TYPE_CHECKING:
    from shipyard.flags._admin import FlagAdmin
    from shipyard.flags._evaluator import FlagStore
    from shipyard.store import InteractionRecord

log = logging.getLogger("shipyard.flags")

FAILED_STATUSES = frozenset({"error", "invalid_arguments", "not_found"})
"""Tool-call statuses counted as errors (`blocked` is a guardrail's decision, not a tool failure)."""

_KEYS = ("toolErrorRate", "tools", "minCalls", "window_s")

SLICES = 60
"""A rule's window is counted in this many slices (see the module docs)."""
_NONE = -(2**63)  # a ring slot that counts no slice yet


def check_kill_switch(raw: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems with a `killSwitch` metadata object, as (sub-path, message) pairs."""
    if not isinstance(raw, dict):
        return [((), "must be an object with toolErrorRate and tools")]
    out: list[tuple[tuple[str | int, ...], str]] = []
    for key in raw:
        if key not in _KEYS:
            out.append(((key,), f"unknown key (a kill switch has: {', '.join(_KEYS)})"))
    rate = raw.get("toolErrorRate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        out.append((("toolErrorRate",), f"must be a number in (0, 1], got {rate!r}"))
    tools = raw.get("tools")
    if not isinstance(tools, list) or not tools or not all(isinstance(t, str) and t for t in tools):
        out.append((("tools",), f"must be a non-empty list of tool names, got {tools!r}"))
    n = raw.get("minCalls", 20)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        out.append((("minCalls",), f"must be a whole number >= 1, got {n!r}"))
    w = raw.get("window_s", 300)
    if isinstance(w, bool) or not isinstance(w, int | float) or w <= 0:
        out.append((("window_s",), f"must be a number of seconds > 0, got {w!r}"))
    return out


@dataclass(frozen=True, slots=True)
class KillSwitchRule:
    flag: str
    tool_error_rate: float
    tools: frozenset[str]
    min_calls: int = 20
    window_s: float = 300.0


def kill_switch_rules(flag_set: FlagSet) -> list[KillSwitchRule]:
    """The kill-switch rules of the enabled flags of a (validated) flag set."""
    rules = []
    for f in flag_set.flags.values():
        raw = f.metadata.get("killSwitch")
        if f.enabled and isinstance(raw, dict) and not check_kill_switch(raw):
            rules.append(
                KillSwitchRule(
                    f.name,
                    float(raw["toolErrorRate"]),
                    frozenset(raw["tools"]),
                    int(raw.get("minCalls", 20)),
                    float(raw.get("window_s", 300)),
                )
            )
    return rules


class SlicedWindow:
    """Calls and failures over the last `window_s` seconds, in a ring of SLICES + 1 counters.

    Args:
        window_s: the window's length in seconds.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.width = window_s / SLICES
        n = SLICES + 1
        self._index = [_NONE] * n  # which slice (time // width) each slot counts now
        self._calls = [0] * n
        self._errors = [0] * n

    def add(self, at: float, calls: int, errors: int) -> None:
        """Count `calls` calls, `errors` of them failed, made at `at` (epoch seconds). A call older than
        the ring (a late record) is outside every window the ring can answer for, and is dropped."""
        index = math.floor(at / self.width)
        slot = index % len(self._index)
        if self._index[slot] != index:
            if self._index[slot] > index:
                return
            self._index[slot], self._calls[slot], self._errors[slot] = index, 0, 0
        self._calls[slot] += calls
        self._errors[slot] += errors

    def totals(self, now: float) -> tuple[int, int]:
        """(calls, errors) in the window that ends at `now`: every slice with a part after
        `now - window_s`."""
        oldest = math.floor((now - self.window_s) / self.width)
        calls = errors = 0
        for index, c, e in zip(self._index, self._calls, self._errors, strict=True):
            if index >= oldest:
                calls += c
                errors += e
        return calls, errors

    def clear(self) -> None:
        n = len(self._index)
        self._index, self._calls, self._errors = [_NONE] * n, [0] * n, [0] * n


@dataclass(frozen=True, slots=True)
class KillDecision:
    """A kill switch tripped: what was turned off, why, and the numbers it was decided on."""

    flag: str
    action: str  # "disabled"
    reason: str
    tools: list[str]
    calls: int
    errors: int
    error_rate: float
    threshold: float
    min_calls: int
    window_s: float
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class KillSwitchMonitor:
    """Watches interactions and trips the kill switches of the flags in `store`.

    Args:
        store: the flag store whose flags' kill switches are watched (and which is updated).
        admin: when given, a trip is made through it, so the change is written to the flag file and
            published to every replica; otherwise only `store` changes.
        on_decision: called with each decision (e.g. to store it or raise an alert).
    """

    def __init__(
        self,
        store: FlagStore,
        *,
        admin: FlagAdmin | None = None,
        on_decision: Callable[[KillDecision], None] | None = None,
    ) -> None:
        self.store = store
        self.admin = admin
        self.on_decision = on_decision
        self.decisions: list[KillDecision] = []
        self._lock = threading.Lock()
        self._windows: dict[str, SlicedWindow] = {}  # by flag: one ring of counters per rule
        self._rules: list[KillSwitchRule] = []
        self._rules_of: FlagSet | None = None

    def _current_rules(self) -> list[KillSwitchRule]:
        fs = self.store.flag_set
        if fs is not self._rules_of:
            self._rules, self._rules_of = kill_switch_rules(fs), fs
            with self._lock:  # a rule that is gone, or whose window changed, starts afresh
                kept = {r.flag: r.window_s for r in self._rules}
                self._windows = {flag: w for flag, w in self._windows.items() if kept.get(flag) == w.window_s}
        return self._rules

    def observe(self, record: InteractionRecord) -> list[KillDecision]:
        """Count the record's calls of guarded tools; return the decisions this record caused."""
        return self.observe_calls(((c.name, c.status) for c in record.tool_calls), at=record.created_at)

    def observe_calls(
        self, calls: Iterable[tuple[str, str]], *, at: float | None = None
    ) -> list[KillDecision]:
        """Like `observe`, from (tool name, status) pairs seen at time `at` (default: now)."""
        rules = self._current_rules()
        if not rules:
            return []
        now = time.time() if at is None else at
        calls = list(calls)
        tripped: list[tuple[KillSwitchRule, int, int]] = []
        with self._lock:
            for rule in rules:
                window = self._windows.get(rule.flag)
                if window is None:
                    window = self._windows[rule.flag] = SlicedWindow(rule.window_s)
                guarded = [status in FAILED_STATUSES for name, status in calls if name in rule.tools]
                if guarded:
                    window.add(now, len(guarded), sum(guarded))
                n, errors = window.totals(now)
                if n >= rule.min_calls and errors / n >= rule.tool_error_rate:
                    tripped.append((rule, n, errors))
                    window.clear()
        return [self._trip(rule, n, errors, now) for rule, n, errors in tripped]

    def _trip(self, rule: KillSwitchRule, calls: int, errors: int, at: float) -> KillDecision:
        rate = errors / calls
        tools = sorted(rule.tools)
        decision = KillDecision(
            flag=rule.flag,
            action="disabled",
            reason=(
                f"tool error rate {rate:.1%} of {', '.join(tools)} ({errors}/{calls} calls in the last "
                f"{rule.window_s:g}s) reached the kill switch threshold {rule.tool_error_rate:.1%}"
            ),
            tools=tools,
            calls=calls,
            errors=errors,
            error_rate=rate,
            threshold=rule.tool_error_rate,
            min_calls=rule.min_calls,
            window_s=rule.window_s,
            at=at,
        )
        log.warning("kill switch: flag %r disabled: %s", rule.flag, decision.reason)
        try:
            if self.admin is not None:
                try:
                    self.admin.disable(rule.flag, decision=decision)
                except Exception:  # e.g. the store is unreachable: fail closed on this replica at least
                    log.exception(
                        "kill switch: could not store flag %r disabled; disabling it here", rule.flag
                    )
                    self._disable_locally(rule.flag, decision)
            else:
                self._disable_locally(rule.flag, decision)
        except Exception:
            log.exception("kill switch: could not disable flag %r", rule.flag)
        self.decisions.append(decision)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision

    def _disable_locally(self, name: str, decision: KillDecision) -> None:
        flag = self.store.get(name)
        if flag is not None:
            meta = {**flag.metadata, "killSwitchTripped": decision.to_dict()}
            self.store.replace(self.store.flag_set.with_flag(flag.replace(state="DISABLED", metadata=meta)))
