"""Three (or N) real `shipyard serve` replicas behind a real HAProxy, for the replica tests.

- `write_project(folder, llm_url, store_url)`: a small project whose two agents (`chat` and `helper`,
  each with versions 1.0.0 and 2.0.0) ask a mock LLM server once per turn, with budgets in Redis.
- `Replica`: one `shipyard serve` in a folder of its own (its own journal, as on its own machine),
  started, SIGKILLed and started again on the same port and folder (as a pod's container restarts).
- `HAProxy`: Debian's haproxy, roundrobin over the replicas with health checks on `/readyz`; it names
  the replica that answered in the response header `X-Replica`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from debian import debian_program
from throwaway import free_port
from waiting import wait_until

SHIPYARD = Path(sys.executable).with_name("shipyard")
_HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
"""For one-off requests instead of `httpx.get(...)`: a new connection per request as those make, without
the SSL context each `httpx.get` builds (some 30 ms of CPU per call, a lot in a polling loop)."""

AGENT = """\
from shipyard import AgentContext, AgentResult, agent


@agent("chat")
async def chat(user_input: str, ctx: AgentContext) -> AgentResult:
    reply = await ctx.llm.chat([{"role": "user", "content": user_input}])
    return AgentResult(output=reply.text or "")
"""


def write_project(
    folder: Path,
    llm_url: str,
    store_url: str,
    *,
    redis_url: str,
    budgets: str,
    flags_channel: str,
) -> Path:
    """The project in `folder` (shipyard.yaml, the agent module, two prompt bundles per agent, an empty
    flag file); returns the config path. `budgets` is the YAML of the `budgets:` section's body."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "replica_agent.py").write_text(AGENT)
    for agent in ("chat", "helper"):
        for label in ("1.0.0", "2.0.0"):
            bundle = folder / "prompts" / agent / label
            bundle.mkdir(parents=True, exist_ok=True)
            (bundle / "system_prompt.txt").write_text(f"You are the {agent} agent, release {label}.\n")
            (bundle / "version.txt").write_text(label + "\n")
    (folder / "flags.json").write_text('{"flags": {}}\n')
    budgets_yaml = textwrap.indent(textwrap.dedent(budgets).strip(), "  ")
    agents = "".join(
        f"""\
  {agent}:
    entry: replica_agent:chat
    prompts: prompts/{agent}/1.0.0
    model: {{name: mock, max_tokens: 32}}
    versions:
      - prompts: prompts/{agent}/2.0.0
"""
        for agent in ("chat", "helper")
    )
    config = folder / "shipyard.yaml"
    config.write_text(
        f"""\
project: replicas-anchor
models:
  mock:
    provider: openai
    base_url: {llm_url}
    max_retries: 0
    prices: {{input: 100, output: 200}}
agents:
{agents}store: {{url: '{store_url}', flush_interval_ms: 50}}
flags:
  channel: {flags_channel}
  poll_interval_s: 1.0
budgets:
  backend: redis
  redis_url: {redis_url}
{budgets_yaml}
"""
    )
    return config


class Replica:
    """One `shipyard serve` on a fixed port, in a folder of its own; `start()` again after `kill()`."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        self.name = name
        self.folder = folder
        self.env = {**env, "PYTHONPATH": str(folder)}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def err(self) -> Path:
        return self.folder / "serve.err"

    def start(self) -> None:
        """Start it (not waiting: see `wait_ready`)."""
        self.starts += 1
        with open(self.folder / "serve.out", "ab") as out, open(self.err, "ab") as err:
            self.proc = subprocess.Popen(
                [
                    str(SHIPYARD),
                    "serve",
                    "--port",
                    str(self.port),
                    "--config",
                    str(self.folder / "shipyard.yaml"),
                ],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=err,
            )

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"replica {self.name} exited {self.proc.returncode}:\n"
                    f"{self.err.read_text(errors='replace')[-3000:]}"
                )
            try:
                return _HTTP.get(f"{self.url}/readyz", timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, f"replica {self.name} to be ready")

    def kill(self) -> None:
        """SIGKILL: no drain, no flush; what its journal holds waits for its next start."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> int | None:
        """SIGTERM and wait (a drain moves the journal into the store); SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=60)
            raise AssertionError(f"replica {self.name} did not stop on SIGTERM") from None


def start_replicas(project: Path, root: Path, env: dict[str, str], n: int = 3) -> list[Replica]:
    """`n` replicas, each on its own copy of `project` (as on machines of their own), all ready."""
    replicas = []
    for i in range(n):
        folder = root / f"r{i}"
        shutil.copytree(project, folder)
        replica = Replica(f"r{i}", folder, env)
        replica.start()
        replicas.append(replica)
    for replica in replicas:
        replica.wait_ready()
    return replicas


HAPROXY_CFG = """\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 180s
    timeout server 180s
    timeout check 10s
    retries 3
    option redispatch
    option http-server-close

frontend shipyard_in
    bind 127.0.0.1:{port}
    default_backend shipyard

backend shipyard
    balance roundrobin
    # HTTP/1.1 with a Host the replicas answer to (HAProxy's default check is HTTP/1.0 without a
    # Host header, which the server's Host guard refuses with 400)
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
    http-response set-header X-Replica %[srv_name]
{servers}
"""


class HAProxy:
    """Debian's haproxy in the foreground, its config in `folder`."""

    def __init__(self, folder: Path, backends: list[tuple[str, int]]) -> None:
        # Debian puts it in /usr/sbin, which is not on every user's PATH
        self.binary = debian_program(shutil.which("haproxy") or "/usr/sbin/haproxy", "haproxy")
        self.folder = folder
        self.port = free_port()
        servers = "\n".join(f"    server {name} 127.0.0.1:{port} check" for name, port in backends)
        self.config = folder / "haproxy.cfg"
        self.config.write_text(HAPROXY_CFG.format(port=self.port, servers=servers))
        check = subprocess.run(
            [str(self.binary), "-c", "-f", str(self.config)], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0, check.stderr + check.stdout
        self.log = folder / "haproxy.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._answers, "haproxy to route to a ready replica")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"haproxy exited {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
        try:
            return _HTTP.get(f"{self.url}/readyz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without Shipyard's database / Redis settings, plus `overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SHIPYARD_DATABASE_URL", "SHIPYARD_REDIS_URL", "REDIS_URL", "SHIPYARD_CONFIG")
    }
    env.update(overrides)
    return env
