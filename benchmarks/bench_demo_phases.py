"""Where `shipyard demo` spends its time: the whole demo in a fresh process (as `make demo` runs it,
without keeping the server), timed from its output, phase by phase, with its CPU beside the wall time.

Target (issue 16): the whole demo in ≤ 45 s on a quiet 2-core machine. On a busy machine wall time
stretches; the CPU column says how much of it was the demo's own work.

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
    marks: list[tuple[float, str]] = [(0.0, "start-up (imports, copying the project)")]
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = RULE_LINE.match(line.strip())
            if m and not m.group(1).startswith("Shipyard demo"):
                marks.append((time.perf_counter() - t0, m.group(1)))

    reader = threading.Thread(target=read)
    reader.start()
    code = proc.wait()
    reader.join()
    total = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        sys.stdout.writelines(lines[-40:])
        raise SystemExit(f"shipyard demo exited {code}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{'phase (numbered) or part of one, from its heading to the next':78} {'wall s':>7}")
    for (start, name), (end, _) in zip(marks, [*marks[1:], (total, "")], strict=True):
        print(f"{name[:78]:78} {end - start:7.1f}")
    print(f"{'whole demo (target ≤ 45 s on a quiet 2-core machine)':78} {total:7.1f}")
    print(f"{'CPU of the demo and every process it started (user + system)':78} {cpu:7.1f}")
    print(
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", default=[], help="run only this phase (repeatable)")
    main(parser.parse_args().only)
