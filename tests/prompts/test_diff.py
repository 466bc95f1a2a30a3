"""Prompt diffs: per-file unified diffs and the summary, between folders and git revisions."""

from __future__ import annotations

from pathlib import Path

from conftest import SYSTEM, TOOLS, BundleMaker
from shipyard.prompts import ToolChange, diff_bundles, load_bundle, load_bundle_from_git, summarize_diff


def test_identical_bundles_have_no_diff(make_bundle: BundleMaker) -> None:
    a, b = load_bundle(make_bundle("a")), load_bundle(make_bundle("b"))
    assert diff_bundles(a, b) == []
    s = summarize_diff(a, b)
    assert not s.changed and s.lines() == ["no changes"]


def test_diff_between_two_folders(make_bundle: BundleMaker) -> None:
    a = load_bundle(make_bundle("a"))
    b = load_bundle(
        make_bundle(
            "b",
            version="1.1.0\n",
            system_prompt=SYSTEM.replace(
                "Use tools; never guess.", "Use tools.\nNever guess an order status."
            ),
            safety_rules=None,
            tool_descriptions=TOOLS.replace("The five-digit order number", "The order number (5 digits)")
            + "    include_items: Whether to list the items\n"
            + "process_refund:\n  description: Refund an order.\n",
        )
    )
    files = diff_bundles(a, b)
    by_name = {f.name: f for f in files}
    assert set(by_name) == {"system_prompt.txt", "tool_descriptions.yaml", "safety_rules.txt", "version.txt"}
    system = by_name["system_prompt.txt"]
    assert system.change == "modified" and (system.added, system.removed) == (2, 1)
    assert "-Use tools; never guess.\n+Use tools.\n+Never guess an order status.\n" in system.diff
    assert system.diff.startswith(f"--- {a.path}/system_prompt.txt\n+++ {b.path}/system_prompt.txt\n")
    safety = by_name["safety_rules.txt"]
    assert safety.change == "removed" and safety.removed == 1 and "+++ /dev/null" in safety.diff
    assert by_name["version.txt"].diff.endswith("-1.0.0\n+1.1.0\n")

    s = summarize_diff(a, b, files)
    assert (s.files_changed, s.lines_added, s.lines_removed) == (4, 2 + 4 + 1, 1 + 1 + 1 + 1)
    assert s.label_changed and (s.label_before, s.label_after) == ("1.0.0", "1.1.0")
    assert s.tool_changes == (
        ToolChange(
            "lookup_order", "modified", ("parameter include_items described", "parameter order_id changed")
        ),
        ToolChange("process_refund", "added"),
    )
    text = "\n".join(s.lines())
    assert "4 file(s) changed, +7 -4 lines" in text and "label 1.0.0 -> 1.1.0" in text
    # the other way round
    back = summarize_diff(b, a)
    assert ToolChange("process_refund", "removed") in back.tool_changes


def test_unchanged_label_is_pointed_out(make_bundle: BundleMaker) -> None:
    a = load_bundle(make_bundle("a"))
    b = load_bundle(make_bundle("b", safety_rules="Be careful.\n"))
    lines = summarize_diff(a, b).lines()
    assert any("label unchanged (1.0.0)" in line for line in lines)


def test_missing_final_newline_is_marked(make_bundle: BundleMaker) -> None:
    a = load_bundle(make_bundle("a", safety_rules="one"))
    b = load_bundle(make_bundle("b", safety_rules="two"))
    [f] = diff_bundles(a, b)
    assert f.diff.count("\\ No newline at end of file") == 2 and (f.added, f.removed) == (1, 1)


def test_diff_between_git_revisions(git_repo: Path) -> None:
    old = load_bundle_from_git(git_repo, "v1", "prompts/support")
    new = load_bundle_from_git(git_repo, "main", "prompts/support")
    files = diff_bundles(old, new)
    assert [f.name for f in files] == ["system_prompt.txt", "tool_descriptions.yaml", "version.txt"]
    assert files[0].diff.startswith("--- v1:prompts/support/system_prompt.txt\n+++ main:prompts/support/")
    s = summarize_diff(old, new, files)
    assert [t.tool for t in s.tool_changes] == ["lookup_order", "process_refund"]
    assert s.tool_changes[0].details == ("description changed",)
