"""Shipyard's built-in adapter kinds, `http` and `openai_chat`.

This module is the `agents` entry point of the `shipyard.plugins` group (see pyproject.toml): loading
it registers them, exactly as a third-party package registers its own."""

from __future__ import annotations

from shipyard.agents._adapters import BUILTIN_ADAPTERS
from shipyard.config import ADAPTERS

for _name, _adapter in BUILTIN_ADAPTERS.items():
    ADAPTERS.add(_name, _adapter)
