"""The health dashboard: one self-refreshing HTML page (dashboard.html) over the read-only admin API."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def dashboard_html() -> str:
    """The page, read once from the package."""
    return (resources.files("shipyard.server") / "dashboard.html").read_text(encoding="utf-8")
