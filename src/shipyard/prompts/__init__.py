"""Prompt bundles: load (from a folder or a git revision), hash, render, lint and diff."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

# Loaded on first use (shipyard._lazy): running an agent loads bundles, and never diffs or lints them.
if not TYPE_CHECKING:
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
