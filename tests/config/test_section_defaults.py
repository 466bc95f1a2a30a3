"""A section left out of shipyard.yaml is its model's default, validated by the file's own schema
(`section()` in config/_schema_base.py): loading the file builds no second schema per section, and the
defaults are the very values `Section()` gives."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from pydantic import BaseModel

from shipyard.config import ShipyardConfig, load_config

MINIMAL = "project: p\nagents:\n  a:\n    entry: agent:a\n    model: {name: m}\nmodels:\n  m: {provider: openai, model: gpt-x, base_url: 'http://127.0.0.1:9/v1'}\n"


def _nested_defaults(model: BaseModel, where: str = "") -> list[tuple[str, BaseModel]]:
    """Every section-model value of `model` (recursively) that the file left out."""
    found = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            if name not in model.model_fields_set:
                found.append((f"{where}{name}", value))
            found += _nested_defaults(value, f"{where}{name}.")
        elif isinstance(value, dict):  # agents, models: given, but their own sections may not be
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    found += _nested_defaults(item, f"{where}{name}.{key}.")
    return found


def test_a_section_left_out_equals_its_models_own_default(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(MINIMAL)
    cfg = load_config(path)
    defaults = _nested_defaults(cfg)
    assert len(defaults) > 20  # budgets, routing.scorer, pipeline.pre_merge, agents.a.guardrails, ...
    given = {
        "shadow.cost": {"ratio": 1.5, "min_delta": 1e-5},
        "shadow.latency": {"ratio": 2.0, "min_delta": 250.0},
    }
    for where, value in defaults:
        fresh = type(value)(**given.get(where, {}))
        assert value == fresh, where
        assert value.model_fields_set == fresh.model_fields_set, where
    assert ShipyardConfig().model_dump() == ShipyardConfig.model_validate({}).model_dump()


def test_loading_a_file_builds_no_schema_per_section_left_out(tmp_path: Path) -> None:
    """In a fresh interpreter (here, other tests may have built the section models already)."""
    path = tmp_path / "shipyard.yaml"
    path.write_text(MINIMAL)
    code = textwrap.dedent(
        f"""
        from shipyard.config import BudgetsConfig, RoutingConfig, ShipyardConfig, load_config
        from shipyard.config._routing import ScorerConfig
        cfg = load_config({str(path)!r})
        assert isinstance(cfg.budgets, BudgetsConfig) and isinstance(cfg.routing.scorer, ScorerConfig)
        built = [m.__name__ for m in (BudgetsConfig, RoutingConfig, ScorerConfig) if m.__pydantic_complete__]
        assert ShipyardConfig.__pydantic_complete__ and built == [], built
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
