"""`shipyard prompts lint|diff` through the real CLI app, with exit codes."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TOOLS, git, write_bundle
from shipyard.cli import _app as cli_app
from shipyard.cli import app

runner = CliRunner()
_ids = itertools.count()

AGENT = '''\
from shipyard import agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()

@tools.tool()
def lookup_order(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id}

@agent("support", tools=tools)
async def support(user_input, ctx):
    return "ok"
'''

CONFIG = """\
models:
  m: {{provider: scripted, rules: rules.yaml}}
agents:
  support:
    entry: {module}:support
    prompts: prompts/support
    prompt_variables: {{product: Acme}}
    model: {{name: m}}
    versions:
      - prompts: prompts/next
  other:
    entry: {entry}
    model: {{name: m}}
    prompts: prompts/support
    prompt_variables: {{product: Acme}}
"""


@pytest.fixture(autouse=True)
def _wide_and_isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", "300")
    # the CLI's consoles took their width at import: widen them too, so a long tmp path (as under
    # pytest-xdist) does not wrap the messages the tests look for
    monkeypatch.setattr(cli_app.console, "width", 300)
    monkeypatch.setattr(cli_app.err_console, "width", 300)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("lintagent_"):
            del sys.modules[name]


def project(root: Path, *, other_entry: str | None = None) -> Path:
    """A project with agent `support` (a version with another bundle) and agent `other`."""
    module = f"lintagent_{next(_ids)}"
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(AGENT)
    write_bundle(root / "prompts" / "support")
    write_bundle(root / "prompts" / "next", version="1.1.0\n")
    entry = other_entry or f"{module}:support"
    (root / "shipyard.yaml").write_text(CONFIG.format(module=module, entry=entry))
    return root / "shipyard.yaml"


def test_lint_clean_project_exits_0(tmp_path: Path) -> None:
    cfg = project(tmp_path / "p")
    result = runner.invoke(app, ["prompts", "lint", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "ok support " in result.output and "ok support versions[0]" in result.output
    assert "3 bundle(s): 0 error(s), 0 warning(s)" in result.output


def test_lint_reports_errors_with_exit_1(tmp_path: Path) -> None:
    cfg = project(tmp_path / "p")
    write_bundle(tmp_path / "p" / "prompts" / "next", tool_descriptions=TOOLS + "refund:\n  description: R\n")
    result = runner.invoke(app, ["prompts", "lint", "support", "-c", str(cfg)])
    assert result.exit_code == 1, result.output
    assert "describes tool 'refund', which the agent does not register" in result.output
    assert "support versions[0]" in result.output
    assert "2 bundle(s): 1 error(s), 0 warning(s)" in result.output


def test_lint_warnings_alone_exit_0(tmp_path: Path) -> None:
    cfg = project(tmp_path / "p")
    write_bundle(tmp_path / "p" / "prompts" / "support", tool_descriptions="")
    result = runner.invoke(app, ["prompts", "lint", "other", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "registered tool 'lookup_order' has no description" in result.output


def test_lint_entry_point_that_does_not_import(tmp_path: Path) -> None:
    cfg = project(tmp_path / "p", other_entry="no_such_module_xyz:agent")
    result = runner.invoke(app, ["prompts", "lint", "-c", str(cfg)])
    assert result.exit_code == 1, result.output
    assert "cannot import module 'no_such_module_xyz'" in result.output
    assert "Traceback" not in result.output


def test_lint_unknown_agent_is_a_usage_error(tmp_path: Path) -> None:
    cfg = project(tmp_path / "p")
    result = runner.invoke(app, ["prompts", "lint", "nobody", "-c", str(cfg)])
    assert result.exit_code == 2
    assert "no agent named 'nobody'" in result.output


def test_lint_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prompts", "lint", "-c", str(tmp_path / "shipyard.yaml")])
    assert result.exit_code == 2 and "file not found" in result.output


def test_lint_path_without_config(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "b")
    result = runner.invoke(app, ["prompts", "lint", "--path", str(path)])
    assert result.exit_code == 1 and "'product' has no value" in result.output
    result = runner.invoke(app, ["prompts", "lint", "--path", str(path), "--var", "product=Acme"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["prompts", "lint", "--path", str(path), "--var", "product"])
    assert result.exit_code == 2 and "is not KEY=VALUE" in result.output
    result = runner.invoke(app, ["prompts", "lint", "--path", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_diff_two_folders(tmp_path: Path) -> None:
    a = write_bundle(tmp_path / "a")
    b = write_bundle(
        tmp_path / "b", version="2.0.0\n", tool_descriptions=TOOLS + "refund:\n  description: R\n"
    )
    result = runner.invoke(app, ["prompts", "diff", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert "-1.0.0" in result.output and "+2.0.0" in result.output and "+refund:" in result.output
    assert "2 file(s) changed, +3 -1 lines" in result.output
    assert "label 1.0.0 -> 2.0.0" in result.output and "tool refund: added" in result.output
    result = runner.invoke(app, ["prompts", "diff", str(a), str(b), "--exit-code"])
    assert result.exit_code == 1
    result = runner.invoke(app, ["prompts", "diff", str(a), str(a), "--exit-code"])
    assert result.exit_code == 0 and "no changes" in result.output


def test_diff_git_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    cfg = project(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    write_bundle(repo / "prompts" / "support", version="1.0.1\n")
    git(repo, "commit", "-q", "-am", "two")
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["prompts", "diff", "HEAD~1", "HEAD", "--agent", "support", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "--- HEAD~1:prompts/support/version.txt" in result.output and "+1.0.1" in result.output
    # REV:path, and the work tree folder
    result = runner.invoke(app, ["prompts", "diff", "HEAD~1:prompts/support", "prompts/support"])
    assert result.exit_code == 0 and "label 1.0.0 -> 1.0.1" in result.output
    # two agents have bundles, so a bare revision needs --agent
    result = runner.invoke(app, ["prompts", "diff", "HEAD~1", "HEAD", "-c", str(cfg)])
    assert result.exit_code == 2 and "--agent" in result.output
    result = runner.invoke(app, ["prompts", "diff", "nope", "HEAD", "-a", "support", "-c", str(cfg)])
    assert result.exit_code == 2 and "'nope' is not a git revision" in result.output


def test_help_has_examples() -> None:
    for cmd in (["prompts", "lint", "--help"], ["prompts", "diff", "--help"]):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 0 and "Example: shipyard prompts" in result.output
