"""Where `shipyard demo` spends its time: the whole demo in a fresh process (as `make demo` runs it,
without keeping the server), timed from its output, phase by phase, with its CPU beside the wall time.

Target (issue 16): the whole demo in ≤ 45 s on a quiet 2-core machine. On a busy machine wall time
stretches; the CPU column says how much of it was the demo's own work, and the "quiet" column is the
wall time less the time the demo's main thread sat runnable, waiting for a CPU other processes held
(Linux schedstat): roughly what the phase takes on a quiet machine (its simulated model time, its
waits and its own CPU). The waits of its other threads and child processes for a CPU are still in it,
so on a very busy machine it overstates, most where the main thread waits on a worker (a gate run in
a thread, the server starting). Phases overlap: the routing phase runs in its own process from the
start (its CPU is in the rows it runs beside), and the server starts before the flags phase.

    .venv/bin/python benchmarks/bench_demo_phases.py [--only PHASE ...]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RULE_LINE = re.compile(r"^─+ (.+?) ─+$")  # the demo's section rules: its phases and their parts
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of `root` and every live process under it, with the children
    each has already reaped (Linux /proc; 0.0 elsewhere)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state
        stats[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / TICK)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [p for p, (ppid, _) in stats.items() if ppid == pid]
    return total


def waited(pid: int) -> float | None:
    """Seconds the process's main thread has spent runnable but waiting for a CPU (Linux), else None."""
    try:
        return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def main(only: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-demo-phases-"))
    cmd = [sys.executable, "-m", "shipyard", "demo", "--dir", str(work / "demo"), "--no-keep-serving"]
    for phase in only:
        cmd += ["--only", phase]
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SHIPYARD_CONFIG", None)
    env.pop("SHIPYARD_DATABASE_URL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks: list[tuple[float, float, float, str]] = [
        (0.0, 0.0, 0.0, "start-up (imports, copying the project)")
    ]
    lines: list[str] = []
    last_wait = [0.0]  # the main thread's CPU wait, sampled until the process ends

    def wait_now() -> float:
        w = waited(proc.pid)
        if w is not None:
            last_wait[0] = w
        return last_wait[0]

    def sample() -> None:
        while proc.poll() is None:
            wait_now()
            time.sleep(0.1)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = RULE_LINE.match(line.strip())
            if m and not m.group(1).startswith("Shipyard demo"):
                marks.append((time.perf_counter() - t0, tree_cpu(proc.pid), wait_now(), m.group(1)))

    reader = threading.Thread(target=read)
    sampler = threading.Thread(target=sample, daemon=True)
    reader.start()
    sampler.start()
    code = proc.wait()
    reader.join()
    total = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        sys.stdout.writelines(lines[-40:])
        raise SystemExit(f"shipyard demo exited {code}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    head = "phase (numbered) or part of one, from its heading to the next"
    print(f"{head:78} {'wall s':>7} {'CPU s':>6} {'quiet s':>7}")
    ends = [*marks[1:], (total, cpu, last_wait[0], "")]
    for (start, cpu0, w0, name), (end, cpu1, w1, _) in zip(marks, ends, strict=True):
        print(f"{name[:78]:78} {end - start:7.1f} {cpu1 - cpu0:6.1f} {end - start - (w1 - w0):7.1f}")
    quiet = total - last_wait[0]
    print(f"{'whole demo (target ≤ 45 s on a quiet 2-core machine)':78} {total:7.1f} {cpu:6.1f} {quiet:7.1f}")
    print("  CPU: the demo and every process it started (user + system); quiet: wall less the main thread's")
    print("  wait for a CPU held by other processes (an estimate of a quiet machine's wall time)")
    print(
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", default=[], help="run only this phase (repeatable)")
    main(parser.parse_args().only)
