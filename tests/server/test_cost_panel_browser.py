"""The dashboard's cost panel in headless Chromium: a bar per day with spend (and savings), the top
users and features, from the cost ledger of a served demo project with live traffic and ledger rows
of the last days."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from server_helpers import Served
from test_cost_api import _wait_for_ledger, cost_record
from test_dashboard_browser import ARTIFACTS, CHROMIUM_ARGS, chromium  # noqa: F401  (the fixture)

from shipyard.demo import STORE

pytestmark = [pytest.mark.browser]


def test_cost_panel_in_chromium(serve_project: Callable[..., Served], chromium: Path) -> None:  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    STORE.reset()
    served = serve_project()
    served.state.store.write_interactions(
        [
            cost_record("alice", 0.30, features=["new_refund_flow"]),
            cost_record("alice", 0.12, days_ago=3),
            cost_record("bob", 0.05, saved=0.20, days_ago=1, features=["returns"]),
        ]
    )
    with served.client() as c:
        live = c.post(
            "/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "user_id": "carol"}
        )
        assert live.status_code == 200, live.text
    _wait_for_ledger(served, live.json()["interaction_id"])

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{served.url}/dashboard?window=1h")

            chart = page.locator('#cost [data-chart="cost-by-day"] svg.chart')
            sync_api.expect(chart).to_have_count(1, timeout=15000)
            assert chart.get_attribute("data-points") == "3"  # today, yesterday, three days ago
            sync_api.expect(page.locator("#cost g.day")).to_have_count(14)
            assert page.locator("#cost rect.bar.spent").count() == 3
            assert page.locator("#cost rect.bar.saved").count() == 1  # bob's cache savings, yesterday
            users = page.locator("#cost .cost-top").nth(0).locator("tbody tr[data-key]")
            sync_api.expect(users).to_have_count(3)
            assert users.first.get_attribute("data-key") == "alice"
            assert "$0.42" in users.first.inner_text()
            features = page.locator("#cost .cost-top").nth(1).locator("tbody tr[data-key]")
            assert [features.nth(i).get_attribute("data-key") for i in range(features.count())] == [
                "new_refund_flow",
                "returns",
            ]
            sync_api.expect(page.locator("#cost-total")).to_contain_text("saved")
            assert "$0.200 saved" in page.locator("#cost-total").inner_text()
            page.locator("#cost g.day").last.hover()
            sync_api.expect(page.locator("#tooltip")).to_contain_text("spent")
            ARTIFACTS.mkdir(exist_ok=True)
            page.locator("#cost").screenshot(path=str(ARTIFACTS / "dashboard-cost.png"))
            assert not errors, errors
        finally:
            browser.close()
