"""What changed between two prompt bundles: unified diffs per file and a summary a reviewer reads."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from shipyard.prompts._bundle import FILES, PromptBundle, ToolDescription

Change = Literal["added", "removed", "modified"]


@dataclass(frozen=True, slots=True)
class FileDiff:
    """One changed file. `diff` is a unified diff; `added` / `removed` count its +/- lines."""

    name: str
    change: Change
    diff: str
    added: int
    removed: int


@dataclass(frozen=True, slots=True)
class ToolChange:
    """How the description of one tool changed; `details` says what, one phrase each."""

    tool: str
    change: Change
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiffSummary:
    """Totals over the file diffs, the label change and the tool description changes."""

    files_changed: int
    lines_added: int
    lines_removed: int
    label_before: str
    label_after: str
    tool_changes: tuple[ToolChange, ...]

    @property
    def label_changed(self) -> bool:
        return self.label_before != self.label_after

    @property
    def changed(self) -> bool:
        return self.files_changed > 0

    def lines(self) -> list[str]:
        """The summary as short lines of text."""
        if not self.changed:
            return ["no changes"]
        out = [f"{self.files_changed} file(s) changed, +{self.lines_added} -{self.lines_removed} lines"]
        if self.label_changed:
            out.append(f"label {self.label_before} -> {self.label_after}")
        else:
            out.append(f"label unchanged ({self.label_after}): consider bumping version.txt")
        for t in self.tool_changes:
            out.append(f"tool {t.tool}: {t.change}" + (f" ({'; '.join(t.details)})" if t.details else ""))
        return out


def diff_bundles(a: PromptBundle, b: PromptBundle, *, context: int = 3) -> list[FileDiff]:
    """Unified diffs, file by file, of the files that differ from bundle `a` to bundle `b`.

    Args:
        a: the old bundle.
        b: the new bundle.
        context: lines of context around each change.
    """
    out: list[FileDiff] = []
    for name in FILES:
        old, new = a.files.get(name), b.files.get(name)
        if old == new:
            continue
        change: Change = "added" if old is None else "removed" if new is None else "modified"
        lines = list(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=a.file(name) if old is not None else "/dev/null",
                tofile=b.file(name) if new is not None else "/dev/null",
                n=context,
            )
        )
        body = [ln for ln in lines[2:] if not ln.startswith("@@")]
        text = "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines)
        out.append(
            FileDiff(
                name,
                change,
                text,
                added=sum(ln.startswith("+") for ln in body),
                removed=sum(ln.startswith("-") for ln in body),
            )
        )
    return out


def _tool_change(name: str, old: ToolDescription | None, new: ToolDescription | None) -> ToolChange | None:
    if old is None:
        return ToolChange(name, "added")
    if new is None:
        return ToolChange(name, "removed")
    details: list[str] = []
    if old.description != new.description:
        details.append("description changed")
    before, after = old.parameters or {}, new.parameters or {}
    for arg in sorted(before.keys() | after.keys()):
        if arg not in before:
            details.append(f"parameter {arg} described")
        elif arg not in after:
            details.append(f"parameter {arg} no longer described")
        elif before[arg] != after[arg]:
            details.append(f"parameter {arg} changed")
    return ToolChange(name, "modified", tuple(details)) if details else None


def summarize_diff(a: PromptBundle, b: PromptBundle, files: list[FileDiff] | None = None) -> DiffSummary:
    """The summary of the change from bundle `a` to bundle `b`.

    Args:
        a: the old bundle.
        b: the new bundle.
        files: the result of `diff_bundles(a, b)` when already computed.
    """
    files = diff_bundles(a, b) if files is None else files
    names = list(a.tool_descriptions) + [t for t in b.tool_descriptions if t not in a.tool_descriptions]
    changes = (_tool_change(t, a.tool_descriptions.get(t), b.tool_descriptions.get(t)) for t in names)
    return DiffSummary(
        files_changed=len(files),
        lines_added=sum(f.added for f in files),
        lines_removed=sum(f.removed for f in files),
        label_before=a.label,
        label_after=b.label,
        tool_changes=tuple(c for c in changes if c is not None),
    )
