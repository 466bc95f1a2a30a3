"""What `shipyard ci run` costs on the demo project: pre-merge of a new version (its model calls
recorded, and the base version's run made once), the same pre-merge again (model calls replayed from
the CI cache, the base from its cache), and the full pipeline's stages (post-merge through a staging
server). Wall seconds of each `shipyard ci run` process, and the stages' own timings.

Targets (issue 12): pre-merge < 5 min, post-merge < 30 min on a real model; on the offline demo the
figures show what the pipeline itself adds.

    .venv/bin/python benchmarks/bench_pipeline.py [--version 1.2.0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.demo import copy_project


def ci(root: Path, *args: str) -> tuple[float, int, list[dict]]:
    env = {k: v for k, v in os.environ.items() if k not in ("SHIPYARD_DATABASE_URL", "SHIPYARD_CONFIG")}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "ci", "run", *args, "-c", str(root / "shipyard.yaml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    summary = json.loads((root / ".shipyard" / "ci" / "reports" / "summary.json").read_text())
    return wall, done.returncode, summary["stages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="1.2.0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        copy_project(root)
        rows = []
        for label, extra in (
            ("pre-merge, first run (record + base run)", ["pre-merge"]),
            ("pre-merge, again (replayed, base cached)", ["pre-merge"]),
            ("all stages", []),
        ):
            wall, code, stages = ci(root, *extra, "--version", args.version)
            timing = ", ".join(f"{s['stage']} {s['duration_s']:.1f}s ({s['status']})" for s in stages)
            rows.append((label, wall, code, timing))
    print(f"shipyard ci run --version {args.version} on the demo project")
    print(f"{'run':44} {'wall':>8}  exit  stages")
    for label, wall, code, timing in rows:
        print(f"{label:44} {wall:7.1f}s  {code:4}  {timing}")


if __name__ == "__main__":
    main()
