"""Kill switches: a flag that turns itself off when the tools it guards start failing.

A flag's metadata carries the rule:

```json
"metadata": {"killSwitch": {"toolErrorRate": 0.2, "tools": ["process_refund"], "minCalls": 20, "window_s": 300}}
```

`KillSwitchMonitor.observe(record)` counts calls of the guarded tools in a sliding window (by the
interactions' own timestamps); once at least `minCalls` calls are in the window and the share that
failed reaches `toolErrorRate`, the flag is disabled and a `KillDecision` with the numbers is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
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
        self._windows: dict[str, deque[tuple[float, bool]]] = {}
        self._rules: list[KillSwitchRule] = []
        self._rules_of: FlagSet | None = None

    def _current_rules(self) -> list[KillSwitchRule]:
        fs = self.store.flag_set
        if fs is not self._rules_of:
            self._rules, self._rules_of = kill_switch_rules(fs), fs
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
                window = self._windows.setdefault(rule.flag, deque())
                for name, status in calls:
                    if name in rule.tools:
                        window.append((now, status in FAILED_STATUSES))
                horizon = now - rule.window_s
                while window and window[0][0] < horizon:
                    window.popleft()
                n = len(window)
                if n >= rule.min_calls:
                    errors = sum(1 for _, failed in window if failed)
                    if errors / n >= rule.tool_error_rate:
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
                self.admin.disable(rule.flag, decision=decision)
            else:
                flag = self.store.get(rule.flag)
                if flag is not None:
                    meta = {**flag.metadata, "killSwitchTripped": decision.to_dict()}
                    self.store.replace(
                        self.store.flag_set.with_flag(flag.replace(state="DISABLED", metadata=meta))
                    )
        except Exception:
            log.exception("kill switch: could not disable flag %r", rule.flag)
        self.decisions.append(decision)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision
