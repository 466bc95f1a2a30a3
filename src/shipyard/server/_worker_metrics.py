"""`/metrics` under `shipyard serve --workers N`: prometheus_client's multiprocess mode.

Each worker process keeps its metric values in memory-mapped files of one folder, named in
`PROMETHEUS_MULTIPROC_DIR`, which must be set before a worker imports prometheus_client: the
supervisor sets it before it starts any worker (the workers inherit it), and `/metrics` of any worker
sums every file (`Metrics.render`), so a scrape is right whichever worker the kernel hands it to.

- The folder: a fresh temporary one per `serve`, removed when it stops; or the one the user set in
  `PROMETHEUS_MULTIPROC_DIR`, whose `*.db` files are removed at start (files of an earlier run would be
  summed in) and left at the end.
- Counters and histograms of a worker that died stay in the sum: they are the server's totals, and
  Prometheus's `rate()` needs totals that never go down while the server runs. A dead worker's gauges
  in a `live*` mode are dropped (`mark_process_dead`, called by the supervisor when it replaces or
  retires a worker). Every gauge has a `live*` mode chosen for what it means (see observe/_metrics.py
  and server/_reload.py); one left at the default `all` would show one series per pid.
- One process (no `--workers`): none of this; values live in the process's registry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from shipyard.observe._metrics import MULTIPROC_ENV


@contextlib.contextmanager
def worker_metrics_dir() -> Iterator[str]:
    """Set `PROMETHEUS_MULTIPROC_DIR` to a clean folder while the workers run (see the module docs)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield str(folder)
        return
    folder = Path(tempfile.mkdtemp(prefix="shipyard-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield str(folder)
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def forget_workers(pids: Iterable[int]) -> None:
    """Drop the live gauges of workers that are gone (their counters stay in the sums)."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    from prometheus_client import multiprocess

    for pid in pids:
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(pid, folder)
