"""Eval runs for the stages: the CI replay cache, the base branch's baseline cached by commit, and
saving a stage's decision on its run.

The replay cache lives in `.shipyard/ci/replay/<agent>/<version hash>-<suites hash>/`: one recording
per suite, each call keyed on (suite/case, repeat, turn) and the request (`evals.ReplayCache`). A
version id covers the agent's code, prompts, model settings and tools, so a second run of the same
version on the same suites is answered from the recording: CI does not pay twice. A recording is
used only once a whole run made it without an ERROR (the `complete` marker)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from shipyard._atomic import atomic_write
from shipyard.config import ShipyardConfig
from shipyard.errors import ShipyardError
from shipyard.evals import EvalRunResult, GateDecision, Outcome, RunSummary, Suite, load_suite
from shipyard.pipeline._git import ChangeSet, export_commit
from shipyard.store import private_dir

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.runtime import Runtime
    from shipyard.store import Store

Mode = Literal["live", "record", "replay"]
RuntimeFactory = Callable[[], "Runtime"]


def ci_dir(cfg: ShipyardConfig) -> Path:
    return cfg.root / ".shipyard" / "ci"


def suites_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


@dataclass(slots=True)
class ReplayPlan:
    """Where a version's recording of some suites lives and whether it can be replayed."""

    directory: Path
    mode: Mode

    @property
    def marker(self) -> Path:
        return self.directory / "complete"


def replay_plan(cfg: ShipyardConfig, agent: str, version_hash: str, suite_paths: list[Path]) -> ReplayPlan:
    """Replay when this version already ran these suites completely; record otherwise."""
    directory = ci_dir(cfg) / "replay" / agent / f"{version_hash}-{suites_digest(suite_paths)}"
    plan = ReplayPlan(directory, "record")
    if plan.marker.is_file():
        plan.mode = "replay"
    return plan


def finish_replay(plan: ReplayPlan, result: EvalRunResult) -> None:
    """Mark a recording complete when the run finished with no ERROR (else it is recorded again)."""
    if plan.mode != "record":
        return
    clean = not result.interrupted and not result.budget_exhausted and not result.skipped
    if clean and all(r.outcome != Outcome.ERROR for r in result.results):
        plan.marker.write_text("recorded by shipyard ci run\n")


async def run_evals(
    cfg: ShipyardConfig,
    store: Store,
    agent: str,
    suites: list[Suite],
    *,
    version: str | None,
    stage: str,
    repeat: int | None,
    mode: Mode = "live",
    replay_dir: Path | None = None,
    runtime: Runtime | None = None,
    concurrency: int = 8,
    console: Console | None = None,
) -> EvalRunResult:
    """Run `suites` against a version; the run is stored. `runtime`: run through this one (e.g. the
    staging server's HTTP runtime) instead of an in-process runtime made here."""
    from shipyard.evals import EvalRunner
    from shipyard.runtime import Runtime
    from shipyard.store import BatchWriter

    writer = None
    rt = runtime
    if rt is None:
        writer = BatchWriter(store)
        rt = Runtime(cfg, store=store, writer=writer)
    try:
        runner = EvalRunner(
            rt,
            cfg,
            concurrency=concurrency,
            repeat=repeat,
            mode=mode,
            replay_dir=replay_dir,
            console=console,
        )
        return await runner.run(agent, suites, version=version, stage=stage, progress=False)
    finally:
        if runtime is None:
            await rt.aclose()
        if writer is not None:
            writer.close()


def save_decision(store: Store, summary: RunSummary, result: Any, decision: GateDecision) -> None:
    """Store the summary and the stage's decision on its run (what `shipyard approve` and the
    deploy rule read). `result`: the EvalRunResult, or the stored repeats of a run decided again."""
    row = store.get_eval_run(summary.run_id) or {}
    stored = dict(row.get("summary") or {})
    stored.update(summary.to_dict())
    if isinstance(result, EvalRunResult):
        status = (
            "interrupted"
            if result.interrupted
            else ("budget_exhausted" if result.budget_exhausted else "finished")
        )
    else:
        status = str(row.get("status") or "finished")
    store.finish_eval_run(summary.run_id, status, summary=stored, decision=decision.to_dict())


# the base branch's baseline ---------------------------------------------------------------------


@dataclass(slots=True)
class Baseline:
    """The base's run of the stage's suites: `summary` None when there is none, `why` says why."""

    summary: RunSummary | None
    label: str  # e.g. "main @ 1a2b3c4d (support@1.0.0+abc)" or "support@1.0.0+abc"
    cached: bool = False
    why: str = ""
    version: str | None = None


def _cache_file(cfg: ShipyardConfig, agent: str, key: str) -> Path:
    return ci_dir(cfg) / "baselines" / agent / f"{key}.json"


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "summary" in data else None


def _write_cache(path: Path, summary: RunSummary, version: str, label: str) -> None:
    private_dir(path.parent)
    doc = {"version": version, "label": label, "summary": summary.to_dict()}
    atomic_write(path, orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS), private=True)


def base_from_commit(
    cfg: ShipyardConfig, agent: str, stage: str, suite_refs: list[str], changes: ChangeSet
) -> Baseline:
    """The base commit's results of the stage's suites (as the base branch has them): cached by
    commit; on a miss the base tree is exported and evaluated in a separate process (its own code
    and prompts, its own store), recorded, and cached."""
    assert changes.repo is not None and changes.base_commit is not None
    commit = changes.base_commit
    label = f"{changes.base_ref} @ {commit[:10]}"
    key = f"{commit[:20]}-{stage}-{hashlib.sha256('|'.join(suite_refs).encode()).hexdigest()[:8]}"
    cache = _cache_file(cfg, agent, key)
    hit = _read_cache(cache)
    if hit is not None:
        return Baseline(
            RunSummary.from_dict(hit["summary"]), str(hit.get("label") or label), True, version=hit["version"]
        )
    with tempfile.TemporaryDirectory(prefix="shipyard-base-") as tmp:
        tree = Path(tmp) / "tree"
        export_commit(changes.repo, commit, tree)
        project = tree / changes.project_prefix if changes.project_prefix else tree
        config = project / "shipyard.yaml"
        if not config.is_file():
            return Baseline(
                None, label, why=f"the base commit has no {changes.project_prefix or '.'}/shipyard.yaml"
            )
        present = [s for s in suite_refs if (project / s).is_file()]
        if not present:
            return Baseline(None, label, why="the base commit has none of the stage's suites")
        report = Path(tmp) / "base.json"
        cmd = [sys.executable, "-m", "shipyard", "eval", "run", "-c", str(config), "--agent", agent]
        for s in present:
            cmd += ["--suite", str(project / s)]
        cmd += ["--stage", stage, "--report", f"json:{report}"]
        env = {**os.environ, "SHIPYARD_LOG_LEVEL": "error"}
        env.pop("SHIPYARD_DATABASE_URL", None)  # the base run keeps its records in its own folder
        env.pop("SHIPYARD_CONFIG", None)
        done = subprocess.run(
            cmd, cwd=project, capture_output=True, text=True, check=False, env=env, timeout=3600
        )
        if not report.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return Baseline(
                None, label, why=f"the base commit's evals could not run (exit {done.returncode}): {last}"
            )
        doc = orjson.loads(report.read_bytes())
        summary = RunSummary.from_dict(doc["summary"])
    full = f"{label} ({summary.version})"
    _write_cache(cache, summary, summary.version, full)
    return Baseline(summary, full, False, version=summary.version)


async def base_from_version(
    cfg: ShipyardConfig,
    store: Store,
    agent: str,
    stage: str,
    suites: list[Suite],
    suite_paths: list[Path],
    base_version: str,
    repeat: int | None,
    console: Console | None = None,
) -> Baseline:
    """A version of the same project as the base (no git, e.g. the demo's 1.0.0 for its 1.1.0):
    its run of the suites, cached by version id and suites, replayed from the CI replay cache."""
    from shipyard.runtime import Runtime

    probe = Runtime(cfg)
    try:
        v = probe.resolve_version(agent, base_version)
    finally:
        await probe.aclose()
    key = f"{v.hash}-{stage}-{suites_digest(suite_paths)}"
    cache = _cache_file(cfg, agent, key)
    hit = _read_cache(cache)
    if hit is not None:
        return Baseline(RunSummary.from_dict(hit["summary"]), v.id, True, version=v.id)
    from shipyard.evals import summarize_run

    plan = replay_plan(cfg, agent, v.hash, suite_paths)
    result = await run_evals(
        cfg, store, agent, suites, version=v.id, stage=stage, repeat=repeat, mode=plan.mode,
        replay_dir=plan.directory, console=console,
    )  # fmt: skip
    finish_replay(plan, result)
    summary = summarize_run(result)
    if not summary.complete:
        return Baseline(
            None, v.id, why=f"the base version's run did not finish ({len(result.skipped)} skipped)"
        )
    _write_cache(cache, summary, v.id, v.id)
    return Baseline(summary, v.id, False, version=v.id)


def load_suites(cfg: ShipyardConfig, refs: list[str]) -> tuple[list[Suite], list[Path]]:
    """Load suite files named relative to shipyard.yaml; every problem is reported before running."""
    paths = [cfg.resolve(s) for s in refs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ShipyardError(
            f"suite file(s) not found: {', '.join(missing)}",
            hint="suite paths in gates: and pipeline: are relative to shipyard.yaml",
        )
    return [load_suite(p) for p in paths], paths
