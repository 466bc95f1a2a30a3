"""Store retention in a running server (`store.retention`: pruned at start and every `every`) and on
demand (`shipyard store prune`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from records import interaction
from server_helpers import Served
from test_resources import settings
from typer.testing import CliRunner
from waiting import wait_until

from shipyard.cli import app as cli
from shipyard.store import Store

DAY = 86400.0


def test_a_server_prunes_its_store_by_its_retention(
    serve_project: Callable[..., Served], tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'kept.sqlite'}")
    now = time.time()
    old = [interaction(created_at=now - 40 * DAY) for _ in range(5)]
    recent = [interaction(created_at=now - 2 * DAY) for _ in range(3)]
    store.write_interactions([*old, *recent])
    served = serve_project(settings(store={"retention": {"max_age": "30d", "every": "1h"}}), store=store)
    wait_until(lambda: store.count_interactions() == 3, "the server pruned the store at start")
    assert all(store.get_interaction(r.id) is None for r in old)
    assert all(store.get_interaction(r.id) is not None for r in recent)

    def pruned() -> list[dict[str, Any]]:
        lines = map(orjson.loads, served.logs.getvalue().splitlines())
        return [e for e in lines if e["event"] == "store_pruned"]

    wait_until(pruned, "the prune was logged")
    [event] = pruned()
    assert event["deleted"] == 5 and event["max_age"] == "30d"
    assert event["bytes_after"] <= event["bytes_before"]  # on disk: a few rows free no page
    store.close()


def test_a_bad_retention_setting_is_a_config_error(demo_project: Callable[..., Any]) -> None:
    from shipyard.errors import ShipyardError

    with pytest.raises(ShipyardError, match=r"store\.retention\.max_age"):
        demo_project(settings(store={"retention": {"max_age": "a month"}}))


def test_the_cli_prunes_by_the_config_or_its_options(
    demo_project: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = demo_project()
    monkeypatch.chdir(cfg.root)
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    now = time.time()
    with Store.from_config(cfg) as store:
        store.write_interactions([interaction(created_at=now - age * DAY) for age in (50, 20, 10, 1)])
    runner = CliRunner()
    nothing = runner.invoke(cli, ["store", "prune"])
    assert nothing.exit_code == 2 and "nothing to prune by" in nothing.output
    assert "store.retention.max_age" in nothing.output
    bad = runner.invoke(cli, ["store", "prune", "--max-age", "soon"])
    assert bad.exit_code == 2 and "--max-age" in bad.output
    by_option = runner.invoke(cli, ["store", "prune", "--max-age", "30d"])
    assert by_option.exit_code == 0, by_option.output
    assert "deleted 1 interaction(s)" in by_option.output
    (cfg.root / "shipyard.yaml").write_text(
        settings(store={"retention": {"max_age": "15d"}})((cfg.root / "shipyard.yaml").read_text())
    )
    by_config = runner.invoke(cli, ["store", "prune"])
    assert by_config.exit_code == 0 and "deleted 1 interaction(s)" in by_config.output
    by_size = runner.invoke(cli, ["store", "prune", "--max-size-mb", "0.000001"])
    assert by_size.exit_code == 0 and "deleted 2 interaction(s)" in by_size.output
    with Store.from_config(cfg) as store:
        assert store.count_interactions() == 0
    helped = runner.invoke(cli, ["store", "prune", "--help"])
    assert helped.exit_code == 0 and "Example: shipyard store prune" in helped.output
