"""The closed sets several packages read: how an interaction ended, where it came from.

`shipyard.types` re-exports them; import them from there. A module that needs a set and none of the
value types imports this one instead, so it builds none of their dataclasses: the CLI's `traces list
--status`, whose choices every `shipyard --help` reads. A bottom module beside `config`, like
`shipyard.types`."""

from enum import StrEnum


class InteractionStatus(StrEnum):
    """How an interaction ended. An agent returns completed, escalated or failed; `blocked` is the
    pipeline's (a guardrail answered instead of the agent), as is `budget_exceeded`."""

    COMPLETED = "completed"
    ESCALATED = "escalated"
    FAILED = "failed"
    BLOCKED = "blocked"
    BUDGET_EXCEEDED = "budget_exceeded"  # a budget stopped it (the pipeline's, `budgets:`)


class TrafficSource(StrEnum):
    """Where an interaction came from. Production KPIs exclude `eval` and `shadow`; a canary's
    candidate traffic is `canary`; `warmup` interactions (a version's warm-up) are never recorded."""

    PRODUCTION = "production"
    CANARY = "canary"
    EVAL = "eval"
    SHADOW = "shadow"
    REPLAY = "replay"
    WARMUP = "warmup"
