"""`shipyard serve` caps glibc's malloc arenas (server/_malloc.py `limit_malloc_arenas`) unless the
operator set MALLOC_ARENA_MAX; the workers it starts inherit the cap (tests/server/test_reload.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

SCRIPT = (
    "import os\n"
    "from shipyard.server._malloc import limit_malloc_arenas\n"
    "print(limit_malloc_arenas(), os.environ.get('MALLOC_ARENA_MAX'))\n"
    "print(limit_malloc_arenas())\n"  # a second call keeps what the first set
)


def _run(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**base, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.split("\n")[:2]


def test_the_cap_is_set_for_this_process_and_its_workers_when_the_environment_sets_none() -> None:
    assert _run() == ["True 2", "False"]


def test_an_operators_own_malloc_arena_max_is_kept() -> None:
    assert _run(MALLOC_ARENA_MAX="4") == ["False 4", "False"]


TRIM = """
import ctypes
from shipyard.server._malloc import can_trim_malloc, trim_malloc

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallopt(-1, 2**30)  # M_TRIM_THRESHOLD: free() itself never trims, only trim_malloc does

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

blocks = [libc.malloc(4000) for _ in range(40_000)]  # ~160 MB of the main heap, touched
for b in blocks:
    ctypes.memset(b, 1, 4000)
for i, b in enumerate(blocks):
    if i % 100:  # keep one block in a hundred: the heap's top stays in use, the pages between are free
        libc.free(b)
before = rss_kb()
print(can_trim_malloc(), trim_malloc(), before - rss_kb())
"""


def test_trim_hands_the_free_pages_inside_the_heap_back_to_the_kernel() -> None:
    """What `malloc_trim` loop of `shipyard serve` (server/_state.py) relies on: free space below
    blocks still in use, which free() never returns, leaves the resident set."""
    out = subprocess.run([sys.executable, "-c", TRIM], capture_output=True, text=True, check=True)
    can, released, freed_kb = out.stdout.split()
    assert (can, released) == ("True", "True")
    assert int(freed_kb) > 100_000  # of the ~158 MB freed below the kept blocks
