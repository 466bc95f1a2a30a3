"""The production stage's judgements beyond pass rates: is the prompt change significant enough for a
human review, were tools added or changed (a red-team sign-off), and do the agent's models agree.

A review requirement is a soft check that fails (the decision becomes MARGINAL), so it ships only with
a recorded approval, the same rule every deploy path applies. A red-team sign-off is an approval
whose reason starts with `RED_TEAM_PREFIX` (`shipyard approve RUN --red-team ...`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.config import ProductionStage
from shipyard.evals import Check, Outcome, RunSummary
from shipyard.pipeline._static import step_check

if TYPE_CHECKING:
    from shipyard.prompts import PromptBundle

RED_TEAM_PREFIX = "red-team sign-off: "
SYSTEM_PROMPT = "system_prompt.txt"
SAFETY_RULES = "safety_rules.txt"


@dataclass(slots=True)
class ChangeReview:
    """What changed between the base and the candidate that people must look at."""

    prompt_lines: int = 0  # system-prompt lines added + removed
    safety_rules_changed: bool = False
    tools_added: list[str] = field(default_factory=list)
    tools_removed: list[str] = field(default_factory=list)
    tools_changed: list[str] = field(default_factory=list)
    base: str = ""

    @property
    def tools_touched(self) -> bool:
        return bool(self.tools_added or self.tools_changed)


def _tool_fingerprints(definitions: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for d in definitions:
        fn = d.get("function") or {}
        raw = json.dumps(fn, sort_keys=True, default=str).encode()
        out[str(fn.get("name"))] = hashlib.sha256(raw).hexdigest()
    return out


def review_change(
    base_bundle: PromptBundle | None,
    bundle: PromptBundle | None,
    base_tools: list[dict[str, Any]] | None,
    tools: list[dict[str, Any]],
    base: str,
) -> ChangeReview:
    """Compare the candidate's prompt bundle and tool definitions (as the model sees them) with the
    base's. `base_tools` None: only the bundle's tool descriptions are compared."""
    from shipyard.prompts import diff_bundles, summarize_diff

    out = ChangeReview(base=base)
    if base_bundle is not None and bundle is not None:
        files = diff_bundles(base_bundle, bundle)
        for f in files:
            if f.name == SYSTEM_PROMPT:
                out.prompt_lines = f.added + f.removed
            elif f.name == SAFETY_RULES:
                out.safety_rules_changed = True
        if base_tools is None:
            for t in summarize_diff(base_bundle, bundle, files).tool_changes:
                {"added": out.tools_added, "removed": out.tools_removed, "modified": out.tools_changed}[
                    t.change
                ].append(t.tool)
    elif bundle is not None and base_bundle is None and base:
        out.prompt_lines = (
            len(bundle.file(SYSTEM_PROMPT).splitlines()) if SYSTEM_PROMPT in bundle.files else 0
        )
    if base_tools is not None:
        a, b = _tool_fingerprints(base_tools), _tool_fingerprints(tools)
        out.tools_added = sorted(set(b) - set(a))
        out.tools_removed = sorted(set(a) - set(b))
        out.tools_changed = sorted(n for n in set(a) & set(b) if a[n] != b[n])
    return out


def review_checks(
    review: ChangeReview, policy: ProductionStage, approvals: list[dict[str, Any]]
) -> list[Check]:
    """The review and sign-off checks: soft, failing (so MARGINAL) until approved."""
    checks: list[Check] = []
    reasons = []
    if policy.review_safety_rules and review.safety_rules_changed:
        reasons.append("safety_rules.txt changed")
    if review.prompt_lines > policy.review_prompt_lines:
        reasons.append(
            f"{review.prompt_lines} system-prompt lines changed (over {policy.review_prompt_lines})"
        )
    people = [a for a in approvals if not str(a.get("reason", "")).startswith(RED_TEAM_PREFIX)]
    if reasons:
        done = bool(people)
        who = f"; reviewed by {people[-1]['by']}: {people[-1]['reason']}" if done else ""
        checks.append(
            step_check(
                "review.prompt_change",
                done,
                f"human review required vs {review.base}: {', '.join(reasons)}{who}",
                hard=False,
                observed=float(review.prompt_lines),
                threshold=float(policy.review_prompt_lines),
                margin=float(max(review.prompt_lines, 1)),
            )
        )
    else:
        checks.append(
            step_check(
                "review.prompt_change",
                True,
                f"{review.prompt_lines} system-prompt line(s) changed vs {review.base or 'the base'}, "
                f"safety rules {'changed' if review.safety_rules_changed else 'unchanged'}: no review needed",
            )
        )
    touched = review.tools_added + review.tools_changed
    if policy.red_team_on_tool_change and touched:
        signed = [a for a in approvals if str(a.get("reason", "")).startswith(RED_TEAM_PREFIX)]
        detail = (
            f"red-team sign-off required: tools added {review.tools_added or '-'}, changed "
            f"{review.tools_changed or '-'} vs {review.base}"
        )
        if signed:
            detail += f"; signed off by {signed[-1]['by']}"
        checks.append(
            step_check(
                "review.red_team",
                bool(signed),
                detail,
                hard=False,
                observed=float(len(touched)),
                threshold=0.0,
                margin=float(len(touched)),
            )
        )
    return checks


# cross-model consistency ------------------------------------------------------------------------


@dataclass(slots=True)
class Consistency:
    models: list[str]
    cases: int
    agreeing: int
    disagreeing: dict[str, dict[str, str]]  # case key -> {model: outcome}

    @property
    def rate(self) -> float:
        return self.agreeing / self.cases if self.cases else 1.0


def consistency(runs: dict[str, RunSummary]) -> Consistency:
    """How often the models' runs of the same suites agree on a case's outcome (PASS vs not)."""
    models = list(runs)
    keys = sorted(set.intersection(*(set(c.key for c in s.cases) for s in runs.values()))) if runs else []
    outcomes = {m: {c.key: c.outcome for c in s.cases} for m, s in runs.items()}
    disagreeing: dict[str, dict[str, str]] = {}
    for k in keys:
        seen = {m: str(outcomes[m][k]) for m in models}
        if len({o == Outcome.PASS for o in seen.values()}) > 1:
            disagreeing[k] = seen
    return Consistency(models, len(keys), len(keys) - len(disagreeing), disagreeing)


def consistency_check(c: Consistency, minimum: float) -> Check:
    shown = "; ".join(
        f"{k} ({', '.join(f'{m}: {o}' for m, o in v.items())})" for k, v in list(c.disagreeing.items())[:10]
    )
    detail = f"{c.agreeing}/{c.cases} cases agree across {', '.join(c.models)}"
    if shown:
        detail += f"; disagreeing: {shown}"
    return Check(
        name="consistency.models",
        kind="pass_rate",
        observed=c.rate,
        threshold=minimum,
        comparator=">=",
        passed=c.rate >= minimum,
        hard=False,
        margin=1.0,  # any shortfall is for a person to judge: MARGINAL, never an automatic FAIL
        detail=detail,
    )
