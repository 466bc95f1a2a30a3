"""Traffic assignment, canary / blue-green / A/B controllers, analysis, and the decision log.

The face is lazy (shipyard/_lazy.py): `shipyard serve` starts a rollout controller and assigner on
every start, and they need neither the statistics (scipy) nor numpy until a rollout is analysed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.rollout._ab import arm_counts, find_experiment, start_experiment, stop_experiment
    from shipyard.rollout._ab import report as experiment_report
    from shipyard.rollout._analysis import (
        DEFAULT_METRICS,
        SOURCES,
        ArmSample,
        CanaryAnalysis,
        Count,
        MetricResult,
        MetricSpec,
        Proportion,
        analyze,
        canary_arms,
        default_metrics,
        holm,
        register_source,
    )
    from shipyard.rollout._assigner import (
        CHANNEL,
        REDIS_ENV,
        RolloutAssigner,
        VersionUnavailable,
        publish_change,
        raise_if_cancelling,
    )
    from shipyard.rollout._controller import (
        Decision,
        EvalGate,
        RolloutController,
        analyze_arms,
        check_deployable,
        gate_for_traffic,
        override_lines,
        override_reason,
        parse_steps,
        production_gate,
    )
    from shipyard.rollout._deployment import (
        DEFAULT_STEPS,
        Deployment,
        RolloutAction,
        assign,
        assignment_key,
        assignment_unit,
    )
    from shipyard.rollout._experiment import (
        A_BETTER,
        B_BETTER,
        DEFAULT_EXPERIMENT_METRICS,
        NO_DIFFERENCE,
        ExperimentMetric,
        ExperimentMetricResult,
        ExperimentReport,
        analyze_experiment,
    )
    from shipyard.rollout._gate import EvalGateResult, eval_gate, policy_for
    from shipyard.rollout._serving import (
        ServingGate,
        gate_required,
        override_serving,
        serving_gate,
        serving_override,
    )
    from shipyard.rollout._stats import (
        ProportionTest,
        RateTest,
        SequentialResult,
        ShiftTest,
        SrmCheck,
        WelchTest,
        hodges_lehmann,
        mann_whitney,
        msprt,
        newcombe_interval,
        rate_test,
        sample_size,
        sample_size_means,
        srm_check,
        two_proportion_test,
        welch_t_test,
        wilson_interval,
    )

__all__ = [
    "A_BETTER",
    "B_BETTER",
    "CHANNEL",
    "DEFAULT_EXPERIMENT_METRICS",
    "DEFAULT_METRICS",
    "DEFAULT_STEPS",
    "NO_DIFFERENCE",
    "REDIS_ENV",
    "SOURCES",
    "ArmSample",
    "CanaryAnalysis",
    "Count",
    "Decision",
    "Deployment",
    "EvalGate",
    "EvalGateResult",
    "ExperimentMetric",
    "ExperimentMetricResult",
    "ExperimentReport",
    "MetricResult",
    "MetricSpec",
    "Proportion",
    "ProportionTest",
    "RateTest",
    "RolloutAction",
    "RolloutAssigner",
    "RolloutController",
    "SequentialResult",
    "ServingGate",
    "ShiftTest",
    "SrmCheck",
    "VersionUnavailable",
    "WelchTest",
    "analyze",
    "analyze_arms",
    "analyze_experiment",
    "arm_counts",
    "assign",
    "assignment_key",
    "assignment_unit",
    "canary_arms",
    "check_deployable",
    "default_metrics",
    "eval_gate",
    "experiment_report",
    "find_experiment",
    "gate_for_traffic",
    "gate_required",
    "hodges_lehmann",
    "holm",
    "mann_whitney",
    "msprt",
    "newcombe_interval",
    "override_lines",
    "override_reason",
    "override_serving",
    "parse_steps",
    "policy_for",
    "production_gate",
    "publish_change",
    "raise_if_cancelling",
    "rate_test",
    "register_source",
    "sample_size",
    "sample_size_means",
    "serving_gate",
    "serving_override",
    "srm_check",
    "start_experiment",
    "stop_experiment",
    "two_proportion_test",
    "welch_t_test",
    "wilson_interval",
]

if not TYPE_CHECKING:  # mypy sees no __getattr__, so a misspelt import is still an error
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
