"""Eval runs by id prefix (what `eval compare`, `gate approve` and `gate --run` take): the store's one
prefix lookup, as traces and incidents use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.store import AmbiguousPrefixError, Store


def test_an_eval_run_is_found_by_a_unique_prefix_and_an_ambiguous_one_names_the_candidates(
    tmp_path: Path,
) -> None:
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        for run_id in ("abc100", "abc200", "f_x999"):
            store.create_eval_run("support", "support@1.0.0+abc", ["smoke"], "pre-merge", run_id=run_id)
        assert store.get_eval_run("abc1") is None  # an exact id only, unless asked
        found = store.get_eval_run("abc1", prefix=True)
        assert found is not None and found["id"] == "abc100"
        assert store.get_eval_run("abc100", prefix=True)["id"] == "abc100"  # type: ignore[index]
        with pytest.raises(AmbiguousPrefixError) as e:
            store.get_eval_run("abc", prefix=True)
        assert "eval run id prefix 'abc' is ambiguous" in str(e.value) and "abc100, abc200" in str(e.value)
        assert store.get_eval_run("zzz", prefix=True) is None
        assert store.get_eval_run("f%", prefix=True) is None  # % matches itself, not anything
        assert store.get_eval_run("f_", prefix=True)["id"] == "f_x999"  # type: ignore[index]
