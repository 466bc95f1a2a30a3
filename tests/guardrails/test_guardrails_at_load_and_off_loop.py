"""Guardrails in the real runtime: a check that cannot work with a version's prompt bundle is a
configuration error when the agent's versions load (never a per-request failure), and long texts are
checked in a worker thread, off the event loop, short ones inline."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from order_shop import shop_project

from shipyard.config import StrictModel, load_config
from shipyard.errors import ConfigError
from shipyard.guardrails import (
    ALLOW,
    HEAVY_CHARS,
    Decision,
    Guardrail,
    GuardrailInput,
    guardrail_kind,
    is_heavy,
)
from shipyard.runtime import Runtime

SEEN: list[tuple[int, threading.Thread]] = []


@guardrail_kind("test_where_checked")
class WhereChecked(Guardrail):
    """Notes the length of what it checked and the thread it ran on."""

    options = StrictModel
    stages = ("input",)

    def check(self, inp: GuardrailInput) -> Decision:
        SEEN.append((len(inp.text), threading.current_thread()))
        return ALLOW


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    bundle = tmp_path / "prompts" / "shop"
    bundle.mkdir(parents=True)
    (bundle / "system_prompt.txt").write_text("You help Acme customers.\n{{ safety_rules }}\n")
    (bundle / "safety_rules.txt").write_text("Never share other customers' orders.\n")
    (bundle / "version.txt").write_text("2.0.0\n")
    with shop_project(tmp_path, "guardload") as module:
        (tmp_path / "entry.txt").write_text(module)
        yield tmp_path


def write(folder: Path, guardrails: str) -> Path:
    module = (folder / "entry.txt").read_text()
    (folder / "shipyard.yaml").write_text(
        textwrap.dedent(f"""\
        models:
          scripted: {{provider: scripted, rules: rules.yaml}}
        agents:
          shop:
            entry: {module}:shop
            prompts: prompts/shop
            model: {{name: scripted}}
            guardrails:
        """)
        + textwrap.indent(textwrap.dedent(guardrails), "      ")
    )
    return folder / "shipyard.yaml"


async def test_policy_phrases_with_nothing_to_check_is_a_config_error_when_versions_load(
    project: Path,
) -> None:
    rt = Runtime(load_config(write(project, "output:\n  - kind: policy_phrases\n")))
    try:
        with pytest.raises(ConfigError) as e:
            rt.versions("shop")
        [problem] = e.value.problems
        assert problem.startswith("agents.shop.guardrails: policy_phrases 'policy_phrases' has no phrase")
        assert "phrases: [...]" in problem and "Never say" in problem and "shop@2.0.0" in problem
        assert "\n" not in problem
    finally:
        await rt.aclose()

    # with a "Never say" line in safety_rules.txt the same check loads, and judges
    (project / "prompts" / "shop" / "safety_rules.txt").write_text('- Never say "guaranteed refund".\n')
    rt = Runtime(load_config(write(project, "output:\n  - kind: policy_phrases\n")))
    try:
        assert rt.versions("shop")
        r = await rt.invoke("shop", "where is order 42?")
        assert r.status == "completed" and r.error is None
    finally:
        await rt.aclose()


async def test_phrases_without_safety_rules_say_how_to_fix_it(project: Path) -> None:
    cfg = load_config(write(project, "output:\n  - {kind: policy_phrases, from_safety_rules: false}\n"))
    rt = Runtime(cfg)
    try:
        with pytest.raises(ConfigError, match="set from_safety_rules: true"):
            rt.versions("shop")
    finally:
        await rt.aclose()


async def test_long_texts_are_checked_in_a_worker_thread_short_ones_inline(project: Path) -> None:
    rt = Runtime(load_config(write(project, "input:\n  - kind: test_where_checked\n")))
    SEEN.clear()
    loop_thread = threading.current_thread()
    long_text = "where is order 42? " + "x" * HEAVY_CHARS
    assert is_heavy(long_text) and not is_heavy("where is order 42?")
    try:
        short = await rt.invoke("shop", "where is order 42?")
        long = await rt.invoke("shop", long_text)
    finally:
        await rt.aclose()
    assert short.status == "completed" and long.status == "completed"
    [(n_short, t_short), (n_long, t_long)] = SEEN
    assert n_short == len("where is order 42?") and t_short is loop_thread
    assert n_long == len(long_text) and t_long is not loop_thread
