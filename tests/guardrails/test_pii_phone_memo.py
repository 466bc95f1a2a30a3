"""Phone candidates' libphonenumber verdicts are remembered (a pure function of the candidate and the
regions): a text finds the same numbers, and spends the same parse budget, whether they are known."""

from __future__ import annotations

from shipyard.guardrails import find_pii
from shipyard.guardrails._pii import _parsed_phone

TEXTS = [
    "Call +1 415 555 0134 or (415) 555-2671; order 10002 on 2026-10-15 14:30, 59.99 USD",
    "Ruf an: 030 1234567, oder 0044 20 7946 0958; ticket 555 0134",
    ", ".join(f"03-{3000 + i:04d}-5678" for i in range(400)),  # past the parse budget
    ", ".join(f"03-{3000 + i:04d}-5678 and 555 {i:04d}" for i in range(60)),  # budget spent on repeats
]


def test_remembered_verdicts_find_the_same_numbers() -> None:
    cold = []
    for text in TEXTS:
        _parsed_phone.cache_clear()
        cold.append(find_pii(text))
        assert find_pii(text) == cold[-1]  # again, with every verdict remembered
    assert _parsed_phone.cache_info().hits > 0
    assert [find_pii(text) for text in TEXTS] == cold  # each with the others' verdicts remembered
    assert any(e.type == "PHONE" for e in cold[0])
