"""shipyard.yaml loading: good files load; every bad one names file, field path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import load_config
from shipyard.errors import ConfigError

GOOD = """\
project: shop
models:
  small:
    provider: scripted
    rules: rules.yaml
    tier: small
    prices: {input: 0.15, output: 0.6}
  remote:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: SHOP_KEY
agents:
  support:
    entry: shop.agent:support
    prompts: prompts/support
    model: {name: small, fallbacks: [remote]}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "shipyard.yaml"
    p.write_text(text)
    return p


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert e.value.path.endswith("shipyard.yaml")
    return e.value.problems


def test_good_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.project == "shop"
    assert cfg.agents["support"].model.fallbacks == ["remote"]
    assert cfg.models["small"].prices.output == 0.6
    assert cfg.resolve("prompts/support") == tmp_path.resolve() / "prompts/support"


def test_unknown_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("    tier: small\n", "    tier: small\n    temprature: 0.2\n")
    [msg] = problems(tmp_path, text)
    assert "line 7" in msg and "models.small.temprature" in msg and "unknown key" in msg


def test_wrong_type_names_field_and_line(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, GOOD.replace("{input: 0.15, output: 0.6}", "{input: cheap, output: 0.6}"))
    assert "line 7" in msg and "models.small.prices.input" in msg


def test_one_message_per_problem(tmp_path: Path) -> None:
    text = GOOD.replace("tier: small", "tier: tiny").replace(
        "entry: shop.agent:support", "entry: not an entry"
    )
    msgs = problems(tmp_path, text)
    assert len(msgs) == 2
    assert any("models.small.tier" in m and "line 6" in m for m in msgs)
    assert any("agents.support.entry" in m and "line 14" in m for m in msgs)


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, "models:\n  a: [1, 2\nagents: {}\n")
    assert "malformed YAML" in msg and "line" in msg


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    # YAML keeps the last of two equal keys: a second `agents:` block would silently drop the first
    [msg] = problems(tmp_path, GOOD + "agents:\n  other:\n    entry: shop.agent:other\n")
    assert "line 17" in msg and "agents" in msg and "given twice" in msg and "line 12" in msg
    [msg] = problems(tmp_path, GOOD.replace("    tier: small\n", "    tier: small\n    tier: large\n"))
    assert "line 7: models.small.tier: given twice (first on line 6)" in msg


def test_yaml_merge_keys_may_repeat(tmp_path: Path) -> None:
    from shipyard.config._load import load_yaml_with_lines

    text = "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: *a\n  <<: *b\n  z: 3\n"
    data, lines = load_yaml_with_lines(tmp_path / "rules.yaml", text)
    assert data["c"]["z"] == 3 and lines[("c", "z")] == 6


def test_unknown_model_reference(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, GOOD.replace("fallbacks: [remote]", "fallbacks: [remot]"))
    assert "remot" in msg and "not defined under models" in msg


def test_provider_specific_fields_are_required(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, GOOD.replace("    base_url: http://127.0.0.1:9/v1\n", ""))
    assert "models.remote" in msg and "base_url" in msg


def test_missing_file_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    assert "mapping" in problems(tmp_path, "- just\n- a list\n")[0]


def test_agent_needs_entry_or_adapter(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, GOOD.replace("    entry: shop.agent:support\n", ""))
    assert "exactly one of entry" in msg


@pytest.mark.parametrize("kind", ["config", "rules", "suite"])
def test_a_file_that_is_not_utf8_is_a_message_not_a_traceback(tmp_path: Path, kind: str) -> None:
    """Every YAML file Shipyard reads (shipyard.yaml, a scripted model's rules, an eval suite) names
    the file and the byte when it is not UTF-8 (saved as Latin-1, say); it used to raise
    UnicodeDecodeError for all but shipyard.yaml."""
    from shipyard.evals import SuiteError, load_suite
    from shipyard.llm import load_rules

    text = {
        "config": GOOD.replace("project: shop", "project: café"),
        "rules": 'default: "Un café ?"\n',
        "suite": 'name: smoke\ncases:\n  - {id: c1, input: "un café"}\n',
    }[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(text.encode("latin-1"))
    load = {"config": load_config, "rules": load_rules, "suite": load_suite}[kind]
    error = SuiteError if kind == "suite" else ConfigError
    with pytest.raises(error) as e:
        load(path)
    assert e.value.path == str(path)
    where = text.encode("latin-1").index("é".encode("latin-1"))
    assert e.value.problems == [f"byte {where}: the file is not UTF-8 text"]
