"""The default and built-in alert rules are made on first use (config/_alerts.py): importing and loading
the config builds no validator of AlertRule's own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard.config import AlertRule, AlertsConfig, builtin_alert_rules, default_alert_rules


def test_loading_a_config_makes_no_alert_rule(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: p\n")
    code = textwrap.dedent(
        """
        from shipyard.config import AlertRule, default_alert_rules, load_config
        load_config("shipyard.yaml")
        assert not AlertRule.__pydantic_complete__, "an AlertRule was made"
        assert default_alert_rules() and AlertRule.__pydantic_complete__
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("rules", [default_alert_rules, builtin_alert_rules])
def test_the_rules_are_one_tuple_of_validated_rules(rules: object) -> None:
    assert callable(rules)
    made = rules()
    assert made is rules()
    assert isinstance(made, tuple) and all(isinstance(r, AlertRule) for r in made)
    # validated, as when they were made at import: an int threshold is a float
    assert all(isinstance(r.alert, float) for r in made if r.alert is not None)


def test_effective_rules_are_the_defaults_and_the_builtins() -> None:
    assert AlertsConfig().effective_rules() == [*default_alert_rules(), *builtin_alert_rules()]
