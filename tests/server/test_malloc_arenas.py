"""`shipyard serve` caps glibc's malloc arenas (server/_serve.py `limit_malloc_arenas`) unless the
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
    "from shipyard.server._serve import limit_malloc_arenas\n"
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
