"""Running a coroutine to completion on the fastest event loop there is (issue 16).

Commands whose work is interactions (eval runs, CI stages, routing arms, shadow replay) spend much of
Shipyard's own CPU in the event loop and the HTTP client's socket work; uvloop (a declared dependency
off Windows, and what the server already runs on) does that work in C. `run` uses it when it imports,
else asyncio's own loop; `SHIPYARD_EVENT_LOOP=asyncio` chooses asyncio's loop on purpose.

While it runs, the young generation of the garbage collector is collected every `YOUNG_THRESHOLD`
allocations instead of every 700: dozens of interactions in flight each hold spans, records and
messages, so a collection every 700 allocations (several per case) walks them and promotes them to
older generations, which full collections then walk again; that was ~0.1 ms of CPU per eval case of
two model calls (`benchmarks/bench_evals.py`), a tenth of the target. At 50,000 rather than 10,000
the collections cost about 3% fewer instructions per such case again (callgrind), as 64 cases in
flight are walked five times less often. Garbage in reference cycles waits a little longer (at most
that many more objects, a few MB); the thresholds are put back afterwards.

    from shipyard._aio import run
    result = run(main())

uvloop is imported on the first call, never at import time, so `shipyard --help` does not load it.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

YOUNG_THRESHOLD = 50_000
"""Allocations between collections of the youngest generation while `run` runs (Python's default: 700)."""

ENV = "SHIPYARD_EVENT_LOOP"
"""`asyncio` runs on asyncio's own loop; unset or `uvloop` runs on uvloop when it imports."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's `new_event_loop` when uvloop imports and the environment does not ask for asyncio's
    loop; None (asyncio's default loop) otherwise."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # Windows, or an install without it
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """`uvloop` or `asyncio`: the loop `run` uses now."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new event loop (uvloop when available, see `loop_factory`) and
    close the loop, as `asyncio.run` does; the young generation is collected less often meanwhile
    (see the module's docstring)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main)
    finally:
        gc.set_threshold(*thresholds)
