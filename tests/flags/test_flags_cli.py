"""`shipyard flags ...` as a user meets it: changes land in the file, bad input is a clean message (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.flags import FlagStore, Reason, load_flag_file

runner = CliRunner()

FLAG = '{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}'


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("SHIPYARD_CONFIG", "REDIS_URL", "SHIPYARD_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "shipyard.yaml").write_text("project: demo\nflags:\n  file: config/flags.json\n")
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_set_list_get_enable_disable(project: Path) -> None:
    code, out = invoke("flags", "set", "new_refund_flow", FLAG)
    assert code == 0, out
    assert "set flag new_refund_flow (ENABLED, static)" in out and "revision 1" in out
    path = project / "config" / "flags.json"  # from shipyard.yaml
    assert load_flag_file(path).flags["new_refund_flow"].default_variant == "off"

    code, out = invoke("flags", "list")
    assert code == 0 and "new_refund_flow" in out and "ENABLED" in out and "off = false" in out

    code, out = invoke("flags", "get", "new_refund_flow")
    assert code == 0 and json.loads(out)["defaultVariant"] == "off"

    code, out = invoke("flags", "disable", "new_refund_flow")
    assert code == 0 and "disabled new_refund_flow" in out and "revision 2" in out
    assert FlagStore.from_file(path).evaluate("new_refund_flow", False).reason == Reason.DISABLED

    code, out = invoke("flags", "enable", "new_refund_flow", "--variant", "on")
    assert code == 0, out
    assert FlagStore.from_file(path).evaluate("new_refund_flow", False).value is True


def test_rollout_writes_a_sticky_fractional_split(project: Path) -> None:
    assert invoke("flags", "set", "new_refund_flow", FLAG)[0] == 0
    code, out = invoke("flags", "rollout", "new_refund_flow", "10")
    assert code == 0 and "rolled out new_refund_flow to 10%" in out
    path = project / "config" / "flags.json"
    flag = load_flag_file(path).flags["new_refund_flow"]
    assert flag.targeting == {"fractional": [["on", 10], ["off", 90]]}
    store = FlagStore.from_file(path)
    on = sum(
        store.evaluate("new_refund_flow", False, {"targetingKey": f"user-{i}"}).value for i in range(4000)
    )
    assert 300 <= on <= 500  # about 10% of 4000
    assert "rollout 10% on" in invoke("flags", "list")[1]
    assert invoke("flags", "rollout", "new_refund_flow", "12.5")[0] == 0
    assert load_flag_file(path).flags["new_refund_flow"].targeting == {
        "fractional": [["on", 1250], ["off", 8750]]
    }


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("flags", "rollout", "new_refund_flow", "150"), "between 0 and 100, got 150"),
        (("flags", "rollout", "new_refund_flow", "--", "-5"), "between 0 and 100, got -5"),
        (("flags", "rollout", "greeting", "10"), "no on/off variant pair (variants: a, b)"),
        (("flags", "get", "nope"), "no flag named 'nope'"),
        (("flags", "enable", "new_refund_flow", "--variant", "maybe"), "'maybe' is not a variant"),
        (("flags", "set", "x", "{not json"), "not valid JSON"),
        (
            ("flags", "set", "x", '{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "onn"}'),
            "flags.x.defaultVariant: 'onn' is not a variant (variants: on)",
        ),
    ],
)
def test_bad_input_is_refused_with_a_reason(project: Path, args: tuple[str, ...], words: str) -> None:
    assert invoke("flags", "set", "new_refund_flow", FLAG)[0] == 0
    assert invoke("flags", "set", "greeting", '{"state": "ENABLED", "variants": {"a": "x", "b": "y"}, '
                  '"defaultVariant": "a"}')[0] == 0  # fmt: skip
    before = (project / "config" / "flags.json").read_text()
    code, out = invoke(*args)
    assert code == 2, out
    assert words in " ".join(out.split()), out
    assert "Traceback" not in out
    assert (project / "config" / "flags.json").read_text() == before  # nothing was written


def test_file_option_and_an_invalid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"flags": {"a": {"state": "ON", "variants": {"x": 1}, "defaultVariant": "x"}}}))
    code, out = invoke("flags", "list", "--file", str(bad))
    assert code == 2 and "flags.a.state: 'ON' is not a state" in out
    code, out = invoke("flags", "list", "--file", str(tmp_path / "new.json"))
    assert code == 0 and "no flags" in out
    code, out = invoke("flags", "list")  # no --file and no shipyard.yaml
    assert code == 2 and "no shipyard.yaml" in out


def test_help_has_examples() -> None:
    for cmd in ("list", "get", "set", "enable", "disable", "rollout"):
        code, out = invoke("flags", cmd, "--help")
        assert code == 0 and "Example: shipyard flags" in out, cmd
