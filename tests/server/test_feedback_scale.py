"""POST /v1/feedback takes a score on the 1-5 satisfaction scale KPIs, alerts and incidents read, and
refuses anything else with 422 naming the field, keeping what was stored before."""

from __future__ import annotations

import pytest
from server_helpers import Served


@pytest.mark.parametrize("score", [99, 0, 0.5, 5.01, -1, 100_000])
def test_a_score_off_the_scale_is_refused_and_nothing_is_stored(served: Served, score: float) -> None:
    with served.client() as c:
        r = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"}).json()
        kept = c.post("/v1/feedback", json={"interaction_id": r["interaction_id"], "score": 4})
        assert kept.status_code == 200, kept.text
        bad = c.post("/v1/feedback", json={"interaction_id": r["interaction_id"], "score": score})
        assert bad.status_code == 422, bad.text
        error = bad.json()["error"]
        assert error["param"] == "score"
        assert error["message"].startswith("field 'score' is a satisfaction score from 1 (worst) to 5 (best)")
        assert f"got {score!r}" in error["message"]
        # a thumb and a score together: the bad score refuses the whole feedback
        both = c.post(
            "/v1/feedback", json={"interaction_id": r["interaction_id"], "thumbs": "up", "score": score}
        )
        assert both.status_code == 422, both.text
    stored = served.state.store.get_interaction(r["interaction_id"])
    assert stored is not None and stored.feedback is not None
    assert stored.feedback["score"] == 4.0 and stored.feedback.get("thumbs") is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"score": 1}, {"score": 1.0}),
        ({"score": 5}, {"score": 5.0}),
        ({"score": 4.5}, {"score": 4.5}),
        ({"thumbs": "up"}, {"thumbs": 1}),
        ({"thumbs": -1, "score": 2}, {"thumbs": -1, "score": 2.0}),
        ({"comment": "fine"}, {}),
    ],
)
def test_every_documented_form_is_taken(
    served: Served, body: dict[str, object], expected: dict[str, object]
) -> None:
    with served.client() as c:
        r = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"}).json()
        fb = c.post("/v1/feedback", json={"interaction_id": r["interaction_id"], **body})
    assert fb.status_code == 200, fb.text
    for name, value in expected.items():
        assert fb.json()["feedback"][name] == value


def test_the_api_document_states_the_scale(served: Served) -> None:
    with served.client() as c:
        doc = c.get("/openapi.json").json()
    schema = doc["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["score"]["minimum"] == 1 and schema["properties"]["score"]["maximum"] == 5
