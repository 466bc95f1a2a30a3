"""promptfoo itself (npm) and Shipyard on the same configs, verdict for verdict and score for score.

The configs are promptfoo's own example (vendored, see data/promptfoo/SOURCE.md) and assertion
vectors following promptfoo's tests; promptfoo's echo provider or a local scripted provider answers,
so no network is needed, and Shipyard scores the same replies with the suite it imports from the same
file (a `webhook` check asks a local HTTP server both tools reach). promptfoo evaluates all the configs,
and runs its trace checks and meteor, in one Node process (`run_promptfoo_many`: its own CLI once per
config), then each test compares one of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _conformance import (
    NEEDS,
    PROMPTFOO_CONFIGS,
    Webhook,
    compare_promptfoo_meteor,
    compare_promptfoo_traces,
    compare_results,
    copy_config,
    promptfoo_check_jobs,
    run_promptfoo_many,
)
from debian import debian_program

# deterministic promptfoo assertion types Shipyard does not run: their cases load and are ERROR.
# None is left in these configs (the types Shipyard does not run are listed in the README).
NOT_RUN: set[str] = set()


def _runnable(config: Path) -> bool:
    """The config's interpreter (NEEDS) is on PATH, installed now if it was missing."""
    program = NEEDS.get(config.parent.name)
    try:
        return program is None or bool(debian_program(program))
    except pytest.skip.Exception:  # its test skips, saying why
        return False


@pytest.fixture(scope="module")
def promptfoo_evals(
    promptfoo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Path | str, tuple[Path | None, Any]]]:
    """Each runnable config's copy and promptfoo's results on it, and promptfoo's verdicts on the
    `traces` and `meteor` checks (or why there are none); the webhook both tools ask answers until the
    module's tests are done."""
    hook = Webhook()
    try:
        workdir = tmp_path_factory.mktemp("promptfoo")
        copies = {c: copy_config(c, workdir, hook.url) for c in PROMPTFOO_CONFIGS if _runnable(c)}
        checks = promptfoo_check_jobs(promptfoo)
        results = run_promptfoo_many(promptfoo, list(copies.values()), workdir, checks)
        found: dict[Path | str, tuple[Path | None, Any]] = {
            c: (copy, results[copy]) for c, copy in copies.items()
        }
        yield found | {name: (None, results[name]) for name in checks}
    finally:
        hook.close()


def reference(evals: dict[Path | str, tuple[Path | None, Any]], key: Path | str) -> tuple[Path | None, Any]:
    """promptfoo's results for a config or check; raises why there are none."""
    copy, results = evals[key]
    if isinstance(results, Exception):
        raise results
    return copy, results


@pytest.mark.parametrize("config", PROMPTFOO_CONFIGS, ids=lambda p: p.parent.name)
def test_shipyard_agrees_with_promptfoo(
    promptfoo_evals: dict[Path | str, tuple[Path | None, Any]], config: Path
) -> None:
    program = NEEDS.get(config.parent.name)
    if program:
        debian_program(program)  # installed when missing, else the config is skipped saying why
    copy, results = reference(promptfoo_evals, config)
    assert copy is not None
    tally = compare_results(results, copy)
    assert tally.total > 0
    assert not tally.disagreements, f"{tally}:\n" + "\n".join(tally.disagreements)
    for u in tally.unsupported:  # the file loaded; only the case Shipyard cannot run is ERROR
        assert any(f"promptfoo assertion type {t!r}" in u for t in NOT_RUN), u


def test_shipyard_agrees_with_promptfoo_on_traces(
    promptfoo: Path, promptfoo_evals: dict[Path | str, tuple[Path | None, Any]]
) -> None:
    # trace-span-count / -duration, trace-error-spans, trajectory:step-count: promptfoo's runAssertion
    # on Shipyard-shaped traces, Shipyard's scorers on the same spans
    tally = compare_promptfoo_traces(promptfoo, theirs=reference(promptfoo_evals, "traces")[1])
    assert tally.total >= 30
    assert not tally.disagreements and not tally.unsupported, f"{tally}:\n" + "\n".join(tally.disagreements)


def test_shipyard_agrees_with_promptfoos_meteor(
    promptfoo: Path, promptfoo_evals: dict[Path | str, tuple[Path | None, Any]]
) -> None:
    # promptfoo 0.121 as shipped fails every meteor check (its `import("natural")` finds no
    # PorterStemmer); its own meteor code, with that import fixed, is the reference
    tally = compare_promptfoo_meteor(promptfoo, theirs=reference(promptfoo_evals, "meteor")[1])
    assert tally.total >= 15
    assert not tally.disagreements, f"{tally}:\n" + "\n".join(tally.disagreements)
