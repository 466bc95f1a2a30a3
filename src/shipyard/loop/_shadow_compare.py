"""Comparing a candidate with the baseline it shadows, one recorded interaction at a time, and
reporting only the differences above the baseline's own noise.

Each recorded interaction runs three times (Diffy's design): twice on the version that served it
(`primary`, `secondary`) and once on the candidate. Per kind (status, trajectory, output, guardrail
verdicts, cost, latency) an interaction is

- `noisy` when the two baseline runs already differ by the kind's own rule: nothing is said of the
  candidate there;
- `different` when the baseline agreed with itself and the candidate falls outside it;
- `same` otherwise.

Across the run, a kind's differences are reported only when they exceed its noise: with noise rate
p (the share of noisy interactions), getting at least the observed number of differences out of the
interactions compared must be unlikely (one-sided binomial tail below `alpha`). A nondeterministic
field is then never reported because the candidate, like the baseline, varies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from shipyard.config import ShadowConfig
from shipyard.evals import rouge1_f1
from shipyard.store import InteractionRecord

KINDS = ("status", "trajectory", "output", "guardrails", "cost", "latency")
SAME, NOISY, DIFFERENT = "same", "noisy", "different"


def trajectory(r: InteractionRecord) -> list[str]:
    """The tools called with their arguments, in order (`name {"arg": ...}`)."""
    return [
        f"{t.name} {orjson.dumps(t.arguments, option=orjson.OPT_SORT_KEYS, default=str).decode()}"
        for t in r.tool_calls
    ]


def guardrail_verdicts(r: InteractionRecord) -> list[str]:
    """The guardrail verdicts that were not `allow` (`name:verdict`), sorted."""
    return sorted(f"{g.get('name')}:{g.get('verdict')}" for g in r.guardrails)


@dataclass(slots=True)
class KindResult:
    """One kind of one interaction: same | noisy | different, with the values compared."""

    state: str
    baseline: Any
    candidate: Any
    secondary: Any = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"state": self.state, "baseline": self.baseline, "candidate": self.candidate}
        if self.state == NOISY:
            d["secondary"] = self.secondary
        if self.detail:
            d["detail"] = self.detail
        return d


def _categorical(a: Any, b: Any, c: Any) -> KindResult:
    if a != b:
        return KindResult(NOISY, a, c, b)
    return KindResult(DIFFERENT if c != a else SAME, a, c)


def _numbers(a: float, b: float, c: float, ratio: float, min_delta: float, unit: str) -> KindResult:
    lo, hi = min(a, b), max(a, b)

    def apart(x: float, y: float) -> bool:  # y outside x's band: too far by ratio and by delta
        small, large = min(x, y), max(x, y)
        return large - small > min_delta and (small <= 0 or large / small > ratio)

    if apart(lo, hi):
        return KindResult(NOISY, a, c, b)
    outside = (c > hi and apart(hi, c)) or (c < lo and apart(lo, c))
    detail = f"{unit}: baseline {lo:.6g}..{hi:.6g}, candidate {c:.6g}" if outside else ""
    return KindResult(DIFFERENT if outside else SAME, a, c, detail=detail)


def _output(a: str, b: str, c: str, cfg: ShadowConfig) -> KindResult:
    o = cfg.output
    agree = rouge1_f1(a, b) if a != b else 1.0
    if agree < o.similarity:
        return KindResult(NOISY, a, c, b, detail=f"baseline agrees with itself at {agree:.2f}")
    close = max(rouge1_f1(c, a) if c != a else 1.0, rouge1_f1(c, b) if c != b else 1.0)
    differs = close < o.similarity and close < agree - o.margin
    detail = f"similarity {close:.2f} (baseline {agree:.2f})"
    return KindResult(DIFFERENT if differs else SAME, a, c, detail=detail)


def compare(
    primary: InteractionRecord, secondary: InteractionRecord, candidate: InteractionRecord, cfg: ShadowConfig
) -> dict[str, KindResult]:
    """Each kind of one interaction: the candidate against the baseline's two runs."""
    a, b, c = primary, secondary, candidate
    return {
        "status": _categorical(a.status, b.status, c.status),
        "trajectory": _categorical(trajectory(a), trajectory(b), trajectory(c)),
        "output": _output(a.output, b.output, c.output, cfg),
        "guardrails": _categorical(guardrail_verdicts(a), guardrail_verdicts(b), guardrail_verdicts(c)),
        "cost": _numbers(a.cost_usd, b.cost_usd, c.cost_usd, cfg.cost.ratio, cfg.cost.min_delta, "USD"),
        "latency": _numbers(
            a.latency_ms, b.latency_ms, c.latency_ms, cfg.latency.ratio, cfg.latency.min_delta, "ms"
        ),
    }


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


@dataclass(slots=True)
class KindSummary:
    """One kind over a run: how many interactions were compared, noisy and different, and whether
    the differences are above the noise (`p_value` < alpha)."""

    kind: str
    compared: int = 0
    noisy: int = 0
    different: int = 0
    p_value: float = 1.0
    reported: bool = False

    @property
    def noise_rate(self) -> float:
        return self.noisy / self.compared if self.compared else 0.0

    @property
    def difference_rate(self) -> float:
        return self.different / self.compared if self.compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "compared": self.compared,
            "noisy": self.noisy,
            "different": self.different,
            "noise_rate": round(self.noise_rate, 4),
            "difference_rate": round(self.difference_rate, 4),
            "p_value": round(self.p_value, 6),
            "reported": self.reported,
        }


@dataclass(slots=True)
class NoiseFilter:
    """Counts per kind over a run and decides which kinds' differences are above the noise."""

    alpha: float
    kinds: dict[str, KindSummary] = field(default_factory=lambda: {k: KindSummary(k) for k in KINDS})

    def add(self, results: dict[str, KindResult]) -> None:
        for kind, r in results.items():
            s = self.kinds[kind]
            s.compared += 1
            s.noisy += r.state == NOISY
            s.different += r.state == DIFFERENT

    def decide(self) -> dict[str, KindSummary]:
        for s in self.kinds.values():
            s.p_value = binomial_tail(s.different, s.compared, s.noise_rate)
            s.reported = s.different > 0 and s.p_value < self.alpha
        return self.kinds

    def reported(self, results: dict[str, KindResult]) -> list[str]:
        """The kinds of one interaction's differences that are above the noise (after `decide`)."""
        return [k for k, r in results.items() if r.state == DIFFERENT and self.kinds[k].reported]


WORSE_STATUS: dict[str, int] = {"completed": 0, "escalated": 1, "blocked": 2, "failed": 3}


def regression(results: dict[str, KindResult], reported: list[str]) -> str | None:
    """Why the candidate did worse on this interaction, in a kind reported above the noise (a worse
    status, a new guardrail verdict), or None. Other differences are changes for people to read."""
    s = results["status"]
    if "status" in reported and WORSE_STATUS.get(s.candidate, 3) > WORSE_STATUS.get(s.baseline, 3):
        return f"status {s.baseline} -> {s.candidate}"
    g = results["guardrails"]
    if "guardrails" in reported:
        new = sorted(set(g.candidate) - set(g.baseline))
        if new:
            return "new guardrail verdicts: " + ", ".join(new)
    return None
