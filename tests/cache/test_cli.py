"""`shipyard cache show | clear` on a project's SQLite cache file, without a server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import ConfigError
from shipyard.runtime import Runtime

runner = CliRunner()


def test_show_and_clear(desk: Any) -> None:
    make, module = desk
    cfg = make("backend: sqlite\nexact: {ttl_s: 60}\ntools:\n  lookup: {ttl_s: 30}\n")
    path = str(cfg.path)
    shown = runner.invoke(app, ["cache", "show", "--json", "-c", path])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["backend"] == "sqlite" and data["exact"] == {"ttl_s": 60.0} and data["semantic"] is None
    assert data["tools"] == {"lookup": {"ttl_s": 30.0}}
    table = runner.invoke(app, ["cache", "show", "-c", path])
    assert table.exit_code == 0 and "tool lookup" in table.output

    rt = Runtime(cfg)
    asyncio.run(rt.invoke("desk", "hello"))
    asyncio.run(rt.invoke("desk", "status of order 4"))
    cleared = runner.invoke(
        app, ["cache", "clear", "--agent", "desk", "--version", "1.0.0", "--json", "-c", path]
    )
    assert cleared.exit_code == 0, cleared.output
    out = json.loads(cleared.output)
    assert out["deleted"] == 2 and out["version"].startswith("desk@1.0.0+")  # two answers; the tool's stays
    calls = module().CALLS["agent"]
    assert "cache" not in asyncio.run(rt.invoke("desk", "hello")).metadata
    assert module().CALLS["agent"] == calls + 1
    everything = runner.invoke(app, ["cache", "clear", "-c", path])
    assert everything.exit_code == 0 and "deleted 2 cache entries (everything)" in everything.output
    asyncio.run(rt.aclose())


def test_clear_says_what_to_do(desk: Any) -> None:
    make, _ = desk
    memory = runner.invoke(app, ["cache", "clear", "-c", str(make("exact: {ttl_s: 60}\n").path)])
    assert memory.exit_code == 2 and "POST /admin/cache/invalidate" in memory.output
    none = runner.invoke(app, ["cache", "clear", "-c", str(make().path)])
    assert none.exit_code == 2 and "no cache is configured" in none.output
    cfg = make("backend: sqlite\nexact: {ttl_s: 60}\n")
    bad = runner.invoke(app, ["cache", "clear", "--version", "1.0.0", "-c", str(cfg.path)])
    assert bad.exit_code == 2 and "--version needs --agent" in bad.output
    kind = runner.invoke(app, ["cache", "clear", "--kind", "all", "-c", str(cfg.path)])
    assert kind.exit_code == 2 and "unknown cache kind" in kind.output


def test_storage_settings_without_a_cache_are_a_config_error(desk: Any) -> None:
    make, _ = desk
    with pytest.raises(ConfigError, match="backend set but no cache is on"):
        make("backend: redis\n")
