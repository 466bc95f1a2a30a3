"""`shipyard serve` tunes glibc's malloc (server/_malloc.py `tune_malloc`: 2 arenas, a fixed mmap
threshold) unless the operator set those; the workers it starts inherit the settings
(tests/server/test_reload.py). Its loop `malloc_trim` hands free heap pages back to the kernel."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")

TUNE = """
import ctypes, os
from shipyard.server._malloc import tune_malloc

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
print(tune_malloc(), os.environ.get("MALLOC_ARENA_MAX"), os.environ.get("MALLOC_MMAP_THRESHOLD_"))
print(tune_malloc())  # a second call keeps what the first set

def mapped_kb():  # the mappings of 1 MiB and more (big blocks glibc mapped on their own)
    total = 0
    for line in open("/proc/self/maps"):
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        if len(line.split()) == 5 and high - low >= 2**20:
            total += (high - low) // 1024
    return total

# glibc raises a dynamic threshold to the size of a mapped block freed: the next one of that size then
# comes from the heap. With the threshold fixed, it is mapped again.
libc.free(libc.malloc(4 * 2**20))
before = mapped_kb()
block = libc.malloc(4 * 2**20)
print(mapped_kb() - before >= 4096)
"""


def _run(script: str, **env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", script], env={**base, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.split("\n")[:3]


def test_the_settings_are_made_for_this_process_and_its_workers_when_the_environment_sets_none() -> None:
    assert _run(TUNE) == ["['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_'] 2 131072", "[]", "True"]


def test_an_operators_own_settings_are_kept() -> None:
    assert _run(TUNE, MALLOC_ARENA_MAX="4") == ["['MALLOC_MMAP_THRESHOLD_'] 4 131072", "[]", "True"]
    # the operator's own threshold: glibc adjusts no more either, and Shipyard sets nothing
    assert _run(TUNE, MALLOC_ARENA_MAX="4", MALLOC_MMAP_THRESHOLD_="131072") == ["[] 4 131072", "[]", "True"]


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
