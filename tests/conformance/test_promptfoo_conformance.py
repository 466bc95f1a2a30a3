"""promptfoo itself (npm) and Shipyard on the same configs, verdict for verdict and score for score.

The configs are promptfoo's own example (vendored, see data/promptfoo/SOURCE.md) and assertion
vectors following promptfoo's tests; promptfoo's echo provider answers, so no network is needed, and
Shipyard scores the same replies with the suite it imports from the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from _conformance import PROMPTFOO_CONFIGS, compare_promptfoo

# deterministic promptfoo assertion types Shipyard does not run yet: their cases load and are ERROR
NOT_RUN = {"is-html"}


@pytest.mark.parametrize("config", PROMPTFOO_CONFIGS, ids=lambda p: p.parent.name)
def test_shipyard_agrees_with_promptfoo(promptfoo: Path, config: Path, tmp_path: Path) -> None:
    tally = compare_promptfoo(promptfoo, config, tmp_path)
    assert tally.total > 0
    assert not tally.disagreements, f"{tally}:\n" + "\n".join(tally.disagreements)
    for u in tally.unsupported:  # the file loaded; only the case Shipyard cannot run is ERROR
        assert any(f"promptfoo assertion type {t!r}" in u for t in NOT_RUN), u
