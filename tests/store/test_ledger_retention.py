"""Ledger retention: `store.retention.ledger_max_age` deletes cost ledger rows (with their feature tags)
by age only, on SQLite and PostgreSQL; interactions keep their own retention; under 32 days is refused
(month budgets are reconciled from the ledger); `shipyard store prune --ledger-max-age` does it on demand."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from typer.testing import CliRunner

from shipyard.cli import app as cli
from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.errors import ShipyardError
from shipyard.store import InteractionRecord, Store

NOW = 1_700_000_000.0
DAY = 86400.0
LEDGER_META = {"ledger": {"features": ["refunds", "web"], "savings": {"cache": 0.01}}}


def fill(
    store: Store, make: Callable[..., InteractionRecord], ages_days: list[float], now: float = NOW
) -> list[InteractionRecord]:
    """Interactions of these ages, each with two ledger rows (a call, a saving) tagged with two features."""
    records = [make(created_at=now - age * DAY, metadata=LEDGER_META) for age in ages_days]
    store.write_interactions(records)
    return records


def counts(store: Store) -> tuple[int, int]:
    """(ledger rows, ledger feature rows)."""
    with store.engine.connect() as conn:
        ledger = conn.execute(text("SELECT count(*) FROM ledger")).scalar_one()
        features = conn.execute(text("SELECT count(*) FROM ledger_features")).scalar_one()
    return int(ledger), int(features)


def test_old_ledger_rows_go_with_their_features_and_recent_ones_stay(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    records = fill(store, record_factory, [500, 450, 401, 399, 40, 1])
    assert counts(store) == (12, 24)
    result = store.prune(ledger_max_age_s=400 * DAY, now=NOW, batch=2)  # several transactions
    assert result.ledger_deleted == 6 and result.deleted == 0
    assert counts(store) == (6, 12)
    for r in records[:3]:
        assert store.ledger_entries(r.id) == []
        assert store.get_interaction(r.id) is not None  # interactions have their own retention
    for r in records[3:]:
        assert {e["kind"] for e in store.ledger_entries(r.id)} == {"call", "saving"}
    [total] = store.ledger_totals()
    assert total["interactions"] == 3 and total["saved_usd"] == pytest.approx(0.03)
    assert {row["key"] for row in store.ledger_totals("feature")} == {"refunds", "web"}
    assert store.prune(ledger_max_age_s=400 * DAY, now=NOW).ledger_deleted == 0  # nothing more to do


def test_interaction_retention_leaves_the_ledger_alone(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    fill(store, record_factory, [100, 50, 1])
    result = store.prune(max_age_s=30 * DAY, max_bytes=1, now=NOW)
    assert result.deleted == 3 and result.ledger_deleted == 0
    assert store.count_interactions() == 0 and counts(store) == (6, 12)
    both = store.prune(max_age_s=30 * DAY, ledger_max_age_s=60 * DAY, now=NOW)
    assert (both.deleted, both.ledger_deleted) == (0, 2) and counts(store) == (4, 8)


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_ledger_ties_at_the_edge_of_a_batch_are_deleted_together(
    store: Store, record_factory: Callable[..., InteractionRecord], batch: int
) -> None:
    fill(store, record_factory, [50, 50, 50, 20])
    assert store.prune(ledger_max_age_s=40 * DAY, now=NOW, batch=batch).ledger_deleted == 6
    assert counts(store) == (2, 4)


def _project(tmp_path: Path, **retention: str) -> Path:
    copy_project(tmp_path)
    path = tmp_path / "shipyard.yaml"
    data = yaml.safe_load(path.read_text())
    data["store"] = {**(data.get("store") or {}), "retention": retention}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("age", ["10d", "31d", "1h"])
def test_a_ledger_max_age_under_32_days_is_a_config_error(tmp_path: Path, age: str) -> None:
    path = _project(tmp_path, ledger_max_age=age)
    with pytest.raises(ShipyardError, match=r"store\.retention\.ledger_max_age") as raised:
        load_config(path)
    assert "at least 32d" in str(raised.value) and "month window" in str(raised.value)


def test_ledger_max_age_settings_that_are_accepted(tmp_path: Path) -> None:
    cfg = load_config(_project(tmp_path, ledger_max_age="400d"))
    assert cfg.store.retention.ledger_max_age_s == 400 * DAY and cfg.store.retention.enabled
    assert load_config(_project(tmp_path, ledger_max_age="32d")).store.retention.ledger_max_age == "32d"
    assert load_config(_project(tmp_path, max_age="30d")).store.retention.ledger_max_age_s is None


def test_the_cli_prunes_the_ledger_by_its_option_or_the_config(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_factory: Callable[..., InteractionRecord],
) -> None:
    path = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", db_url)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    now = time.time()
    with Store(db_url) as store:
        fill(store, record_factory, [500, 100, 1], now=now)
    runner = CliRunner()
    short = runner.invoke(cli, ["store", "prune", "--ledger-max-age", "7d"])
    assert short.exit_code == 2 and "--ledger-max-age" in short.output and "month window" in short.output
    assert "Traceback" not in short.output
    by_option = runner.invoke(cli, ["store", "prune", "--ledger-max-age", "400d"])
    assert by_option.exit_code == 0, by_option.output
    assert "deleted 0 interaction(s)" in by_option.output and "deleted 2 ledger row(s)" in by_option.output
    path.write_text(_project(tmp_path, ledger_max_age="60d").read_text())
    by_config = runner.invoke(cli, ["store", "prune"])
    assert by_config.exit_code == 0, by_config.output
    assert "deleted 2 ledger row(s)" in by_config.output
    with Store(db_url) as store:
        assert store.count_interactions() == 3 and counts(store) == (2, 4)
    path.write_text(_project(tmp_path, ledger_max_age="1d").read_text())
    refused = runner.invoke(cli, ["store", "prune"])
    assert refused.exit_code == 2 and "month window" in refused.output
    helped = runner.invoke(cli, ["store", "prune", "--help"], env={"COLUMNS": "200"})
    assert helped.exit_code == 0 and "--ledger-max-age 400d" in helped.output
