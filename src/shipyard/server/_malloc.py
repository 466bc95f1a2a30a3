"""glibc's allocator in a long-running server: at most `MALLOC_ARENAS` arenas, and the free pages in
them handed back to the kernel every `MALLOC_TRIM_S` seconds. Elsewhere than glibc, nothing happens."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from typing import Any

MALLOC_ARENAS = 2
"""glibc malloc arenas a server process keeps (`MALLOC_ARENA_MAX`), unless the environment sets its own.

glibc gives each thread that contends for the allocator an arena of its own, up to 8 per core, and
memory freed in one arena serves only that arena's later requests: a long-running server with a
dozen threads (journal, writer, exporters, the thread pool of sync agents) holds freed, fragmented
space in each. Two 300,000-interaction soaks (`benchmarks/bench_soak.py --n 300000`): with glibc's
default, RSS ended at 263.6 MB and kept rising to the end (+9.8 MB from 143k on) as the arenas grew
(82.7 -> 98.7 MB) around data that had stopped growing; with 2 arenas, RSS ended at 229.8 MB, +0.5 MB
over the last 100,000 interactions, the arenas flat at 68 MB. The threads mostly run Python, one at
a time under the GIL, so they hardly contend for the allocator."""

MALLOC_TRIM_S = 60.0
"""How often a server hands the free pages inside glibc's arenas back to the kernel (`malloc_trim(0)`,
loop `malloc_trim`).

glibc returns memory to the kernel only from the top of its main heap: pages freed below a block still
in use stay resident, so the arenas' resident size creeps up as their free space fragments, long after
the data in them stopped growing. `malloc_trim(0)` releases every whole free page in every arena
(madvise), which the next allocation there takes back at the cost of a page fault. It runs in a worker
thread (ctypes releases the GIL), holding each arena's lock for a moment: measured on the soak's
server, a pass takes about a millisecond."""


@functools.cache
def _glibc() -> Any:
    """The C library's handle when it is glibc's, else None."""
    if platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(None)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process (`mallopt(M_ARENA_MAX)`) and for the workers it
    starts (`MALLOC_ARENA_MAX` in their environment), unless `MALLOC_ARENA_MAX` is already set (the
    operator's choice is kept: glibc read it at this process's start). Call it before the server
    starts its threads. Returns whether the cap was set here; elsewhere than glibc, nothing happens."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _glibc()
    if libc is None:
        return False
    m_arena_max = -8  # glibc's malloc.h
    if libc.mallopt(m_arena_max, arenas) != 1:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)  # spawned workers read it when they start
    return True


def can_trim_malloc() -> bool:
    """Whether `trim_malloc` does anything here (glibc)."""
    return _glibc() is not None


def trim_malloc() -> bool:
    """Hand the whole free pages of glibc's arenas back to the kernel (`malloc_trim(0)`). Returns
    whether any memory was released; elsewhere than glibc, False."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
