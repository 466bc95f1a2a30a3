"""The README quotes the demo's real output: the demo version ids in it (support 1.x; the 0.1.0 ids
of the own-agent examples are not the demo's) are the ones the packaged demo project has now (an
edit of a demo version's code or prompts changes its id, and the README must follow)."""

from __future__ import annotations

import re
from pathlib import Path

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.runtime import Runtime

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_demo_version_id_the_readme_quotes_is_the_demo_projects_own(tmp_path: Path) -> None:
    quoted = set(re.findall(r"support@1\.\d+\.\d+\+[0-9a-f]{7}", README.read_text(encoding="utf-8")))
    assert len(quoted) >= 3  # the quick start's 1.0, 1.1 and 1.2 at least
    rt = Runtime(load_config(copy_project(tmp_path / "demo") / "shipyard.yaml"))
    actual = {v.id for v in rt.versions("support")}
    assert quoted <= actual, (
        f"README quotes {sorted(quoted - actual)}; the demo's versions are {sorted(actual)}"
    )
