"""Comparing two runs case by case."""

from __future__ import annotations

from _gate_data import case

from shipyard.evals import compare_runs, summarize


def test_compare_sorts_every_case_into_what_happened_to_it() -> None:
    before = summarize(
        case("stays", "PPP")
        + case("breaks", "PPP")
        + case("heals", "FFF")
        + case("wobbles", "PPP")
        + case("still-bad", "FFE")
        + case("gone", "PPP"),
        run_id="a",
    )
    after = summarize(
        case("stays", "PPP")
        + case("breaks", "FFF")
        + case("heals", "PPP")
        + case("wobbles", "PFP")
        + case("still-bad", "FFF")
        + case("fresh", "PPP"),
        run_id="b",
    )
    cmp = compare_runs(before, after)
    keys = {
        name: [c.case_id for c in getattr(cmp, name)]
        for name in ("regressed", "improved", "became_flaky", "still_failing", "new", "removed")
    }
    assert keys == {
        "regressed": ["smoke/breaks", "smoke/wobbles"],
        "improved": ["smoke/heals"],
        "became_flaky": ["smoke/wobbles"],
        "still_failing": ["smoke/still-bad"],
        "new": ["smoke/fresh"],
        "removed": ["smoke/gone"],
    }
    assert cmp.unchanged == 1 and cmp.changed
    breaks = cmp.regressed[0]
    assert (breaks.before, breaks.after, breaks.before_outcome, breaks.after_outcome) == (
        "3/3",
        "0/3",
        "PASS",
        "FAIL",
    )
    assert breaks.reasons == ["contains: expected '5'"]
    assert (cmp.run_a, cmp.run_b) == ("a", "b")


def test_identical_runs_have_no_changes() -> None:
    s = summarize(case("a", "PP") + case("b", "FF"))
    cmp = compare_runs(s, s)
    assert not cmp.changed and cmp.unchanged == 1 and len(cmp.still_failing) == 1
