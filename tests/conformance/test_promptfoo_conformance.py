"""promptfoo itself (npm) and Shipyard on the same configs, verdict for verdict and score for score.

The configs are promptfoo's own example (vendored, see data/promptfoo/SOURCE.md) and assertion
vectors following promptfoo's tests; promptfoo's echo provider or a local scripted provider answers,
so no network is needed, and Shipyard scores the same replies with the suite it imports from the same
file (a `webhook` check asks a local HTTP server both tools reach)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _conformance import (
    NEEDS,
    PROMPTFOO_CONFIGS,
    compare_promptfoo,
    compare_promptfoo_meteor,
    compare_promptfoo_traces,
)
from debian import debian_program

# deterministic promptfoo assertion types Shipyard does not run: their cases load and are ERROR.
# None is left in these configs (the types Shipyard does not run are listed in the README).
NOT_RUN: set[str] = set()


@pytest.mark.parametrize("config", PROMPTFOO_CONFIGS, ids=lambda p: p.parent.name)
def test_shipyard_agrees_with_promptfoo(promptfoo: Path, config: Path, tmp_path: Path) -> None:
    program = NEEDS.get(config.parent.name)
    if program:
        debian_program(program)  # installed when missing, else the config is skipped saying why
    tally = compare_promptfoo(promptfoo, config, tmp_path)
    assert tally.total > 0
    assert not tally.disagreements, f"{tally}:\n" + "\n".join(tally.disagreements)
    for u in tally.unsupported:  # the file loaded; only the case Shipyard cannot run is ERROR
        assert any(f"promptfoo assertion type {t!r}" in u for t in NOT_RUN), u


def test_shipyard_agrees_with_promptfoo_on_traces(promptfoo: Path) -> None:
    # trace-span-count / -duration, trace-error-spans, trajectory:step-count: promptfoo's runAssertion
    # on Shipyard-shaped traces, Shipyard's scorers on the same spans
    tally = compare_promptfoo_traces(promptfoo)
    assert tally.total >= 30
    assert not tally.disagreements and not tally.unsupported, f"{tally}:\n" + "\n".join(tally.disagreements)


def test_shipyard_agrees_with_promptfoos_meteor(promptfoo: Path) -> None:
    # promptfoo 0.121 as shipped fails every meteor check (its `import("natural")` finds no
    # PorterStemmer); its own meteor code, with that import fixed, is the reference
    tally = compare_promptfoo_meteor(promptfoo)
    assert tally.total >= 15
    assert not tally.disagreements, f"{tally}:\n" + "\n".join(tally.disagreements)
