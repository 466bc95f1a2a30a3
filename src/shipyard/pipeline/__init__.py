"""CI/CD stages (pre-merge, post-merge, production gate), approvals, CI templates and the launch
checklist. Imports evals, runtime, rollout, observe, store and config; only server, cli and demo
import it."""

from shipyard.pipeline._checklist import Item, checklist_failed, run_checklist
from shipyard.pipeline._checklist import render_markdown as render_checklist
from shipyard.pipeline._comment import COMMENT_TAG, render_comment
from shipyard.pipeline._evals import Baseline, ci_dir
from shipyard.pipeline._git import ChangeSet, detect_changes, repo_root
from shipyard.pipeline._review import RED_TEAM_PREFIX, ChangeReview, Consistency, consistency, review_change
from shipyard.pipeline._stages import (
    EXIT_CODES,
    CiOptions,
    StageResult,
    exit_code,
    pick_agent,
    run_pipeline,
)
from shipyard.pipeline._static import Finding, safety_suites
from shipyard.pipeline._templates import Template, render_templates

__all__ = [
    "COMMENT_TAG",
    "EXIT_CODES",
    "RED_TEAM_PREFIX",
    "Baseline",
    "ChangeReview",
    "ChangeSet",
    "CiOptions",
    "Consistency",
    "Finding",
    "Item",
    "StageResult",
    "Template",
    "checklist_failed",
    "ci_dir",
    "consistency",
    "detect_changes",
    "exit_code",
    "pick_agent",
    "render_checklist",
    "render_comment",
    "render_templates",
    "repo_root",
    "review_change",
    "run_checklist",
    "run_pipeline",
    "safety_suites",
]
