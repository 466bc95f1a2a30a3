"""Budgets in the pipeline: the `budget_check` step, and how a budget ends an interaction.

`budget_check` runs before the cache and the agent, without a round trip to the counters: an
interaction whose budget this process has seen spent is answered with `budgets.graceful_answer` and
recorded as `budget_exceeded`, without calling the agent. Otherwise it gives the exchange its
`InteractionBudget`, which `ctx.llm` reserves and settles around each model call and the agent sees
as `ctx.budget`; the first reserve reads the counters (a budget spent on another replica refuses
it at once). A call a budget has no room for raises `BudgetExceeded` in the agent; `run_agent` turns
it into the graceful answer (`stopped_by_budget`), and an agent that catches it and answers itself (a
summary of what it found) keeps its answer, still recorded as `budget_exceeded`. A fail_closed budget
whose counters cannot be reached fails the interaction at its first model call (`run_agent`:
`error_kind: budget_unavailable`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shipyard.agents import AgentResult
from shipyard.cost import BudgetExceeded, Subject
from shipyard.observe import log_event

if TYPE_CHECKING:
    from shipyard.runtime._pipeline import Exchange
    from shipyard.runtime._runtime import Runtime

BUDGET_EXCEEDED = "budget_exceeded"
ATTR_BUDGET = "shipyard.budget.exceeded"  # on the invoke_agent span: the budget that stopped it


def subject_of(ex: Exchange) -> Subject:
    """Who the exchange's calls are counted for; features as tagged so far."""
    features = {f for f in ex.trail.features if isinstance(f, str)}
    return Subject(
        interaction_id=ex.id,
        session_id=ex.session_id,
        agent=ex.agent,
        user_id=ex.user_id,
        api_key=ex.api_key,
        features=frozenset(features),
        traffic_source=ex.traffic_source,
    )


async def budget_check(ex: Exchange, rt: Runtime) -> None:
    """Refuse up front when a budget of this interaction is known to be spent; else budget its calls."""
    budgets = rt.budgets
    if budgets is None:
        return
    refresh = _refresh(ex)
    budget = budgets.for_interaction(refresh(), refresh)
    ex.budget = budget
    refused = budget.check()
    if refused is not None:
        stopped_by_budget(ex, rt, refused, by="budget_check")


def _refresh(ex: Exchange) -> Callable[[], Subject]:
    """The exchange's subject before each model call: made again only when a feature was tagged
    since (features are only ever added), so the budgets can keep the counters they worked out."""
    count = len(ex.trail.features)
    subject = subject_of(ex)

    def refresh() -> Subject:
        nonlocal count, subject
        if len(ex.trail.features) != count:
            count, subject = len(ex.trail.features), subject_of(ex)
        return subject

    return refresh


def stopped_by_budget(
    ex: Exchange, rt: Runtime, e: BudgetExceeded, *, by: str = "run_agent", output: str | None = None
) -> None:
    """End the interaction gracefully: the configured answer (or the agent's own), `budget_exceeded`.
    From `budget_check` the steps up to `record` are skipped; from the agent, the output guardrails
    still check the answer."""
    text = output or rt.cfg.budgets.graceful_answer
    if by == "budget_check":
        ex.answer(text, by=by, status=BUDGET_EXCEEDED)
    else:
        if ex.result is None:
            ex.result = AgentResult(output=text)
        else:
            ex.result.output = text
        ex.status = BUDGET_EXCEEDED
    ex.metadata["budget"] = e.to_dict()
    if ex.root is not None:
        ex.root.set_attribute(ATTR_BUDGET, e.budget)
    log_event(
        "budget_exceeded",
        level="info",
        interaction_id=ex.id,
        session_id=ex.session_id,
        agent=ex.agent,
        **e.to_dict(),
    )
