"""glibc's allocator in a long-running server: at most `MALLOC_ARENAS` arenas, big blocks always in
their own mappings (`MMAP_THRESHOLD`), and the free pages in the arenas handed back to the kernel every
`MALLOC_TRIM_S` seconds. Elsewhere than glibc, nothing happens.

Three 200,000-interaction soaks (`benchmarks/bench_soak.py --n 200000 --smaps`; the server's data stops
growing at about 90,000, when the KPI window's index of rateable interactions is full): with 2 arenas
alone, RSS rose 208.6 -> 229.3 MB from 100k to 200k; with the trim as well, 210.8 -> 217.3 MB; with the
fixed threshold too, 207.1 -> 207.4 MB."""

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

MMAP_THRESHOLD = 128 * 1024
"""Blocks of this many bytes and more are mapped on their own and unmapped when freed
(`M_MMAP_THRESHOLD`, `MALLOC_MMAP_THRESHOLD_`), unless the environment sets its own.

It is glibc's starting value; glibc then raises it to the size of any mapped block freed (up to 32 MiB),
so that later blocks of that size come from the arenas instead. In a server whose big blocks come and
go (a dict's table as an index grows, a batch of records, a large response), that moves them one by
one into the arenas, where freed space is fragmented and stays resident: in the soak, the arenas grew
by 9 MB between 135k and 200k interactions while the mapped blocks shrank by as much. A fixed value
stops it (setting it also stops glibc adjusting its trim threshold)."""

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


def tune_malloc(arenas: int = MALLOC_ARENAS, mmap_threshold: int = MMAP_THRESHOLD) -> list[str]:
    """Cap glibc's malloc arenas (`mallopt(M_ARENA_MAX)`) and fix its mmap threshold
    (`mallopt(M_MMAP_THRESHOLD)`) for this process and for the workers it starts (`MALLOC_ARENA_MAX`,
    `MALLOC_MMAP_THRESHOLD_` in their environment). A setting the environment already holds is kept:
    the operator's choice, which glibc read at this process's start. Call it before the server starts
    its threads. Returns the environment variables set here; elsewhere than glibc, nothing happens."""
    libc = _glibc()
    if libc is None:
        return []
    done = []
    for variable, option, value in (
        ("MALLOC_ARENA_MAX", -8, arenas),  # M_ARENA_MAX in glibc's malloc.h
        ("MALLOC_MMAP_THRESHOLD_", -3, mmap_threshold),  # M_MMAP_THRESHOLD
    ):
        if os.environ.get(variable) or libc.mallopt(option, value) != 1:
            continue
        os.environ[variable] = str(value)  # spawned workers read it when they start
        done.append(variable)
    return done


def can_trim_malloc() -> bool:
    """Whether `trim_malloc` does anything here (glibc)."""
    return _glibc() is not None


def trim_malloc() -> bool:
    """Hand the whole free pages of glibc's arenas back to the kernel (`malloc_trim(0)`). Returns
    whether any memory was released; elsewhere than glibc, False."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
