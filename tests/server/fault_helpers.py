"""Helpers of the fault tests: a real `shipyard serve` process on a copy of the demo project, its
logs, a slow agent that waits for the test's word (so a request is surely in flight), and an agent
that says what a flag is to `ctx.flags`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from server_helpers import HTTP, free_port
from waiting import wait_until
from yaml_sections import add_yaml

from shipyard.demo import copy_project

SHIPYARD = Path(sys.executable).with_name("shipyard")
TEST_AGENTS = """
import asyncio
import os
from pathlib import Path

from shipyard import agent


@agent("slow")
async def slow(user_input: str, ctx) -> str:
    folder = Path(os.environ["FAULT_TEST_DIR"])
    (folder / f"started-{user_input}").touch()
    while not (folder / "release").exists():
        await asyncio.sleep(0.01)
    return f"done {user_input}"


@agent("probe")
async def probe(user_input: str, ctx) -> str:
    return "on" if ctx.flags.enabled(user_input) else "off"
"""
TEST_AGENTS_YAML = (
    "  slow:\n    entry: fault_agents:slow\n    model: {name: scripted-small}\n"
    "  probe:\n    entry: fault_agents:probe\n    model: {name: scripted-small}\n"
)


def demo_project(folder: Path, *, extra_yaml: str = "", test_agents: bool = False) -> Path:
    """The demo project in `folder`, plus `extra_yaml`'s sections in shipyard.yaml, and with
    `test_agents` two more agents: `slow` (answers once the file `release` exists in
    $FAULT_TEST_DIR) and `probe` (answers whether the flag its input names is on, as `ctx.flags` sees it)."""
    copy_project(folder)
    path = folder / "shipyard.yaml"
    text = path.read_text()
    if test_agents:
        (folder / "fault_agents.py").write_text(TEST_AGENTS)
        text = text.replace("agents:\n", "agents:\n" + TEST_AGENTS_YAML, 1)
    path.write_text(add_yaml(text, extra_yaml))
    return folder


def env_with(**overrides: str | None) -> dict[str, str]:
    """This process's environment without any Shipyard database / Redis setting, plus `overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SHIPYARD_DATABASE_URL", "SHIPYARD_REDIS_URL", "REDIS_URL", "SHIPYARD_CONFIG")
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


@dataclass
class ServeProcess:
    """A running `shipyard serve`; `stderr` holds what the CLI says, `stdout` the JSON event lines."""

    project: Path
    port: int
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.out.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self) -> int:
        """Wait for the process to end (a hang is a test failure, after a generous limit)."""
        try:
            return self.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"shipyard serve did not exit:\n{self.stderr()[-2000:]}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)


def start(project: Path, env: dict[str, str], *, port: int | None = None, tag: str = "serve") -> ServeProcess:
    """Start `shipyard serve` on the project (not waiting for anything)."""
    port = port or free_port()
    out, err = project / f"{tag}.out", project / f"{tag}.err"
    with open(out, "ab") as o, open(err, "ab") as e:
        proc = subprocess.Popen(
            [str(SHIPYARD), "serve", "--port", str(port), "--config", str(project / "shipyard.yaml")],
            cwd=project,
            stdout=o,
            stderr=e,
            env=env,
        )
    return ServeProcess(project, port, proc, out, err, env)


def start_ready(project: Path, env: dict[str, str], **options: Any) -> ServeProcess:
    """Start `shipyard serve` and wait until it says it is serving."""
    served = start(project, env, **options)

    def serving() -> bool:
        if served.proc.poll() is not None:
            raise AssertionError(
                f"shipyard serve exited {served.proc.returncode}:\n{served.stderr()[-2000:]}"
            )
        return "shipyard serving" in served.stderr()

    wait_until(serving, "shipyard serve to say it is serving")
    return served


def invoke(url: str, text: str, *, agent: str = "support", session: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"input": text}
    if session:
        body["session_id"] = session
    return HTTP.post(f"{url}/v1/agents/{agent}/invoke", json=body, timeout=120)
