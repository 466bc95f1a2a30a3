"""The demo project keeps its budget counters in one process (`budgets:` without a backend: memory, so the
demo needs nothing installed). `shipyard serve --workers N` on it is refused before anything starts, with
a message that names the setting and the two ways out; the demo's shipyard.yaml says so beside it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import load_config
from shipyard.demo import copy_project, project_dir


def test_serving_the_demo_with_workers_is_refused_naming_the_setting_and_the_fix(tmp_path: Path) -> None:
    config = copy_project(tmp_path / "demo") / "shipyard.yaml"
    assert load_config(config).budgets.backend == "memory"
    result = CliRunner().invoke(app, ["serve", "--workers", "2", "-c", str(config)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "Traceback" not in said
    assert "shipyard.yaml: budgets.backend memory keeps its counters in one process" in said
    assert "2 workers would each allow the whole budget" in said
    assert "set budgets.backend: redis" in said and "or serve with one worker" in said
    assert not (config.parent / ".shipyard" / "journal").exists()  # refused before the server started


def test_the_demo_config_documents_why_workers_need_redis_for_its_budgets() -> None:
    lines = (project_dir() / "shipyard.yaml").read_text().splitlines()
    comments = " ".join(line.strip().lstrip("#").strip() for line in lines if line.strip().startswith("#"))
    assert "`backend: redis` shares them across replicas and the workers of `shipyard serve --workers N`" in (
        comments
    )
    assert "refuses (exit 2) to serve this file with more than one worker" in comments
