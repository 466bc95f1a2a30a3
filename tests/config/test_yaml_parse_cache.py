"""`load_yaml_with_lines` parses a given text once per process: every caller gets its own copy of the
data and line map (free to change them), and a file whose text changed is parsed afresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config._load import load_yaml_with_lines
from shipyard.errors import ConfigError


def test_the_same_text_gives_equal_independent_copies_and_a_changed_file_is_read_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("name: s\ncases:\n  - {id: a, input: hi}\n")
    data, lines = load_yaml_with_lines(path)
    assert data == {"name": "s", "cases": [{"id": "a", "input": "hi"}]}
    assert lines[("cases", 0, "id")] == 3
    data["cases"].append({"id": "mine"})  # a caller changes what it got
    lines.clear()
    again, again_lines = load_yaml_with_lines(path)
    assert again == {"name": "s", "cases": [{"id": "a", "input": "hi"}]}
    assert again_lines[("cases", 0, "id")] == 3
    assert again is not data
    path.write_text("name: t\n\ncases: []\n")
    changed, changed_lines = load_yaml_with_lines(path)
    assert changed == {"name": "t", "cases": []} and changed_lines[("cases",)] == 3


def test_malformed_yaml_is_an_error_every_time(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    for _ in range(2):
        with pytest.raises(ConfigError, match="malformed YAML"):
            load_yaml_with_lines(path)
