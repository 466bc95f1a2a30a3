"""Waiting for an event in tests: poll a condition, never assert on time."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(condition: Callable[[], object], what: str, limit_s: float = 120.0) -> None:
    """Poll until `condition()` is true; fail the test (naming `what`) if it never is. The limit
    only stops a test that would hang: it is far above any machine's speed.

    The pause between polls starts at 10 ms and grows to 100 ms: a condition is often an HTTP request
    or a query, and polling it 100 times a second takes the CPU the servers under test need."""
    give_up = time.monotonic() + limit_s
    pause = 0.01
    while not condition():
        if time.monotonic() > give_up:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)
