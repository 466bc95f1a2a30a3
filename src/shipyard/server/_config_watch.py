"""The files a running config depends on, and whether they changed (`server/_reload.py` polls them).

A look is cheap (`stamps`: a stat of each file, the folders for files added or removed, and what each
model's provider says changes its answers, e.g. a rules file's hash); only when it changed is the
content hashed (`digest`), so a `touch` is not a reload. The agents' source files are watched too,
for `code_changes`: a reload never re-imports code, it says that a restart is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.agents import CodeIdentity, code_identity
from shipyard.config import ShipyardConfig

if TYPE_CHECKING:
    from shipyard.runtime import Runtime


def _code_modules(rt: Runtime, skip: Collection[str] = ()) -> dict[str, tuple[str, str]]:
    """{module: (agent, loaded code hash)} of every entry module the runtime's versions run (the
    agents in `skip` did not load)."""
    found: dict[str, tuple[str, str]] = {}
    for agent in rt.cfg.agents:
        if agent in skip:
            continue
        for v in rt.versions(agent):  # loaded already: no I/O
            if v.entry:
                found.setdefault(v.entry.partition(":")[0], (agent, v.components.get("code", "")))
    return found


def _identity(module_name: str, root: Path) -> CodeIdentity | None:
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file or Path(file).suffix != ".py":
        return None  # no source file: nothing on disk to compare with
    return code_identity(Path(file), module_name, root)


def code_changes(rt: Runtime) -> list[dict[str, Any]]:
    """Entry modules (with the project modules they import) whose source on disk is no longer the
    code this process loaded. Blocking (reads files)."""
    out: list[dict[str, Any]] = []
    for module, (agent, loaded) in sorted(_code_modules(rt).items()):
        try:
            ident = _identity(module, rt.cfg.root)
        except OSError as e:
            out.append({"agent": agent, "module": module, "message": f"cannot read its source: {e}"})
            continue
        if ident is not None and loaded and not ident.digest.startswith(loaded):
            out.append(
                {
                    "agent": agent,
                    "module": module,
                    "files": [str(ident.scope / f) for f in ident.files],
                    "message": f"code changed: {module} (or a module of the project it imports) differs "
                    "from what this process loaded; a reload does not re-import code: restart to load it",
                }
            )
    return out


def watched_paths(cfg: ShipyardConfig, rt: Runtime | None, skip: Collection[str] = ()) -> list[Path]:
    """What a change of makes the server reload: shipyard.yaml, every prompt bundle folder, and the
    source files of the agents' code (reported, not reloaded). Model files (a scripted model's rules)
    are followed through the model providers' identities (`_models_identity`). `skip`: agents that
    did not load."""
    paths: list[Path] = [cfg.path] if cfg.path is not None else []
    for agent_cfg in cfg.agents.values():
        for prompts in [agent_cfg.prompts, *(v.prompts for v in agent_cfg.versions)]:
            if prompts:
                paths.append(cfg.resolve(prompts))
    if rt is not None:
        for module in _code_modules(rt, skip):
            with contextlib.suppress(Exception):
                ident = _identity(module, cfg.root)
                if ident is not None:
                    paths += [ident.scope / f for f in ident.files]
    return list(dict.fromkeys(paths))


def _models_identity(cfg: ShipyardConfig) -> str:
    """What each model's provider says changes its answers (a rules file's content, an endpoint)."""
    found: dict[str, Any] = {}
    for key, m in cfg.models.items():
        try:
            found[key] = m.spec.identity(m.settings, cfg)
        except Exception as e:  # reported by the reload that follows, if it matters
            found[key] = f"{type(e).__name__}: {e}"
    return json.dumps(found, sort_keys=True, default=str)


def _stat(path: Path) -> tuple[Any, ...]:
    try:
        st = os.stat(path)
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size, st.st_ino)


def _files(paths: Sequence[Path]) -> list[Path]:
    """The paths, with each folder replaced by the files in it (bundles are flat)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            with contextlib.suppress(OSError):
                out += sorted(c for c in p.iterdir() if c.is_file())
        else:
            out.append(p)
    return out


def stamps(cfg: ShipyardConfig, paths: Sequence[Path]) -> tuple[Any, ...]:
    """A cheap look (stat of every file, and folders for files added or removed) plus the models'
    identities; when it changes, `digest` tells a real change from a `touch`. Blocking."""
    return (*(_stat(p) for p in paths), *(_stat(f) for f in _files(paths)), _models_identity(cfg))


def digest(cfg: ShipyardConfig, paths: Sequence[Path]) -> str:
    """A hash of the content of every watched file and of the models' identities. Blocking."""
    h = hashlib.sha256()
    for f in _files(paths):
        h.update(str(f).encode() + b"\0")
        try:
            h.update(hashlib.sha256(f.read_bytes()).digest())
        except OSError:
            h.update(b"(missing)")
    h.update(_models_identity(cfg).encode())
    return h.hexdigest()


def file_sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
