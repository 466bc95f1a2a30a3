"""`shipyard cost report`: a rich table, JSON and CSV from a project's ledger; exit 2 on bad arguments."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testdb import at_newest_schema
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.store import InteractionRecord, LLMCallRecord, Store, default_database_url, new_id

runner = CliRunner()


def _record(user: str, session: str, cost: float, *, features: list[str] | None = None, saved: float = 0.0,
            model: str = "small", at: float | None = None) -> InteractionRecord:  # fmt: skip
    ledger: dict[str, object] = {}
    if features:
        ledger["features"] = features
    if saved:
        ledger["savings"] = {"cache": saved}
    return InteractionRecord(
        id=new_id(), trace_id=new_id(), session_id=session, user_id=user, agent="support",
        version="support@1.0.0+abc", traffic_source="production", input="q", output="a",
        status="completed", latency_ms=5.0, input_tokens=1000, output_tokens=100,
        cached_input_tokens=400, cost_usd=cost, metadata={"ledger": ledger} if ledger else {},
        llm_calls=[LLMCallRecord(model, "openai", 5.0, 1000, 100, 400, cost, tier="small")],
        created_at=time.time() if at is None else at,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "rules.yaml").write_text('default: "ok"\nrules: []\n')
    (tmp_path / "shipyard.yaml").write_text(
        "models:\n  small: {provider: scripted, rules: rules.yaml, prices: {input: 1, output: 2}}\nagents: {}\n"
    )
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with Store(at_newest_schema(default_database_url(tmp_path)), root=tmp_path) as store:
        store.write_interactions(
            [
                _record("alice", "s1", 0.30, features=["refunds"]),
                _record("alice", "s2", 0.20),
                _record("bob", "s3", 0.05, saved=0.40, model="large"),
                _record("old", "s4", 9.0, at=time.time() - 3 * 86400),
            ]
        )
    yield tmp_path


def test_report_by_user_prints_a_table_with_saved_next_to_spent(project: Path) -> None:
    result = runner.invoke(app, ["cost", "report", "--by", "user", "--since", "24h"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Cost by user (since 24h; all)" in out
    lines = [line for line in out.splitlines() if "alice" in line or "bob" in line or "total" in line]
    assert "alice" in lines[0] and "$0.5000" in lines[0]  # biggest spend first
    assert "bob" in lines[1] and "$0.0500" in lines[1] and "$0.4000" in lines[1] and "89%" in lines[1]
    assert "cache $0.4000" in lines[1]
    assert "total" in lines[2] and "$0.5500" in lines[2]
    assert "old" not in out  # three days ago: outside --since 24h


def test_report_json_csv_top_and_feature(project: Path) -> None:
    result = runner.invoke(app, ["cost", "report", "--by", "user", "--top", "1", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [r["key"] for r in doc["rows"]] == ["old"] and doc["total"]["spent_usd"] == pytest.approx(9.55)
    assert doc["rows"][0]["cached_input_tokens"] == 400
    result = runner.invoke(app, ["cost", "report", "--by", "feature", "--since", "1d", "--csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["feature"] for r in rows] == ["refunds", "(no feature tag)", "total"]  # named as in the table
    assert float(rows[0]["spent_usd"]) == pytest.approx(0.30)
    assert float(rows[1]["saved_cache_usd"]) == pytest.approx(0.40)
    result = runner.invoke(app, ["cost", "report", "--by", "model", "--agent", "support", "--json"])
    rows = json.loads(result.output)["rows"]
    assert [r["key"] for r in rows] == ["small", "large", None]  # None: the saving rows, which have no model
    assert [r["label"] for r in rows] == ["small", "large", "(no model call: cache)"]
    day = runner.invoke(app, ["cost", "report", "--by", "day", "--json"])
    assert len(json.loads(day.output)["rows"]) == 2


def test_empty_window_says_nothing_was_spent(project: Path) -> None:
    result = runner.invoke(app, ["cost", "report", "--by", "session", "--since", "2999-01-01"])
    assert result.exit_code == 0, result.output
    assert "no model calls in the ledger since 2999-01-01" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "colour"], "--by 'colour' is not a report dimension"),
        (["--since", "yesterday"], "--since: 'yesterday' is neither a length of time"),
        (["--json", "--csv"], "--json and --csv cannot be used together"),
        (["--top", "0"], "greater than or equal to 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(project: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["cost", "report", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_help_has_an_example() -> None:
    result = runner.invoke(app, ["cost", "report", "--help"])
    assert result.exit_code == 0 and "Example: shipyard cost report" in result.output
