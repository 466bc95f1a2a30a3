"""Prompt bundles: load (from a folder or a git revision), hash, render, lint and diff."""

from shipyard.prompts._bundle import (
    PromptBundle,
    PromptBundleError,
    PromptVariableError,
    ToolDescription,
    bundle_hash,
    load_bundle,
    load_bundle_from_git,
)
from shipyard.prompts._diff import DiffSummary, FileDiff, ToolChange, diff_bundles, summarize_diff
from shipyard.prompts._lint import LintIssue, lint_bundle

__all__ = [
    "DiffSummary",
    "FileDiff",
    "LintIssue",
    "PromptBundle",
    "PromptBundleError",
    "PromptVariableError",
    "ToolChange",
    "ToolDescription",
    "bundle_hash",
    "diff_bundles",
    "lint_bundle",
    "load_bundle",
    "load_bundle_from_git",
    "summarize_diff",
]
