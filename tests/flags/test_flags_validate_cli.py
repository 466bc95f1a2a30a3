"""`shipyard flags validate` and the warnings of `shipyard flags list`: a flag file flagd loads with
rules that can only fail (an unknown operator, a `$ref` to no evaluator) is shown as such, with the
line of each rule, instead of only being logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app

runner = CliRunner()

BROKEN = """{"flags": {
  "good": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
  "bad": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
          "targeting": {"if": [{"nosuchop": [1, 2]}, "on", "off"]}},
  "ref": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
          "targeting": {"$ref": "missing"}}
}}
"""
GOOD = '{"flags": {"good": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}'


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("SHIPYARD_CONFIG", "REDIS_URL", "SHIPYARD_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "broken.json").write_text(BROKEN)
    (tmp_path / "good.json").write_text(GOOD)
    (tmp_path / "refused.json").write_text('{"flags": 3}')
    return tmp_path


def test_validate_lists_rules_that_can_only_fail_with_their_lines(files: Path) -> None:
    result = runner.invoke(app, ["flags", "validate", "--file", "broken.json"])
    assert result.exit_code == 1, result.output
    assert "2 rule(s) can only fail or give null" in result.output
    assert (
        "flags.bad.targeting.if[0].nosuchop" in result.output
        and "unknown operator 'nosuchop'" in result.output
    )
    assert "flags.ref.targeting.$ref" in result.output and "no evaluator named 'missing'" in result.output
    lines = [line.split()[0] for line in result.output.splitlines() if "flags." in line]
    assert lines == ["4", "6"]  # where the rules are in the file


def test_validate_json_and_a_clean_file(files: Path) -> None:
    result = runner.invoke(app, ["flags", "validate", "--file", "broken.json", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["flags"] == 3 and len(data["warnings"]) == 2 and data["warnings"][0].startswith("line 4: ")
    result = runner.invoke(app, ["flags", "validate", "--file", "good.json"])
    assert result.exit_code == 0 and "ok: 1 flags" in result.output


def test_validate_a_file_flagd_refuses_or_a_missing_one_is_a_usage_error(files: Path) -> None:
    result = runner.invoke(app, ["flags", "validate", "--file", "refused.json"])
    assert result.exit_code == 2 and "flags: must be an object" in result.output
    result = runner.invoke(app, ["flags", "validate", "--file", "nope.json"])
    assert result.exit_code == 2 and "no flag file" in result.output


def test_list_shows_the_warnings_on_stderr_and_keeps_json_clean(files: Path) -> None:
    result = runner.invoke(app, ["flags", "list", "--file", "broken.json"])
    assert result.exit_code == 0
    assert "bad" in result.stdout and "warning:" not in result.stdout
    assert "2 rule(s) in broken.json can only fail or give null" in result.stderr
    result = runner.invoke(app, ["flags", "list", "--file", "broken.json", "--json"])
    assert set(json.loads(result.stdout)["flags"]) == {"good", "bad", "ref"}
    result = runner.invoke(app, ["flags", "list", "--file", "good.json"])
    assert result.stderr == ""


def test_validate_has_help_with_an_example() -> None:
    result = runner.invoke(app, ["flags", "validate", "--help"])
    assert result.exit_code == 0 and "Example: shipyard flags validate" in result.output
