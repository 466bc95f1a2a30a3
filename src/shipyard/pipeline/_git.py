"""What git says about the change: the base commit, the files changed since it, and the base tree.

Nothing here changes the repository: it reads (`rev-parse`, `merge-base`, `diff`, `ls-files`) and
exports a commit's tree with `git archive` into a folder of our own."""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import ShipyardError


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=False, timeout=120)
    except FileNotFoundError:
        raise ShipyardError(
            "git is not installed", hint="install git, or run without a base branch"
        ) from None


@dataclass(slots=True)
class ChangeSet:
    """The change under test. `files` are paths relative to the project folder (None: git cannot
    tell, so everything counts as changed); `base_commit` is the merge base with the base branch."""

    repo: Path | None
    base_ref: str
    base_commit: str | None
    head_commit: str | None
    files: list[str] | None = None
    why_unknown: str = ""
    project_prefix: str = ""  # the project folder inside the repository ("" at its top)
    notes: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.files is not None

    def touches(self, path: Path, root: Path) -> bool:
        """Whether the change touches `path` (a file or folder of the project). True when unknown."""
        if self.files is None:
            return True
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return True  # outside the project: we cannot tell
        rel = "" if rel == "." else rel
        return any(f == rel or f.startswith(rel + "/") or rel == "" for f in self.files)


def repo_root(path: Path) -> Path | None:
    """The git work tree holding `path`, or None."""
    try:
        found = _git(path, "rev-parse", "--show-toplevel")
    except ShipyardError:
        return None
    if found.returncode != 0:
        return None
    return Path(found.stdout.decode().strip())


def detect_changes(root: Path, base_ref: str) -> ChangeSet:
    """The files of the project changed since the merge base of HEAD and `base_ref`, working tree
    and untracked files included. When the project is not in git, or the base ref is unknown, the
    change set says why and counts everything as changed."""
    repo = repo_root(root)
    if repo is None:
        return ChangeSet(None, base_ref, None, None, why_unknown=f"{root} is not in a git work tree")
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    head_commit = head.stdout.decode().strip() if head.returncode == 0 else None
    candidates = [base_ref]
    if "/" not in base_ref:
        candidates.append(f"origin/{base_ref}")
    base = None
    for ref in candidates:
        if _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0:
            merged = _git(repo, "merge-base", "HEAD", ref) if head_commit else None
            if merged is not None and merged.returncode == 0:
                base = merged.stdout.decode().strip()
            else:
                base = _git(repo, "rev-parse", f"{ref}^{{commit}}").stdout.decode().strip()
            break
    prefix = root.resolve().relative_to(repo.resolve()).as_posix()
    prefix = "" if prefix == "." else prefix
    if base is None:
        return ChangeSet(
            repo,
            base_ref,
            None,
            head_commit,
            why_unknown=f"the base branch {base_ref!r} is not known to git here (fetch it, or set "
            "pipeline.base_ref)",
            project_prefix=prefix,
        )
    diff = _git(repo, "diff", "--name-only", base, "--", prefix or ".")
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "--", prefix or ".")
    if diff.returncode != 0:
        return ChangeSet(
            repo,
            base_ref,
            base,
            head_commit,
            why_unknown=f"git diff failed: {diff.stderr.decode(errors='replace').strip()}",
            project_prefix=prefix,
        )
    names = set(diff.stdout.decode().splitlines()) | set(untracked.stdout.decode().splitlines())
    # git prints paths relative to the repository's top; ours are relative to the project folder
    files = sorted(n[len(prefix) + 1 :] if prefix else n for n in names if n)
    return ChangeSet(repo, base_ref, base, head_commit, files=files, project_prefix=prefix)


def export_commit(repo: Path, commit: str, dest: Path) -> None:
    """Write the tree of `commit` into `dest` (`git archive`; the repository is not touched)."""
    out = _git(repo, "archive", "--format=tar", commit)
    if out.returncode != 0:
        raise ShipyardError(
            f"git archive {commit[:12]} failed: {out.stderr.decode(errors='replace').strip()}",
            hint="is the base commit fetched? (actions/checkout needs fetch-depth: 0)",
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        tar.extractall(dest, filter="data")


def project_files(root: Path) -> list[Path]:
    """The project's files (relative): what git tracks plus untracked files it does not ignore;
    outside git, every file except dot-folders (`.shipyard`, `.git`, `.venv`) and caches."""
    repo = repo_root(root)
    if repo is not None:
        listed = _git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z", ".")
        if listed.returncode == 0:
            names = [n for n in listed.stdout.decode().split("\0") if n]
            return sorted(Path(n) for n in names if (root / n).is_file())
    skip = {"__pycache__", "node_modules"}
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") or part in skip for part in p.relative_to(root).parts)
    )
