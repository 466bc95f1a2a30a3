"""Evals: suites, importers, scorers, the runner, statistics, gate policy and reports.

No agent version ships without passing its evals: each case repeat is PASS, FAIL or ERROR, and
ERROR is never a pass."""

from shipyard.evals._importers import dump_suite, from_adk, from_jsonl, from_promptfoo, import_file
from shipyard.evals._judge import Judge, JudgeHandle, JudgeReply, parse_verdict
from shipyard.evals._replay import RecordReplay, ReplayCache, ReplayMiss, replay_path
from shipyard.evals._runner import AdaptiveLimiter, EvalRunner, decide
from shipyard.evals._scorers import (
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
from shipyard.evals._suite import (
    Assertion,
    Case,
    Defaults,
    ExpectedCall,
    Suite,
    SuiteError,
    Trajectory,
    Turn,
    load_suite,
    parse_suite,
    validate_suite,
)
from shipyard.evals._types import CATEGORIES, EvalRunResult, Outcome, RepeatResult, ScoreResult

__all__ = [
    "CATEGORIES",
    "AdaptiveLimiter",
    "Assertion",
    "BuiltScorer",
    "Case",
    "Defaults",
    "EvalRunResult",
    "EvalRunner",
    "ExpectedCall",
    "Judge",
    "JudgeHandle",
    "JudgeReply",
    "Outcome",
    "RecordReplay",
    "RepeatResult",
    "ReplayCache",
    "ReplayMiss",
    "ScoreFn",
    "ScoreInput",
    "ScoreResult",
    "Suite",
    "SuiteError",
    "Trajectory",
    "Turn",
    "build_scorer",
    "decide",
    "dump_suite",
    "find_pii",
    "from_adk",
    "from_jsonl",
    "from_promptfoo",
    "import_file",
    "load_suite",
    "parse_suite",
    "parse_verdict",
    "replay_path",
    "rouge1_f1",
    "scorer",
    "scorer_info",
    "scorer_names",
    "trajectory_score",
    "validate_suite",
]
