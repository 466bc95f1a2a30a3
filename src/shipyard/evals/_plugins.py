"""Shipyard's built-in eval plugins: scorers, suite formats and report kinds.

This module is the `evals` entry point of the `shipyard.plugins` group (see pyproject.toml): loading
it registers them, exactly as a third-party package registers its own."""

from __future__ import annotations

from shipyard.evals._importers import BUILTIN_IMPORTERS, IMPORTERS
from shipyard.evals._reports import BUILTIN_RENDERERS, REPORT_FORMATS
from shipyard.plugins import import_builtins

# the scorers register themselves with @scorer where they are defined
import_builtins(
    "shipyard.evals._scorers_match",
    "shipyard.evals._scorers_trajectory",
    "shipyard.evals._scorers_safety",
    "shipyard.evals._scorers_python",
    "shipyard.evals._scorers_promptfoo",
    "shipyard.evals._scorers_promptfoo_agent",
    "shipyard.evals._scorers_promptfoo_meteor",
    "shipyard.evals._scorers_adk",
    "shipyard.evals._judge",
)
for _name, _importer in BUILTIN_IMPORTERS.items():
    IMPORTERS.add(_name, _importer)
for _name, _renderer in BUILTIN_RENDERERS.items():
    REPORT_FORMATS.add(_name, _renderer)
