"""Flag definitions (flagd JSON format), evaluation, OpenFeature provider.

The names below load on first use (shipyard._lazy): the OpenFeature SDK, say, only for code that asks
for `ShipyardProvider`; the runtime evaluates flags without it."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.flags._admin import (
        FlagAdmin,
        FlagValueError,
        on_off_variants,
        rollout_percent,
        rollout_targeting,
    )
    from shipyard.flags._evaluator import (
        ErrorCode,
        EvaluationDetails,
        FlagsForContext,
        FlagStore,
        Reason,
        interaction_context,
    )
    from shipyard.flags._flagd_ops import FLAGD_OPERATORS, compare_semver, parse_semver
    from shipyard.flags._fractional import bucket, fractional
    from shipyard.flags._jsonlogic import STANDARD_OPERATORS, LogicError, compile_logic
    from shipyard.flags._killswitch import KillDecision, KillSwitchMonitor, KillSwitchRule, kill_switch_rules
    from shipyard.flags._model import (
        FlagDefinition,
        FlagSet,
        dump_flag_set,
        load_flag_file,
        parse_flag,
        parse_flag_set,
        write_flag_file,
    )
    from shipyard.flags._provider import ShipyardProvider
    from shipyard.flags._shared import SharedFlags, content_digest
    from shipyard.flags._sync import (
        CHANNEL,
        FlagSync,
        fetch_flag_set,
        project_flags,
        publish_flag_set,
        publish_notice,
        redis_url_from_env,
    )

__all__ = [
    "CHANNEL",
    "FLAGD_OPERATORS",
    "STANDARD_OPERATORS",
    "ErrorCode",
    "EvaluationDetails",
    "FlagAdmin",
    "FlagDefinition",
    "FlagSet",
    "FlagStore",
    "FlagSync",
    "FlagValueError",
    "FlagsForContext",
    "KillDecision",
    "KillSwitchMonitor",
    "KillSwitchRule",
    "LogicError",
    "Reason",
    "SharedFlags",
    "ShipyardProvider",
    "bucket",
    "compare_semver",
    "compile_logic",
    "content_digest",
    "dump_flag_set",
    "fetch_flag_set",
    "fractional",
    "interaction_context",
    "kill_switch_rules",
    "load_flag_file",
    "on_off_variants",
    "parse_flag",
    "parse_flag_set",
    "parse_semver",
    "project_flags",
    "publish_flag_set",
    "publish_notice",
    "redis_url_from_env",
    "rollout_percent",
    "rollout_targeting",
    "write_flag_file",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy); mypy sees the imports above
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
