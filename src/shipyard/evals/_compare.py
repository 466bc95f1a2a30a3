"""Comparing two runs case by case: what regressed, improved, became flaky, still fails, is new or gone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.evals._stats import CaseStats, RunSummary
from shipyard.evals._types import Outcome


@dataclass(slots=True)
class CaseChange:
    """One case seen in one or both runs. `case_id` is the case's key (`suite/case_id`); `before`/`after`
    are k-of-n (``"2/3"``), None when absent."""

    case_id: str
    category: str
    before: str | None
    after: str | None
    before_outcome: str | None
    after_outcome: str | None
    reasons: list[str] = field(default_factory=list)  # why it does not pass now (or did not before)

    @classmethod
    def of(cls, a: CaseStats | None, b: CaseStats | None) -> CaseChange:
        some = b or a
        assert some is not None
        reasons = b.reasons if b is not None and b.outcome != Outcome.PASS else (a.reasons if a else [])
        return cls(
            case_id=some.key,
            category=some.category,
            before=a.k_of_n if a else None,
            after=b.k_of_n if b else None,
            before_outcome=a.outcome if a else None,
            after_outcome=b.outcome if b else None,
            reasons=list(reasons),
        )


@dataclass(slots=True)
class Comparison:
    """Run `run_a` (before) against `run_b` (after). A case appears in `became_flaky` as well as in
    `regressed` when it went from always passing to passing only some repeats."""

    run_a: str
    run_b: str
    regressed: list[CaseChange] = field(default_factory=list)  # passed in a, not in b
    improved: list[CaseChange] = field(default_factory=list)  # not passed in a, passed in b
    became_flaky: list[CaseChange] = field(default_factory=list)  # flaky in b, not in a
    still_failing: list[CaseChange] = field(default_factory=list)
    new: list[CaseChange] = field(default_factory=list)  # only in b
    removed: list[CaseChange] = field(default_factory=list)  # only in a
    unchanged: int = 0  # passed in both, not newly flaky

    @property
    def changed(self) -> bool:
        return bool(self.regressed or self.improved or self.became_flaky or self.new or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_runs(a: RunSummary, b: RunSummary) -> Comparison:
    """Compare two run summaries case by case (cases are matched by suite and id).

    Args:
        a: the earlier run (the baseline).
        b: the later run (the candidate).
    """
    before = {c.key: c for c in a.cases}
    after = {c.key: c for c in b.cases}
    out = Comparison(run_a=a.run_id, run_b=b.run_id)
    for case_id, cb in after.items():
        ca = before.get(case_id)
        if ca is None:
            out.new.append(CaseChange.of(None, cb))
            continue
        change = CaseChange.of(ca, cb)
        was, now = ca.outcome == Outcome.PASS, cb.outcome == Outcome.PASS
        if was and not now:
            out.regressed.append(change)
        elif not was and now:
            out.improved.append(change)
        elif not was and not now:
            out.still_failing.append(change)
        if cb.flaky and not ca.flaky:
            out.became_flaky.append(change)
        elif was and now:
            out.unchanged += 1
    out.removed = [CaseChange.of(ca, None) for case_id, ca in before.items() if case_id not in after]
    return out
