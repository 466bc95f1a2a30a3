"""Evals: suites, importers, scorers, the runner, statistics, gate policy and reports.

No agent version ships without passing its evals: each case repeat is PASS, FAIL, ERROR or SKIPPED
(it could not run here, and says why); neither ERROR nor SKIPPED is ever a pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.evals._compare import CaseChange, Comparison, compare_runs
    from shipyard.evals._gate import (
        GATE_RULES,
        Check,
        GateDecision,
        GateVerdict,
        Regression,
        analyse_regression,
        load_run_summary,
        pass_summary,
        production_version,
        repeat_from_row,
        resolve_baseline,
        skipped_reason,
    )
    from shipyard.evals._gate import decide as decide_gate
    from shipyard.evals._importers import (
        IMPORTERS,
        SuiteImporter,
        dump_suite,
        from_adk,
        from_jsonl,
        from_promptfoo,
        import_file,
    )
    from shipyard.evals._judge import Judge, JudgeHandle, JudgeReply, parse_verdict
    from shipyard.evals._redteam import (
        AgentSurface,
        RedTeam,
        RedTeamError,
        agent_surface,
        generate_redteam,
        write_redteam,
    )
    from shipyard.evals._replay import FixedTools, RecordReplay, ReplayCache, ReplayMiss, replay_path
    from shipyard.evals._reports import (
        REPORT_FORMATS,
        ReportError,
        parse_report_spec,
        print_report,
        write_report,
    )
    from shipyard.evals._runner import AdaptiveLimiter, EvalRunner, decide
    from shipyard.evals._scorers import (
        SCORERS,
        BuiltScorer,
        ScoreFn,
        ScoreInput,
        build_scorer,
        scorer,
        scorer_info,
        scorer_names,
    )
    from shipyard.evals._scorers_match import rouge1_f1
    from shipyard.evals._scorers_safety import find_pii
    from shipyard.evals._scorers_trajectory import trajectory_score
    from shipyard.evals._simulator import SimulatorError, UserSimulator
    from shipyard.evals._stats import (
        CaseRule,
        CaseStats,
        CategoryStats,
        RunSummary,
        pass_at_k,
        pass_hat_k,
        summarize,
        summarize_run,
        wilson_interval,
    )
    from shipyard.evals._suite import (
        Assertion,
        Case,
        Defaults,
        ExpectedCall,
        FixedToolResult,
        Scenario,
        Suite,
        SuiteError,
        Trajectory,
        Turn,
        case_keys,
        load_suite,
        parse_suite,
        validate_suite,
    )
    from shipyard.evals._types import CATEGORIES, EvalRunResult, Outcome, RepeatResult, ScoreResult

__all__ = [
    "CATEGORIES",
    "GATE_RULES",
    "IMPORTERS",
    "REPORT_FORMATS",
    "SCORERS",
    "AdaptiveLimiter",
    "AgentSurface",
    "Assertion",
    "BuiltScorer",
    "Case",
    "CaseChange",
    "CaseRule",
    "CaseStats",
    "CategoryStats",
    "Check",
    "Comparison",
    "Defaults",
    "EvalRunResult",
    "EvalRunner",
    "ExpectedCall",
    "FixedToolResult",
    "FixedTools",
    "GateDecision",
    "GateVerdict",
    "Judge",
    "JudgeHandle",
    "JudgeReply",
    "Outcome",
    "RecordReplay",
    "RedTeam",
    "RedTeamError",
    "Regression",
    "RepeatResult",
    "ReplayCache",
    "ReplayMiss",
    "ReportError",
    "RunSummary",
    "Scenario",
    "ScoreFn",
    "ScoreInput",
    "ScoreResult",
    "SimulatorError",
    "Suite",
    "SuiteError",
    "SuiteImporter",
    "Trajectory",
    "Turn",
    "UserSimulator",
    "agent_surface",
    "analyse_regression",
    "build_scorer",
    "case_keys",
    "compare_runs",
    "decide",
    "decide_gate",
    "dump_suite",
    "find_pii",
    "from_adk",
    "from_jsonl",
    "from_promptfoo",
    "generate_redteam",
    "import_file",
    "load_run_summary",
    "load_suite",
    "parse_report_spec",
    "parse_suite",
    "parse_verdict",
    "pass_at_k",
    "pass_hat_k",
    "pass_summary",
    "print_report",
    "production_version",
    "repeat_from_row",
    "replay_path",
    "resolve_baseline",
    "rouge1_f1",
    "scorer",
    "scorer_info",
    "scorer_names",
    "skipped_reason",
    "summarize",
    "summarize_run",
    "trajectory_score",
    "validate_suite",
    "wilson_interval",
    "write_redteam",
    "write_report",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy); mypy sees the imports above
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
