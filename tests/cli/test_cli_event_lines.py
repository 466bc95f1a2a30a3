"""A command's event lines as its reader gets them: readable one-line text when stderr is a terminal (a
person), JSON lines when it is not (pipes, CI, log collectors); `SHIPYARD_LOG_FORMAT=json|text` forces
either, and any other value is a usage error (exit 2) before the command runs. The event here is the
real `gate_overridden` audit warning of `shipyard rollout override-gate` on the demo project."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app

runner = CliRunner()

READABLE = re.compile(
    r"^\d\d:\d\d:\d\d warning  gate_overridden  audit=true agent=support action=gate_override "
    r"candidate=support@1\.0\.0\+\w+ step=0 actor=bo overridden_by=bo reason=\"demo day\" gate_said=\{"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The demo project on its own SQLite store: (its shipyard.yaml, the environment to run it in)."""
    from shipyard.demo import copy_project

    root = tmp_path_factory.mktemp("event_lines")
    project = copy_project(root / "proj")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"SHIPYARD_DATABASE_URL": f"sqlite:///{root / 'shipyard.db'}", "COLUMNS": "200"}
    return project / "shipyard.yaml", env


def _override_gate(config: Path, env: dict[str, str], *, tty: bool) -> tuple[int, str, str]:
    """Run `shipyard rollout override-gate` in a process of its own, its stderr a terminal (a pty) or a
    pipe: (exit code, stdout, stderr)."""
    cmd = [sys.executable, "-m", "shipyard", "rollout", "override-gate", "support", "1.0.0"]
    cmd += ["--reason", "demo day", "--by", "bo", "-c", str(config)]
    if not tty:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
        return done.returncode, done.stdout, done.stderr
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    err = b""
    while True:  # read while it runs: a full terminal buffer would block its writes
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every end of the terminal closed (the process exited)
            break
        if not chunk:
            break
        err += chunk
    os.close(leader)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=120), out, err.decode().replace("\r\n", "\n")


def _event_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "gate_overridden" in line]


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal needs a POSIX system")
@pytest.mark.parametrize(
    ("tty", "forced", "readable"),
    [
        (True, None, True),  # a person at a terminal
        (False, None, False),  # a pipe: JSON lines, as before
        (True, "json", False),
        (False, " Text ", True),  # case and blanks do not matter
    ],
)
def test_event_lines_are_readable_on_a_terminal_and_json_elsewhere_unless_forced(
    demo: tuple[Path, dict[str, str]], tty: bool, forced: str | None, readable: bool
) -> None:
    config, env = demo
    if forced is not None:
        env = {**env, "SHIPYARD_LOG_FORMAT": forced}
    code, out, err = _override_gate(config, env, tty=tty)
    assert code == 0, (out, err)
    assert "production gate overridden by bo: demo day" in out  # the command's own output, on stdout
    [line] = _event_lines(err)
    if readable:
        assert READABLE.match(line), line
        assert "{" not in line.split(" gate_said=")[0]  # JSON only for a value that is a mapping
        assert "timestamp" not in line and "level" not in line
    else:
        event = json.loads(line)
        assert (event["event"], event["level"], event["audit"]) == ("gate_overridden", "warning", True)
        assert (event["agent"], event["overridden_by"], event["reason"]) == ("support", "bo", "demo day")


@pytest.mark.parametrize(
    ("env", "bad", "choices"),
    [
        ("SHIPYARD_LOG_FORMAT", "xml", "json, text"),
        ("SHIPYARD_LOG_FORMAT", "JSONL", "json, text"),
        ("SHIPYARD_LOG_FORMAT", "true", "json, text"),
        ("SHIPYARD_LOG_LEVEL", "verbose", "debug, info, warning, error"),
        ("SHIPYARD_LOG_LEVEL", "warn", "debug, info, warning, error"),
    ],
)
def test_an_unknown_log_setting_is_a_usage_error_before_the_command_runs(
    demo: tuple[Path, dict[str, str]], env: str, bad: str, choices: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, environ = demo
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", environ["SHIPYARD_DATABASE_URL"])
    monkeypatch.setenv(env, bad)
    result = runner.invoke(
        app, ["rollout", "override-gate", "support", "1.0.0", "--reason", "never", "-c", str(config)]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"error: {env} must be one of {choices}, got {bad!r}" in text
    assert "Traceback" not in result.output and "gate overridden" not in text  # nothing ran
    assert "never" not in text
    monkeypatch.setenv(env, "")  # empty is unset: the terminal decides
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0, result.output
