"""The learned router: "which tier was enough for this kind of request", fitted on eval results.

For each eval case we know, per tier, the share of its repeats that passed and what it cost. The tier
that was *enough* for a case is the cheapest one that passed as often as the best tier did. One
logistic regression per tier boundary (hashed words and bigrams of the request plus its length and
structure) estimates the chance that a request needs more than that tier. A request goes to the
cheapest tier whose "needs more" chance is under a threshold; the threshold is calibrated on
cross-validated predictions as the cheapest one that keeps the pass rate within `max_pass_rate_loss`
of the reference tier (RouteLLM's calibration, on the project's own cases)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard._atomic import atomic_write
from shipyard.errors import ShipyardError
from shipyard.routing._features import NUMERIC, RouteRequest, hashed_terms, numeric_features

DIMS = 2048
FORMAT = 1
_L2 = 0.01
_STEPS = 400
_RATE = 0.5
_FOLDS = 5


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """One eval case run on every tier: its request, and per tier the pass share and mean cost."""

    key: str
    user: str
    passed: dict[str, float]
    cost: dict[str, float]


@dataclass(slots=True)
class Calibration:
    """What the fit measured on cross-validated predictions (the numbers the threshold was chosen on)."""

    cases: int
    threshold: float
    pass_rate: float
    reference_pass_rate: float
    cost: float
    reference_cost: float
    max_pass_rate_loss: float
    tier_share: dict[str, float] = field(default_factory=dict)

    @property
    def saved(self) -> float:
        return 1 - self.cost / self.reference_cost if self.reference_cost > 0 else 0.0


def _row(r: RouteRequest) -> np.ndarray:
    x = np.zeros(DIMS + len(NUMERIC))
    for i, v in hashed_terms(r, DIMS).items():
        x[i] = v
    feats = numeric_features(r)
    for j, k in enumerate(NUMERIC):
        x[DIMS + j] = feats[k]
    return x


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by full-batch gradient descent (small data: exact enough)."""
    n, d = x.shape
    mean = float(y.mean()) if n else 0.0
    if mean in (0.0, 1.0):  # one class only: a constant
        return np.zeros(d), (8.0 if mean == 1.0 else -8.0)
    # A column that is zero in every row has no gradient but the L2 term's, so its weight stays 0: the
    # descent runs on the columns the rows use (a few hundred of the hashed DIMS), with the same result.
    used = np.flatnonzero(np.any(x != 0, axis=0))
    xu = x[:, used]
    wu = np.zeros(len(used))
    b = float(np.log(mean / (1 - mean)))
    for _ in range(_STEPS):
        p = 1 / (1 + np.exp(-(xu @ wu + b)))
        g = p - y
        wu -= _RATE * (xu.T @ g / n + _L2 * wu)
        b -= _RATE * float(g.mean())
    w = np.zeros(d)
    w[used] = wu
    return w, b


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-z)))


def _choose(p: np.ndarray, threshold: float, min_confidence: float = 0.0) -> np.ndarray:
    """The tier index per row: the first boundary whose "needs more" chance is under the threshold;
    one tier up when that decision is less confident than `min_confidence` (as routing escalates)."""
    n, boundaries = p.shape
    out = np.full(n, boundaries, dtype=int)
    for k in range(boundaries - 1, -1, -1):
        out = np.where(p[:, k] < threshold, k, out)
    if min_confidence > 0:
        deciding = p[np.arange(n), np.minimum(out, boundaries - 1)]
        low = np.abs(deciding - threshold) / max(threshold, 1 - threshold) < min_confidence
        out = np.where(low & (out < boundaries), out + 1, out)
    return out


class LearnedRouter:
    """A fitted router (`shipyard routing fit`), saved as JSON in the project.

    Args:
        tiers: the tiers, cheapest first.
        weights: per boundary (between tier k and k+1) the weights and bias.
        threshold: a request needs more than tier k when its chance is at least this.
        calibration: what the fit measured."""

    name = "learned"

    def __init__(
        self,
        agent: str,
        tiers: list[str],
        weights: list[tuple[np.ndarray, float]],
        threshold: float,
        calibration: Calibration,
        suites: list[str],
    ) -> None:
        self.agent = agent
        self.tiers = tiers
        self.weights = weights
        self.threshold = threshold
        self.calibration = calibration
        self.suites = suites
        self._lists = [(w.tolist(), b) for w, b in weights]  # plain floats: a decision reads a few dozen

    def chances(self, r: RouteRequest) -> list[float]:
        """Per tier boundary, the chance the request needs more than the tier below it. Sparse: a
        request has a few dozen terms of the DIMS slots."""
        terms = hashed_terms(r, DIMS)
        feats = numeric_features(r)
        out = []
        for w, b in self._lists:
            z = b + sum(w[i] * v for i, v in terms.items())
            z += sum(w[DIMS + j] * feats[k] for j, k in enumerate(NUMERIC))
            out.append(1 / (1 + math.exp(-z)))
        return out

    def decide(self, r: RouteRequest) -> tuple[str, float, list[str]]:
        """The tier, the confidence (0..1: how far the deciding chance is from the threshold) and why."""
        p = self.chances(r)
        t = self.threshold
        k = int(_choose(np.array([p]), t)[0])
        # the chance that decided: the boundary the request stopped under, or the last one it passed
        deciding = p[k] if k < len(p) else p[-1]
        confidence = abs(deciding - t) / max(t, 1 - t)
        needs = ", ".join(f"P(>{self.tiers[i]})={v:.2f}" for i, v in enumerate(p))
        return self.tiers[k], min(1.0, confidence), [f"learned {needs} vs threshold {t:.2f}"]

    # persistence ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "agent": self.agent,
            "tiers": self.tiers,
            "dims": DIMS,
            "numeric": list(NUMERIC),
            "threshold": self.threshold,
            "boundaries": [
                {"bias": b, "weights": {str(i): round(float(v), 6) for i, v in enumerate(w) if abs(v) > 1e-9}}
                for w, b in self.weights
            ],
            "suites": self.suites,
            "calibration": {
                "cases": self.calibration.cases,
                "threshold": self.calibration.threshold,
                "pass_rate": self.calibration.pass_rate,
                "reference_pass_rate": self.calibration.reference_pass_rate,
                "cost": self.calibration.cost,
                "reference_cost": self.calibration.reference_cost,
                "max_pass_rate_loss": self.calibration.max_pass_rate_loss,
                "tier_share": self.calibration.tier_share,
            },
            "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path, tiers: list[str]) -> LearnedRouter:
        """Read a fitted router; RouterNotFitted when the file is missing, ShipyardError when it does
        not fit the configured tiers or cannot be read."""
        if not path.is_file():
            raise RouterNotFitted(
                f"routing: no fitted router at {path}",
                hint="run `shipyard routing fit --agent AGENT --suite SUITE` to fit it on your eval results",
            )
        try:
            data = json.loads(path.read_text())
            if (
                data.get("format") != FORMAT
                or data.get("dims") != DIMS
                or data.get("numeric") != list(NUMERIC)
            ):
                raise ValueError("it was written by another version of Shipyard")
            weights = []
            for bnd in data["boundaries"]:
                w = np.zeros(DIMS + len(NUMERIC))
                for i, v in bnd["weights"].items():
                    w[int(i)] = float(v)
                weights.append((w, float(bnd["bias"])))
            c = data["calibration"]
            calibration = Calibration(
                cases=int(c["cases"]),
                threshold=float(c["threshold"]),
                pass_rate=float(c["pass_rate"]),
                reference_pass_rate=float(c["reference_pass_rate"]),
                cost=float(c["cost"]),
                reference_cost=float(c["reference_cost"]),
                max_pass_rate_loss=float(c["max_pass_rate_loss"]),
                tier_share={str(k): float(v) for k, v in c.get("tier_share", {}).items()},
            )
            router = cls(
                str(data["agent"]),
                list(data["tiers"]),
                weights,
                float(data["threshold"]),
                calibration,
                list(data.get("suites", [])),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ShipyardError(
                f"routing: the fitted router {path} cannot be read: {e}",
                hint="fit it again with `shipyard routing fit`",
            ) from None
        if router.tiers != tiers:
            raise ShipyardError(
                f"routing: the fitted router {path} routes between {', '.join(router.tiers)}, but the "
                f"configured tiers are {', '.join(tiers)}",
                hint="fit it again with `shipyard routing fit` after changing routing.tiers",
            )
        if len(router.weights) != len(tiers) - 1:
            raise ShipyardError(f"routing: the fitted router {path} is damaged (wrong number of boundaries)")
        return router


class RouterNotFitted(ShipyardError):
    """`router: learned` is configured but no fitted router file exists yet."""


def enough_tier(c: CaseOutcome, tiers: Sequence[str]) -> int:
    """The index of the cheapest tier that passed as often as the best tier did."""
    best = max(c.passed.get(t, 0.0) for t in tiers)
    for i, t in enumerate(tiers):
        if c.passed.get(t, 0.0) >= best - 1e-9:
            return i
    return len(tiers) - 1


def _train(x: np.ndarray, needed: np.ndarray, boundaries: int) -> list[tuple[np.ndarray, float]]:
    return [_fit_logistic(x, (needed > k).astype(float)) for k in range(boundaries)]


def _predict(weights: list[tuple[np.ndarray, float]], x: np.ndarray) -> np.ndarray:
    return np.stack([_sigmoid(x @ w + b) for w, b in weights], axis=1)


def fit(
    agent: str,
    cases: Sequence[CaseOutcome],
    tiers: list[str],
    reference: str,
    max_pass_rate_loss: float,
    suites: list[str],
    min_confidence: float = 0.0,
) -> LearnedRouter:
    """Fit the learned router on cases run on every tier (cheapest tier first in `tiers`).

    The threshold is chosen on out-of-fold predictions (5 folds; leave-one-out below 10 cases), so
    the pass rate it promises is one measured on cases each fold did not learn from, with routing's
    low-confidence escalation (`min_confidence`) applied as it will be when routing."""
    if len(cases) < 4:
        raise ShipyardError(
            f"routing fit needs at least 4 eval cases run on every tier, got {len(cases)}",
            hint="fit on a larger suite (the post-merge suite is a good start)",
        )
    n = len(cases)
    x = np.stack([_row(RouteRequest.from_input(agent, c.user)) for c in cases])
    needed = np.array([enough_tier(c, tiers) for c in cases])
    passed = np.array([[c.passed.get(t, 0.0) for t in tiers] for c in cases])
    cost = np.array([[c.cost.get(t, 0.0) for t in tiers] for c in cases])
    boundaries = len(tiers) - 1
    folds = _FOLDS if n >= 10 else n
    order = np.random.default_rng(0).permutation(n)
    oof = np.zeros((n, boundaries))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        oof[test] = _predict(_train(x[train], needed[train], boundaries), x[test])
    ref = tiers.index(reference)
    ref_pass = float(passed[:, ref].mean())
    ref_cost = float(cost[:, ref].mean())
    rows = np.arange(n)
    best: tuple[float, float, float] | None = None  # (cost, -pass, threshold)
    for t in sorted({0.0, 1.0001, *(float(v) + 1e-9 for v in oof.ravel())}):
        chosen = _choose(oof, t, min_confidence)
        p = float(passed[rows, chosen].mean())
        if p < ref_pass - max_pass_rate_loss - 1e-9:
            continue
        candidate = (float(cost[rows, chosen].mean()), -p, t)
        if best is None or candidate < best:
            best = candidate
    if best is None:  # nothing keeps the pass rate (the reference is not the top tier): the top tier
        best = (float(cost[:, -1].mean()), -float(passed[:, -1].mean()), 0.0)
    c_cost, neg_pass, threshold = best
    threshold = min(threshold, 1.0)
    chosen = _choose(oof, threshold, min_confidence)
    share = {t: float((chosen == i).mean()) for i, t in enumerate(tiers)}
    calibration = Calibration(
        cases=n,
        threshold=threshold,
        pass_rate=-neg_pass,
        reference_pass_rate=ref_pass,
        cost=c_cost,
        reference_cost=ref_cost,
        max_pass_rate_loss=max_pass_rate_loss,
        tier_share=share,
    )
    return LearnedRouter(agent, list(tiers), _train(x, needed, boundaries), threshold, calibration, suites)
