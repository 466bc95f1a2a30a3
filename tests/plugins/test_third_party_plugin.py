"""A real third-party plugin: a package with its own pyproject.toml declaring a `shipyard.plugins`
entry point, installed into a folder on sys.path (its dist-info, as pip writes it). It registers a
model provider with its own settings, a scorer and a suite format; a project uses all three, and
`shipyard eval run` works end to end in a fresh process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from plugin_dist import PYTHON, env_with_path, install, write_package

PLUGIN = '''\
"""acme-shipyard: an `echo` model provider, an `echoed` scorer and a `csv` suite format."""

import csv

from pydantic import Field

from shipyard.config import PROVIDERS, ModelProvider, StrictModel
from shipyard.evals import IMPORTERS, SuiteImporter, parse_suite, scorer
from shipyard.types import ChatResponse, Usage


class EchoSettings(StrictModel):
    prefix: str = Field(..., min_length=1, description="what every answer starts with")


class EchoClient:
    provider = "acme-echo"

    def __init__(self, name, prefix):
        self.name = name
        self.prefix = prefix

    async def chat(self, messages, *, tools=None, **options):
        said = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        return ChatResponse(f"{self.prefix} {said}", [], Usage(len(said), 2), self.name, self.provider)

    async def aclose(self):
        pass


PROVIDERS.add(
    "echo",
    ModelProvider(
        EchoSettings,
        client=lambda key, m, cfg: EchoClient(key, m.settings.prefix),
        identity=lambda s, cfg: {"prefix": s.prefix},
    ),
)


@scorer("echoed")
def echoed(value=None, *, prefix: str = ">>"):
    """Passes when the answer starts with `prefix`."""

    def score(inp):
        return {"pass": inp.output.startswith(prefix), "reason": f"starts with {prefix!r}?"}

    return score


def load_csv(path, data, lines, *, name=None, **options):
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    cases = [
        {"id": r["id"], "input": r["input"], "expected": r["expected"], "assert": [{"type": r["check"]}]}
        for r in rows
    ]
    return parse_suite({"name": name or path.stem, "cases": cases}, path)


IMPORTERS.add("csv", SuiteImporter(load_csv, suffixes=(".csv",)))
'''

AGENT = """\
from shipyard import agent


@agent("parrot")
async def parrot(user_input, ctx):
    reply = await ctx.llm.chat([{"role": "user", "content": user_input}])
    return reply.text
"""

CONFIG = """\
models:
  parrot-model:
    provider: {provider}
    prefix: "{prefix}"
    prices: {{input: 1.0, output: 2.0}}
agents:
  parrot:
    entry: agent:parrot
    model: {{name: parrot-model}}
"""

SUITE = """\
id,input,expected,check
hello,hello there,>> hello there,echoed
tide,high tide,>> high tide,echoed
wrong,low tide,sunny,not-echoed
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    package = write_package(
        root / "acme-shipyard",
        "acme-shipyard",
        {"shipyard.plugins": {"acme": "acme_shipyard"}},
        {"acme_shipyard/__init__.py": PLUGIN},
    )
    return install(root / "site", package)


def project(tmp_path: Path, provider: str = "echo", prefix: str = ">>") -> Path:
    (tmp_path / "agent.py").write_text(AGENT)
    (tmp_path / "shipyard.yaml").write_text(CONFIG.format(provider=provider, prefix=prefix))
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "parrot.csv").write_text(SUITE)
    return tmp_path


def shipyard(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "shipyard", *args],
        env=env_with_path(site),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_eval_run_uses_the_plugins_provider_scorer_and_suite_format(site: Path, tmp_path: Path) -> None:
    root = project(tmp_path)
    done = shipyard(site, root, "eval", "run", "--agent", "parrot", "--suite", "evals/parrot.csv",
                    "--report", "json:report.json")  # fmt: skip
    # the suite's `wrong` case fails on purpose: the run exits 1, as pytest would, and still reports
    assert done.returncode == 1 and "1 failed, 0 ERROR of 3 case(s)" in done.stderr, done.stdout + done.stderr
    report = json.loads((root / "report.json").read_text())
    outcomes = {r["case_id"]: r for r in report["results"]}
    assert {k: r["outcome"] for k, r in outcomes.items()} == {
        "hello": "PASS",
        "tide": "PASS",
        "wrong": "FAIL",
    }
    assert outcomes["hello"]["output"] == ">> hello there"  # the echo provider answered
    scored = {s["scorer"]: s for s in outcomes["hello"]["scores"]}
    assert scored["echoed"]["passed"] is True and scored["echoed"]["reason"] == "starts with '>>'?"
    assert outcomes["hello"]["cost_usd"] > 0  # priced from the entry's prices, like any provider

    converted = shipyard(site, root, "eval", "import", "csv", "evals/parrot.csv", "-o", "evals/parrot.yaml")
    assert converted.returncode == 0, converted.stdout + converted.stderr
    assert (
        "id: tide" in (root / "evals" / "parrot.yaml").read_text()
        and "type: not-echoed" in (root / "evals" / "parrot.yaml").read_text()
    )


def test_the_providers_settings_are_checked_and_part_of_the_version(site: Path, tmp_path: Path) -> None:
    root = project(tmp_path)
    first = shipyard(site, root, "versions", "parrot")
    assert first.returncode == 0, first.stderr
    (root / "shipyard.yaml").write_text(CONFIG.format(provider="echo", prefix="<<"))
    second = shipyard(site, root, "versions", "parrot")
    assert second.returncode == 0, second.stderr
    ids = [next(w for w in out.stdout.split() if w.startswith("parrot@")) for out in (first, second)]
    assert ids[0] != ids[1]  # the provider's identity (its prefix) is part of the version id

    (root / "shipyard.yaml").write_text(
        CONFIG.format(provider="echo", prefix="").replace('    prefix: ""\n', "    prefx: x\n")
    )
    bad = shipyard(site, root, "versions", "parrot")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    text = bad.stdout + bad.stderr
    assert "line 4: models.parrot-model.prefx: unknown key" in text
    assert "models.parrot-model.prefix: required field is missing" in text


def test_an_unknown_provider_is_a_config_error_listing_the_plugins_too(site: Path, tmp_path: Path) -> None:
    root = project(tmp_path, provider="ecco")
    done = shipyard(site, root, "eval", "run", "--agent", "parrot", "--suite", "evals/parrot.csv")
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    text = done.stdout + done.stderr
    assert "shipyard.yaml" in text
    assert (
        "line 3: models.parrot-model.provider: unknown model provider 'ecco' (known: echo, openai, scripted)"
        in text
    )
