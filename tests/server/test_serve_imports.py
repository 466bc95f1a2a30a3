"""`shipyard serve` imports what it uses, when it uses it (issue 16): a served starter that answers
/healthz has loaded neither scipy nor the rollout statistics (the rollout controller and assigner start
on every server; the statistics load when a rollout is analysed), and the scipy.special functions
rollout/_stats.py calls instead of scipy.stats' `norm` and `chi2` give exactly the same numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from server_helpers import free_port
from waiting import wait_until

# what a served starter has no use for until someone asks for statistics
NOT_FOR_SERVE = (
    "scipy",
    "scipy.stats",
    "scipy.special",
    "shipyard.rollout._stats",
    "shipyard.rollout._analysis",
    "shipyard.rollout._experiment",
    "shipyard.rollout._ab",
)

# Runs `shipyard serve` in this interpreter; a thread polls /healthz and, at the first 200, writes
# which of the named modules the process had loaded then (argv: out file, port, names, serve args).
PROBE = """
import json, sys, threading, time, urllib.request
out, port, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def watch():
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.05)
    with open(out + ".part", "w") as f:
        json.dump([n for n in names if n in sys.modules], f)
    import os
    os.replace(out + ".part", out)
threading.Thread(target=watch, daemon=True).start()
sys.argv = ["shipyard", "serve", "--port", port, *sys.argv[4:]]
from shipyard.cli import main
main()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SHIPYARD_CONFIG", "SHIPYARD_DATABASE_URL")}
    return {**env, "SHIPYARD_LOG_LEVEL": "error"}


def test_a_served_starter_has_not_imported_the_statistics(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "shipyard", "init", "proj"],
        cwd=tmp_path,
        env=_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    project, out = tmp_path / "proj", tmp_path / "loaded.json"
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(out), str(free_port()), json.dumps(NOT_FOR_SERVE)],
            cwd=project,
            env=_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )

    def answered() -> bool:  # the probe writes the file once /healthz has answered
        assert proc.poll() is None, f"shipyard serve exited:\n{log.read_text()[-2000:]}"
        return out.exists()

    try:
        wait_until(answered, "/healthz to answer")
        assert json.loads(out.read_text()) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit the same floats (NaN where the other is NaN)."""
    return bool(np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True))


# probabilities across the whole range, with the tails and the edges (0, 1, just inside them)
_Q = np.concatenate(
    [
        [0.0, 1.0, 5e-324, 1e-300, 1e-16, 1 - 1e-16, 0.5, 0.025, 0.975, 0.001, 0.999, 0.8, 0.2],
        np.random.default_rng(1).random(20_000),
        np.logspace(-300, -1, 2_000),
        1 - np.logspace(-16, -1, 500),
    ]
)
_Z = np.concatenate(
    [
        [0.0, -0.0, 1.959963984540054, -40.0, 40.0, np.inf, -np.inf],
        np.random.default_rng(2).normal(0, 3, 20_000),
        np.linspace(-40, 40, 4_001),
    ]
)


def test_the_normal_functions_are_scipy_stats_own() -> None:
    from scipy import special, stats

    assert _same(special.ndtri(_Q), stats.norm.ppf(_Q))
    assert _same(-special.ndtri(_Q), stats.norm.isf(_Q))
    assert _same(special.ndtr(-_Z), stats.norm.sf(_Z))
    assert _same(special.ndtr(_Z), stats.norm.cdf(_Z))
    assert _same(special.ndtr(-np.abs(_Z)), stats.norm.sf(np.abs(_Z)))
    for q in _Q[:2_000]:  # one float at a time, as _stats.py calls them
        assert float(special.ndtri(q)) == float(stats.norm.ppf(q)) or np.isnan(float(special.ndtri(q)))


@pytest.mark.parametrize("k", [*range(0, 60), 99, 100, 250, 1_000, 10_000, 123_457])
def test_the_poisson_interval_quantiles_are_scipy_stats_chi2(k: int) -> None:
    """_poisson_interval: `gammaincinv(k, q)` is `chi2.ppf(q, 2 k) / 2` (scipy's chi2.ppf is
    `2 * gammaincinv(df / 2, q)`; doubling and halving a float is exact)."""
    from scipy import special, stats

    q = _Q[::7]
    if k > 0:
        assert _same(special.gammaincinv(k, q), stats.chi2.ppf(q, 2 * k) / 2)
    assert _same(special.gammaincinv(k + 1, q), stats.chi2.ppf(q, 2 * k + 2) / 2)


def test_the_statistics_give_what_scipy_stats_gives() -> None:
    """The functions of rollout/_stats.py that use the scipy.special forms, against scipy.stats."""
    from scipy import stats

    from shipyard.rollout._stats import _poisson_interval, _z, _z_sum, two_proportion_test

    for confidence in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999):
        assert _z(confidence) == float(stats.norm.ppf(0.5 + confidence / 2))
        for k in (0, 1, 2, 7, 30, 500):
            tail = (1 - confidence) / 2
            lo = 0.0 if k == 0 else float(stats.chi2.ppf(tail, 2 * k)) / 2
            assert _poisson_interval(k, confidence) == (lo, float(stats.chi2.ppf(1 - tail, 2 * k + 2)) / 2)
    for alpha in (0.001, 0.01, 0.05, 0.1):
        for power in (0.5, 0.8, 0.9, 0.99):
            for two_sided in (True, False):
                want = (
                    float(stats.norm.isf(alpha / 2 if two_sided else alpha)),
                    float(stats.norm.ppf(power)),
                )
                assert _z_sum(alpha, power, two_sided) == want
    rng = np.random.default_rng(3)
    for _ in range(500):
        n_a, n_b = (int(n) for n in rng.integers(100, 5_000, 2))  # every expected cell >= 10: the z-test
        x_a, x_b = (
            int(rng.integers(n_a // 10, n_a - n_a // 10)),
            int(rng.integers(n_b // 10, n_b - n_b // 10)),
        )
        for alternative in ("two-sided", "greater", "less"):
            res = two_proportion_test(x_a, n_a, x_b, n_b, alternative=alternative)  # type: ignore[arg-type]
            assert res.test == "z"
            pooled = (x_a + x_b) / (n_a + n_b)
            z = (x_b / n_b - x_a / n_a) / np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
            z = float(z)
            if alternative == "two-sided":
                p = 2 * float(stats.norm.sf(abs(z)))
            else:
                p = float(stats.norm.sf(z) if alternative == "greater" else stats.norm.cdf(z))
            assert res.p_value == min(1.0, p)
