"""Replicas on one machine: 1, 2 and 3 `shipyard serve` behind HAProxy, on the local PostgreSQL and Redis.

Each replica runs in a folder of its own (its own journal, as on its own machine) and shares one
PostgreSQL schema (made for the run, dropped after) and Redis DB 13 (budgets counted there under a key
prefix of the run, deleted after; flag and rollout change notices). The agent makes one model call to
`shipyard mock-llm` (a child process, 20 ms per call) per interaction. HAProxy (Debian's package)
balances roundrobin with health checks on /readyz.

For each replica count, after a warm-up, `--concurrency` keep-alive clients (aiohttp, in this process)
post sessions' turns through HAProxy for `--seconds`. Printed per count:
- throughput (interactions/s) and p50 / p99 latency seen by the clients;
- server CPU per interaction: user + system CPU of the replica processes (from /proc) over the window,
  divided by the interactions answered — the figure that holds on a busy machine;
- records per second reaching PostgreSQL during the window (rows counted in the schema), and how long
  the last answered record took to arrive after the load stopped;
- idle CPU: what one replica spends per second with no traffic (its background loops), which each
  replica adds whatever the traffic;
- growth: each figure against the 1-replica run of the same invocation (the reference).

On a 2-core machine that also runs the clients, the mock LLM, HAProxy, PostgreSQL and Redis, more
replicas cannot add cores: read the CPU per interaction and the records/s keeping up, not the
throughput growth alone.

    .venv/bin/python benchmarks/bench_replicas.py [--seconds 15] [--concurrency 24] [--replicas 1,2,3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import free_port, wait_ready
from shipyard.llm._mockserver import MockLLMServer

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/13"
TICKS = os.sysconf("SC_CLK_TCK")
IDLE_S = 5.0
SHIPYARD = Path(sys.executable).with_name("shipyard")

AGENT = """\
from shipyard import AgentContext, AgentResult, agent


@agent("chat")
async def chat(user_input: str, ctx: AgentContext) -> AgentResult:
    reply = await ctx.llm.chat([{"role": "user", "content": user_input}])
    return AgentResult(output=reply.text or "")
"""

CONFIG = """\
project: bench-replicas
models:
  mock:
    provider: openai
    base_url: {llm_url}
    max_retries: 0
    prices: {{input: 0.15, output: 0.60}}
agents:
  chat:
    entry: bench_replica_agent:chat
    prompts: prompts/chat
    model: {{name: mock, max_tokens: 64}}
store: {{url: '{store_url}'}}
budgets:
  backend: redis
  redis_url: {redis_url}
  key_prefix: {prefix}
  redis_timeout_s: 5
  limits:
    - {{name: fleet-daily, scope: global, window: day, usd: 1000000}}
"""

HAPROXY = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout check 10s
frontend bench
    bind 127.0.0.1:{port}
    default_backend shipyard
backend shipyard
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
{servers}
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its children (living ones, and reaped ones as the
    kernel counts them), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family, todo = {pid}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in family:
                family.add(child)
                todo.append(child)
    total = 0.0
    for member in family:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
    return total


@dataclass
class Run:
    replicas: int
    answered: int
    seconds: float
    latencies: list[float]
    cpu_s: float
    rows_in_window: int
    arrival_lag_s: float
    idle_ms_per_s: float  # CPU ms per second of one replica with no traffic

    @property
    def rps(self) -> float:
        return self.answered / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / max(self.answered, 1)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def records_per_s(self) -> float:
        return self.rows_in_window / self.seconds


def haproxy_binary() -> str | None:
    """Debian's haproxy (in /usr/sbin, which is not on every user's PATH), or None."""
    found = shutil.which("haproxy")
    return found or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


def write_project(folder: Path, llm_url: str, store_url: str, prefix: str) -> None:
    folder.mkdir(parents=True)
    (folder / "bench_replica_agent.py").write_text(AGENT)
    bundle = folder / "prompts" / "chat"
    bundle.mkdir(parents=True)
    (bundle / "system_prompt.txt").write_text("You answer questions about orders, briefly.\n")
    (bundle / "version.txt").write_text("1.0.0\n")
    (folder / "shipyard.yaml").write_text(
        CONFIG.format(llm_url=llm_url, store_url=store_url, redis_url=REDIS_URL, prefix=prefix)
    )


def start_replica(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SHIPYARD_DATABASE_URL", "SHIPYARD_REDIS_URL", "REDIS_URL", "SHIPYARD_CONFIG")
    }
    env.update(PYTHONPATH=str(folder), SHIPYARD_REDIS_URL=REDIS_URL)
    with open(folder / "serve.log", "ab") as log:
        return subprocess.Popen(
            [str(SHIPYARD), "serve", "--port", str(port), "--config", str(folder / "shipyard.yaml")],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


async def load(url: str, seconds: float, concurrency: int, tag: str) -> tuple[int, float, list[float]]:
    """Sessions of 4 turns from `concurrency` clients for `seconds`: (answered, elapsed, latencies)."""
    latencies: list[float] = []
    start = time.perf_counter()
    stop_at = start + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def client(n: int) -> None:
            i = 0
            while time.perf_counter() < stop_at:
                body = {"input": f"Where is my order {10001 + i}?", "session_id": f"{tag}-c{n}-{i // 4}"}
                t0 = time.perf_counter()
                async with session.post(f"{url}/v1/agents/chat/invoke", json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"HTTP {resp.status}: {await resp.text()}")
                latencies.append(time.perf_counter() - t0)
                i += 1

        await asyncio.gather(*(client(n) for n in range(concurrency)))
    return len(latencies), time.perf_counter() - start, latencies


def count_rows(schema: str) -> int:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".interactions').fetchone()
    return int(row[0]) if row else 0


def measure(
    n: int, root: Path, llm_url: str, schema: str, prefix: str, seconds: float, concurrency: int
) -> Run:
    haproxy = haproxy_binary()
    assert haproxy is not None
    store_url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
    base = root / f"n{n}"
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    proxy: subprocess.Popen[bytes] | None = None
    try:
        for i in range(n):
            folder = base / f"r{i}"
            write_project(folder, llm_url, store_url, prefix)
            ports.append(free_port())
            procs.append(start_replica(folder, ports[-1]))
        for i, (proc, port) in enumerate(zip(procs, ports, strict=True)):
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc, f"replica {i}")
        port = free_port()
        servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check" for i, p in enumerate(ports))
        cfg = base / "haproxy.cfg"
        cfg.write_text(HAPROXY.format(port=port, servers=servers))
        proxy = subprocess.Popen(
            [haproxy, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", proxy, "haproxy")
        time.sleep(2.5)  # every server's first health checks have passed (inter 1s, rise 1)
        asyncio.run(load(url, 3.0, concurrency, f"warm{n}"))  # warm-up: imports, pools, caches
        # what the replicas spend with no traffic (background loops: flag and rollout polls, ticks)
        idle0, t_idle = sum(cpu_seconds(p.pid) for p in procs), time.perf_counter()
        time.sleep(IDLE_S)
        idle_ms = 1000 * (sum(cpu_seconds(p.pid) for p in procs) - idle0) / (time.perf_counter() - t_idle) / n
        rows0, cpu0 = count_rows(schema), sum(cpu_seconds(p.pid) for p in procs)
        answered, elapsed, latencies = asyncio.run(load(url, seconds, concurrency, f"run{n}"))
        cpu1, rows1 = sum(cpu_seconds(p.pid) for p in procs), count_rows(schema)
        # how long the records still on their way took to arrive once the load stopped
        t0, expected = time.perf_counter(), rows0 + answered
        while count_rows(schema) < expected and time.perf_counter() - t0 < 60:
            time.sleep(0.05)
        lag = time.perf_counter() - t0
        return Run(n, answered, elapsed, latencies, cpu1 - cpu0, rows1 - rows0, lag, idle_ms)
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.terminate()
            proxy.wait(timeout=30)
        for proc in procs:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--replicas", default="1,2,3", help="replica counts to measure, comma-separated")
    args = parser.parse_args()
    counts = [int(x) for x in args.replicas.split(",")]
    if haproxy_binary() is None:
        raise SystemExit("haproxy is missing: `apt-get install haproxy` (Debian's package)")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except (redis.RedisError, psycopg.Error) as e:
        raise SystemExit(f"needs the local PostgreSQL (127.0.0.1:5432, db test) and Redis: {e}") from None

    schema = f"bench_replicas_{uuid.uuid4().hex[:10]}"
    prefix = f"bench-replicas-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    llm = MockLLMServer({"default": "Your order shipped yesterday."}, latency_ms=20, subprocess=True)
    llm_url = llm.start()
    root = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    runs: list[Run] = []
    try:
        print(
            f"{os.cpu_count()} CPUs; {args.concurrency} clients through HAProxy for {args.seconds:g}s "
            f"per count; load average {os.getloadavg()[0]:.2f} at start"
        )
        for n in counts:
            run = measure(n, root, llm_url, schema, prefix, args.seconds, args.concurrency)
            runs.append(run)
            print(
                f"{n} replica(s): {run.rps:7.1f} interactions/s  p50 {run.pct(0.5):6.1f} ms  "
                f"p99 {run.pct(0.99):7.1f} ms  server CPU {run.cpu_ms:5.2f} ms/interaction  "
                f"{run.records_per_s:7.1f} records/s into PostgreSQL  (last record in {run.arrival_lag_s:.2f}s "
                f"after the load stopped); idle: {run.idle_ms_per_s:.1f} ms CPU/s per replica",
                flush=True,
            )
        ref = runs[0]
        print(f"\ngrowth against {ref.replicas} replica(s) (the reference, same run):")
        for run in runs:
            print(
                f"  {run.replicas} replica(s): throughput x{run.rps / ref.rps:.2f}  "
                f"per replica x{run.rps / ref.rps / (run.replicas / ref.replicas):.2f}  "
                f"CPU/interaction x{run.cpu_ms / ref.cpu_ms:.2f}  "
                f"p99 x{run.pct(0.99) / ref.pct(0.99):.2f}  records/s x{run.records_per_s / ref.records_per_s:.2f}"
            )
        print(f"load average {os.getloadavg()[0]:.2f} at the end (a shared machine makes these noisy)")
        lost = [r for r in runs if r.arrival_lag_s >= 60]
        if lost:
            raise SystemExit(
                f"records missing from PostgreSQL 60 s after the load: {[r.replicas for r in lost]}"
            )
    finally:
        llm.stop()
        shutil.rmtree(root, ignore_errors=True)
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            client.delete(key)


if __name__ == "__main__":
    main()
