"""Small defects users met walking through the CLI, each with the input that showed it: trace id
prefixes and `traces list --json`, `init` in the current folder, the mock model's rules hint, revoking
a key twice, `shadow` with an unknown candidate or a tiny sample, `prompts diff` of missing folders,
the cost report's row without a model, a bad `store.url`, and a closed stdout."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from records import interaction
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.demo import copy_project
from shipyard.store import InteractionRecord, Store

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo project (SQLite store in its folder); the working directory is outside it and no git."""
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no enclosing repository is found
    return copy_project(tmp_path / "demo") / "shipyard.yaml"


def sy(project: Path | None, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, *(("-c", str(project)) if project else ())])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def store_of(project: Path) -> Store:
    from shipyard.config import load_config

    return Store.from_config(load_config(project))


def write(project: Path, *records: InteractionRecord) -> None:
    with store_of(project) as store:
        store.write_interactions(list(records))


# 1. traces ---------------------------------------------------------------------------------------------
def test_traces_show_takes_a_unique_prefix_and_names_the_candidates_of_an_ambiguous_one(
    project: Path,
) -> None:
    write(
        project,
        interaction(trace_id="abc1230000000000000000000000000a", session_id="first"),
        interaction(trace_id="abc1240000000000000000000000000b", session_id="second"),
        interaction(trace_id="ffff0000000000000000000000000000", session_id="third"),
    )
    code, out = sy(project, "traces", "show", "abc123")
    assert code == 0 and "session first" in out and "abc1230000000000000000000000000a" in out, out
    code, out = sy(project, "traces", "show", "ffff")
    assert code == 0 and "session third" in out, out
    code, out = sy(project, "traces", "show", "abc12")
    assert code == 2 and "ambiguous" in out, out
    assert "abc1230000000000000000000000000a" in out and "abc1240000000000000000000000000b" in out
    for missing in ("abd", "%", "_bc"):  # LIKE wildcards match only themselves
        code, out = sy(project, "traces", "show", missing)
        assert code == 2 and "no trace or interaction" in out, (missing, out)


def test_traces_list_shows_a_prefix_traces_show_takes_and_json_has_the_full_ids(project: Path) -> None:
    records = [interaction(session_id=f"s{i}", created_at=1_000_000 + i) for i in range(3)]
    write(project, *records)
    code, out = sy(project, "traces", "list")
    assert code == 0, out
    newest = records[-1].trace_id
    assert newest[:12] in out and newest not in out  # a short id, whole, not cut by the table
    code, shown = sy(project, "traces", "show", newest[:12])
    assert code == 0 and newest in shown
    result = runner.invoke(app, ["traces", "list", "--json", "--session", "s1", "-c", str(project)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)  # one JSON document
    assert [r["trace_id"] for r in doc] == [records[1].trace_id] and doc[0]["session_id"] == "s1"
    result = runner.invoke(app, ["traces", "list", "--json", "--session", "nobody", "-c", str(project)])
    assert result.exit_code == 0 and json.loads(result.output) == []


# 2. init ----------------------------------------------------------------------------------------------
def test_init_in_the_current_folder_has_no_cd_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = sy(None, "init")
    assert code == 0 and "Next: shipyard run assistant" in out and "cd ." not in out, out
    code, out = sy(None, "init", str(tmp_path), "--force")  # the same folder, named
    assert code == 0 and " cd " not in out, out
    code, out = sy(None, "init", "sub")
    assert code == 0 and "Next: cd sub and shipyard run assistant" in out, out
    code, out = sy(None, "init", "other", "--template", "langgraph")
    assert code == 0 and "Next, in other:" in out, out
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    code, out = sy(None, "init", ".", "--template", "langgraph")
    assert code == 0 and "Next:" in out and "Next, in" not in out, out


# 3. mock-llm ------------------------------------------------------------------------------------------
def test_bad_rules_point_at_help_that_describes_every_rules_field(tmp_path: Path) -> None:
    from shipyard.llm._scripted import Rule, Rules, ToolCallSpec, When

    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - when: {usr: hi}\n    reply: x\n")
    code, out = sy(None, "mock-llm", "--rules", str(bad), "--port", "0")
    assert code == 2 and "line 2" in out and "usr" in out, out
    assert "shipyard mock-llm --help" in out and "_scripted.py" not in out
    result = runner.invoke(app, ["mock-llm", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    fields = {*Rules.model_fields, *Rule.model_fields, *When.model_fields, *ToolCallSpec.model_fields}
    missing = [f for f in sorted(fields) if f"{f}:" not in result.output]
    assert not missing, f"`shipyard mock-llm --help` does not describe {missing}"
    assert "{result[status]}" in result.output  # markup-like brackets are shown as written


# 4. keys ----------------------------------------------------------------------------------------------
def test_revoking_a_revoked_key_says_when_and_changes_nothing(project: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "--role", "read", "-c", str(project)])
    assert result.exit_code == 0, result.output
    with store_of(project) as store:
        (row,) = store.list_api_keys()
    code, out = sy(project, "keys", "revoke", row["prefix"])
    assert code == 0 and out.startswith(f"revoked {row['prefix']}"), out
    with store_of(project) as store:
        first = store.list_api_keys()[0]["revoked_at"]
    code, out = sy(project, "keys", "revoke", row["id"])  # by id this time
    assert code == 0 and "already revoked at " + str(first)[:19] in out, out
    with store_of(project) as store:
        assert store.list_api_keys()[0]["revoked_at"] == first
    code, out = sy(project, "keys", "revoke", "shp_nothere")
    assert code == 2 and "no API key" in out


# 5. shadow --------------------------------------------------------------------------------------------
def test_shadow_refuses_an_unknown_candidate_before_replaying(project: Path) -> None:
    code, out = sy(project, "run", "support", "How long do refunds take?")
    assert code == 0, out
    code, out = sy(project, "shadow", "--agent", "support", "--candidate", "9.9.9")
    assert code == 2 and "no version '9.9.9'" in out and "replaying" not in out, out


def test_shadow_of_a_tiny_sample_says_what_it_could_not_see(project: Path) -> None:
    for q in ("How long do refunds take?", "Where is my order 10001?"):
        code, out = sy(project, "run", "support", q)
        assert code == 0, out
    code, out = sy(project, "shadow", "--agent", "support", "--candidate", "1.0.0", "--seed", "1")
    assert code == 0 and "PASS" in out, out
    assert "sample: 2 interaction(s) compared; a change in up to 78% of interactions could go unseen" in out
    result = runner.invoke(
        app, ["shadow", "--agent", "support", "--candidate", "1.0.0", "--json", "-c", str(project)]
    )
    assert result.exit_code == 0, result.output
    sample = json.loads(result.output)["sample"]
    assert sample["compared"] == 2 and sample["unseen_rate_bound"] == pytest.approx(1 - 0.05**0.5, abs=1e-4)


def test_sample_power_names_kinds_a_sample_cannot_show() -> None:
    from shipyard.cli.shadow import sample_power

    def kinds(compared: int, noisy: int) -> dict[str, object]:
        return {
            "compared": compared,
            "kinds": {"output": {"kind": "output", "compared": compared, "noisy": noisy}},
        }

    # no noise: one difference is already above it
    assert sample_power(kinds(2, 0), 0.05)["blind_kinds"] == []
    # noise on 1 of 2: the other one differing would have p = 0.75
    assert sample_power(kinds(2, 1), 0.05)["blind_kinds"] == ["output"]
    # noise on 4 of 40: 36 differences would be far above it; noise on half: never
    assert sample_power(kinds(40, 4), 0.05)["blind_kinds"] == []
    assert sample_power(kinds(40, 20), 0.05)["blind_kinds"] == ["output"]
    # noisy everywhere: nothing can be compared
    assert sample_power(kinds(5, 5), 0.05)["blind_kinds"] == ["output"]
    assert sample_power({"compared": 0, "kinds": {}}, 0.05)["unseen_rate_bound"] == 1.0
    assert sample_power(kinds(50, 0), 0.05)["unseen_rate_bound"] == pytest.approx(0.0582, abs=1e-4)


# 6. prompts diff --------------------------------------------------------------------------------------
def test_prompts_diff_of_missing_folders_says_they_do_not_exist(project: Path) -> None:
    code, out = sy(project, "prompts", "diff", "nodir1", "nodir2")
    assert code == 2 and "no folder 'nodir1'" in out and "not a git revision" in out, out
    Path("a_file").write_text("x")
    code, out = sy(project, "prompts", "diff", "a_file", "nodir2")
    assert code == 2 and "'a_file' is a file, not a prompt bundle folder" in out, out
    bundle = str(project.parent / "prompts" / "support" / "v1.0")
    code, out = sy(project, "prompts", "diff", bundle, bundle)
    assert code == 0, out


# 7. cost report ---------------------------------------------------------------------------------------
def test_cost_by_model_labels_the_cache_row_the_same_in_table_json_and_csv(project: Path) -> None:
    for _ in range(2):  # the second answer comes from the exact cache: savings, no model call
        code, out = sy(project, "run", "support", "How long do refunds take?")
        assert code == 0, out
    code, out = sy(project, "cost", "report", "--by", "model")
    assert code == 0 and "(no model call: cache)" in out and "(none)" not in out, out
    result = runner.invoke(app, ["cost", "report", "--by", "model", "--json", "-c", str(project)])
    doc = json.loads(result.output)
    (cache_row,) = [r for r in doc["rows"] if r["key"] is None]
    assert cache_row["label"] == "(no model call: cache)" and cache_row["calls"] == 0
    assert cache_row["savings"]["cache"] > 0 and doc["total"]["label"] == "total"
    assert all(r["label"] == r["key"] for r in doc["rows"] if r["key"] is not None)
    result = runner.invoke(app, ["cost", "report", "--by", "model", "--csv", "-c", str(project)])
    names = [row[0] for row in csv.reader(io.StringIO(result.output))]
    assert names[0] == "model" and "(no model call: cache)" in names and names[-1] == "total"
    code, out = sy(project, "cost", "report", "--by", "user")
    assert code == 0 and "(no user id)" in out, out  # `shipyard run` without --user


# 9. store.url -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("bogus://x", "unknown database backend 'bogus'"),
        ("not a url", "cannot parse the database URL"),
        ("postgresql+nodriver://u@h/x", "unsupported database URL"),
    ],
)
def test_a_bad_store_url_is_a_config_error_with_file_and_line(project: Path, url: str, said: str) -> None:
    text = project.read_text()
    assert "\nstore:" not in text
    project.write_text(text + f'\nstore:\n  url: "{url}"\n')
    line = len(project.read_text().splitlines())
    code, out = sy(project, "traces", "list")
    assert code == 2 and f"{project}: 1 problem(s)" in out, out
    assert f"line {line}: store.url: " in out and said in out, out


def test_an_unreachable_store_url_names_where_it_is_set(project: Path) -> None:
    project.write_text(project.read_text() + '\nstore:\n  url: "postgresql://nobody@127.0.0.1:9/x"\n')
    line = len(project.read_text().splitlines())
    code, out = sy(project, "traces", "list")
    assert (
        code == 2
        and "cannot open the database" in out
        and f"store.url is set in {project} line {line}" in out
    ), out


# 10. a closed stdout ----------------------------------------------------------------------------------
def shipyard_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The `shipyard` command, run with a stdout whose reader has gone before it writes."""
    read, write_end = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "shipyard", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ("versions",),  # a rich table
        ("traces", "list", "--json"),  # typer.echo
        ("cost", "report", "--csv"),  # print(), flushed at the end
    ],
)
def test_a_closed_stdout_ends_quietly_with_the_sigpipe_code(project: Path, args: tuple[str, ...]) -> None:
    from shipyard.cli._app import STDOUT_CLOSED

    code, out = sy(project, "run", "support", "How long do refunds take?")
    assert code == 0, out
    done = shipyard_into_closed_pipe(*args, "-c", str(project))
    assert done.returncode == STDOUT_CLOSED == 141, done.stderr.decode()
    assert done.stderr == b""


def test_an_open_stdout_keeps_the_exit_codes(project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "traces", "show", "nope", "-c", str(project)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and b"no trace or interaction" in done.stderr
