"""The demo's loop phase: a complaint on 1.2 becomes an incident, a regression case with its recorded
tool results, which 1.2 fails and 1.3 passes with the production gate; the shadow report of 1.3
against 1.2's traffic shows the fixed case as the one difference above the noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from shipyard.config import load_config
from shipyard.loop import list_shadow_runs, shadow_comparisons
from shipyard.store import Store


def test_the_loop_phase_of_the_demo(tmp_path: Path) -> None:
    # its own process, as a user runs it: the demo's tools keep their orders per process, and other
    # tests on this worker have run demos of their own
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard",
            "demo",
            "--dir",
            str(tmp_path),
            "--only",
            "loop",
            "--no-keep-serving",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        timeout=900,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for step, code in (("promote", 0), ("eval 1.2", 1), ("gate 1.3", 0), ("shadow", 0)):
        assert f"{step}: exit {code}  (as expected)" in out, out
    assert "1.2: Done: I've refunded 89.00 USD for order 10002" in out

    [case] = yaml.safe_load((tmp_path / "evals/support/regression.yaml").read_text())["cases"]
    assert case["input"] == "If I send order 10002 back, will I get a refund?"
    assert [r["tool"] for r in case["tool_results"]] == [
        "lookup_order",
        "check_return_eligibility",
        "process_refund",
    ]

    cfg = load_config(tmp_path / "shipyard.yaml")
    with Store.from_config(cfg) as store:
        [run] = list_shadow_runs(store, agent="support")
        rows = shadow_comparisons(store, run["id"])
        gate = store.latest_eval_run("support", run["candidate"], stage="production")
    assert run["verdict"] == "PASS" and run["candidate"].startswith("support@1.3.0")
    assert [b.split("+")[0] for b in run["baselines"]] == ["support@1.2.0"]
    assert gate is not None and gate["decision"]["verdict"] == "PASS"
    [fixed] = [r for r in rows if r["differences"]]
    assert len(rows) == 8 and set(fixed["differences"]) == {"trajectory", "output"}
    kinds = run["summary"]["kinds"]
    assert all(k["noisy"] == 0 for k in kinds.values())
    assert json.dumps(fixed["kinds"]["trajectory"]["baseline"]).count("process_refund") == 1
    assert "process_refund" not in json.dumps(fixed["kinds"]["trajectory"]["candidate"])
