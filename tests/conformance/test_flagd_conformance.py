"""flagd-testbed's gherkin vectors (evaluator and provider suites) on the testbed's flag files, through
Shipyard's OpenFeature provider: every file flagd loads loads, every vector resolves as flagd says
(value, reason, error code, metadata). Material: data/flagd/SOURCE.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from _flagd import (
    ALL_FLAG_FILES,
    DATA,
    EVALUATOR_FEATURES,
    EVALUATOR_FLAG_FILE,
    PROVIDER_FEATURES,
    PROVIDER_FLAGS,
    Flags,
    Vector,
    all_flags,
    run_vector,
    vectors,
)

EVALUATOR_VECTORS = list(vectors(EVALUATOR_FEATURES))
PROVIDER_VECTORS = list(vectors(PROVIDER_FEATURES))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Flags]:
    tmp = tmp_path_factory.mktemp("flagd")
    return {
        "evaluator": Flags(EVALUATOR_FLAG_FILE),
        "provider": Flags(all_flags(PROVIDER_FLAGS, tmp / "allFlags.json")),
    }


def _selected(name: str) -> Flags:
    return Flags(DATA / "flags" / name)


@pytest.mark.parametrize("path", ALL_FLAG_FILES, ids=lambda p: p.name)
def test_every_testbed_flag_file_loads(path: Path) -> None:
    assert Flags(path).refused is None


def test_the_vectors_are_all_there() -> None:
    # the testbed's scenarios, less the bucketing alternatives Shipyard does not implement
    assert len(EVALUATOR_VECTORS) == 125 and len(PROVIDER_VECTORS) == 125
    tags = {t for v in EVALUATOR_VECTORS + PROVIDER_VECTORS for t in v.tags}
    assert {"@operator-errors", "@no-default-variant", "@metadata", "@fractional-v2"} <= tags


@pytest.mark.parametrize("vector", EVALUATOR_VECTORS, ids=lambda v: v.label)
def test_evaluator_vector(vector: Vector, sources: dict[str, Flags]) -> None:
    outcome = run_vector(vector, sources["evaluator"], _selected)
    assert outcome.agreed, "; ".join(outcome.problems)


@pytest.mark.parametrize("vector", PROVIDER_VECTORS, ids=lambda v: v.label)
def test_provider_vector(vector: Vector, sources: dict[str, Flags]) -> None:
    outcome = run_vector(vector, sources["provider"], _selected)
    assert outcome.agreed, "; ".join(outcome.problems)
