"""`shipyard shadow`: the report as tables and as JSON, exit codes, and user errors as messages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from shadow_project import desk_project, llm_url, production_inputs
from test_shadow import _production
from typer.testing import CliRunner

from shipyard.cli import app

__all__ = ["llm_url"]  # the fixture, imported for pytest


def test_shadow_command_reports_differences_by_kind(tmp_path: Path, llm_url: str) -> None:
    runner = CliRunner()
    with desk_project(tmp_path, llm_url) as config:
        asyncio.run(_production(config, production_inputs(6)))
        table = runner.invoke(app, ["shadow", "--agent", "desk", "--candidate", "2.0.0", "-c", str(config)])
        as_json = runner.invoke(
            app,
            [
                "shadow",
                "--agent",
                "desk",
                "--candidate",
                "2.0.0",
                "--filter",
                "contains=refund",
                "--json",
                "-c",
                str(config),
            ],
        )
        bad_filter = runner.invoke(
            app, ["shadow", "-a", "desk", "--candidate", "2.0.0", "--filter", "color=red", "-c", str(config)]
        )
        nothing = runner.invoke(
            app,
            ["shadow", "-a", "desk", "--candidate", "2.0.0", "--filter", "status=failed", "-c", str(config)],
        )
        unknown = runner.invoke(app, ["shadow", "-a", "desk", "--candidate", "9.9.9", "-c", str(config)])
    assert table.exit_code == 0, table.output
    assert "Noise and differences by kind" in table.output and "trajectory" in table.output
    assert "Differences above the noise" in table.output and "PASS" in table.output

    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["verdict"] == "PASS" and doc["summary"]["compared"] == 2  # the two refund requests
    [first, second] = doc["differences"]["trajectory"]
    for d in (first, second):
        assert d["production_trace"] and d["baseline_trace"] and d["candidate_trace"]
        assert d["candidate"][-1].startswith("refund ")
    assert doc["comparisons"][0]["links"]["candidate"].startswith("/dashboard/traces/")

    assert (
        bad_filter.exit_code == 2
        and "KEY=VALUE" in bad_filter.output
        and "Traceback" not in bad_filter.output
    )
    assert nothing.exit_code == 2 and "no recorded production interactions" in nothing.output
    assert unknown.exit_code != 0 and "9.9.9" in unknown.output and "Traceback" not in unknown.output


def test_shadow_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["shadow", "--help"])
    assert (
        result.exit_code == 0
        and "Example: shipyard shadow --agent support --candidate 1.3.0" in result.output
    )
