"""Conformance tests run the reference tools themselves: promptfoo from npm (installed once per
lockfile into tests/support/node by `npm ci`, see tests/support/node_tools.py) and google-adk's evaluators from PyPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from _conformance import Unavailable, install_promptfoo


@pytest.fixture(scope="session")
def promptfoo() -> Path:
    """The promptfoo executable; the tests using it skip, saying why, without node and npm."""
    try:
        return install_promptfoo()
    except Unavailable as e:
        pytest.skip(str(e))
