"""The review queue in headless Chromium (Debian's chromium, driven by Playwright's Python API): a
served demo project with a thumbs-down and a complaint; the reviewer opens /dashboard/incidents with an
admin key, sees each candidate with its input, output and trace link, follows the trace, edits one's
expectation and accepts it, and rejects the other; the store shows the decisions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from debian import debian_program
from incident_helpers import Served, project, serve, wait_for

from shipyard.config import ShipyardConfig
from shipyard.server._auth import create_key

__all__ = ["project", "serve"]  # fixtures, imported for pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = [pytest.mark.browser]


def _chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (as the dashboard's browser test does)."""
    return debian_program(str(CHROMIUM), "chromium")


def test_review_queue_in_chromium(
    project: Callable[..., ShipyardConfig], serve: Callable[..., Served]
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    _chromium()
    served = serve(project())
    admin = create_key(served.state.store, "admin")["key"]
    served.state.keys.refresh()
    with served.client(admin) as c:
        rated = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10004?"}).json()
        assert (
            c.post("/v1/feedback", json={"trace_id": rated["trace_id"], "thumbs": "down"}).status_code == 200
        )
        other = c.post("/v1/agents/support/invoke", json={"input": "Do you ship to Canada?"}).json()
        assert (
            c.post("/v1/incidents", json={"trace_id": other["trace_id"], "comment": "rude"}).status_code
            == 201
        )
    store = served.state.store
    feedback = wait_for(lambda: [i for i in store.list_incidents() if i["source"] == "feedback"], "feedback")[
        0
    ]
    # a thumbs-down goes to the queue as a candidate (promotion without a correction)
    from shipyard.loop import promote

    assert not promote(store, served.cfg, feedback["id"]).written
    complaint = next(i for i in store.list_incidents() if i["source"] == "complaint")

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{served.url}/dashboard/incidents?key={admin}")
            cards = page.locator("#queue section[data-incident]")
            sync_api.expect(cards).to_have_count(2, timeout=15000)
            assert "key=" not in page.url  # the key left the address bar for localStorage
            card = page.locator(f'section[data-incident="{feedback["id"]}"]')
            sync_api.expect(card.locator('[data-role="state"]')).to_have_text("candidate")
            assert card.locator('[data-role="input"]').inner_text() == "Where is my order 10004?"
            assert "10004" in card.locator('[data-role="output"]').inner_text()
            link = card.locator('a[data-role="trace"]')
            assert link.get_attribute("href") == f"/dashboard/traces/{rated['trace_id']}"
            page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

            # accepting without an expectation is refused, and says why
            card.locator('[data-action="accept"]').click()
            sync_api.expect(card.locator('[data-role="result"]')).to_contain_text("no expectation yet")
            # the reviewer writes what the answer should contain, saves, then accepts
            card.locator('input[name="contains"]').fill("10004")
            card.locator('input[name="must_not_call"]').fill("process_refund")
            card.locator('[data-action="edit"]').click()
            sync_api.expect(card.locator('[data-role="result"]')).to_contain_text("edit: now candidate")
            wait_for(lambda: store.get_incident(feedback["id"])["expectation"], "the saved expectation")
            page.locator(f'section[data-incident="{feedback["id"]}"] [data-action="accept"]').click()
            sync_api.expect(page.locator(f'section[data-incident="{feedback["id"]}"]')).to_have_count(
                0, timeout=15000
            )
            page.locator(f'section[data-incident="{complaint["id"]}"] [data-action="reject"]').click()
            sync_api.expect(page.locator("#queue-empty")).to_be_visible(timeout=15000)

            page.goto(f"{served.url}/dashboard/traces/{rated['trace_id']}")  # the trace behind it
            sync_api.expect(page.locator("#trace-summary")).to_be_visible(timeout=15000)
            assert not errors, errors
        finally:
            browser.close()

    accepted = store.get_incident(feedback["id"])
    assert accepted["state"] == "golden" and accepted["review"] is False
    assert accepted["expectation"]["assert"] == [
        {"type": "contains", "value": "10004"},
        {"type": "must_not_call", "value": ["process_refund"]},
    ]
    assert accepted["expectation"]["by"] == "dashboard"
    assert store.get_incident(complaint["id"])["state"] == "wont_fix"
