"""Scorers with Google ADK's semantics, for imported ADK eval sets: `adk_response_match` (ADK's
`response_match_score`: ROUGE-1 F1 with Porter stemming, averaged over the invocations) and
`adk_trajectory` (ADK's `tool_trajectory_avg_score`: each invocation's tool calls match or not,
averaged). Checked against google-adk's own evaluators by tests/conformance."""

from __future__ import annotations

import unicodedata
from typing import Any

from shipyard.evals._scorers import ScoreFn, ScoreInput, scorer
from shipyard.evals._types import ScoreResult


def _cjk(ch: str) -> bool:
    c = ord(ch)
    return 0x4E00 <= c <= 0x9FFF or 0x3040 <= c <= 0x30FF or 0xAC00 <= c <= 0xD7AF


def _unspaced(ch: str) -> bool:  # Thai, Lao, Myanmar, Khmer: no spaces between words
    c = ord(ch)
    return 0x0E00 <= c <= 0x0EFF or 0x1000 <= c <= 0x109F or 0x1780 <= c <= 0x17FF


class _Tokenizer:
    """ADK's tokenizer for response_match_score: NFKC, lower case; CJK characters and grapheme
    clusters of unspaced scripts are tokens; other words are kept, ASCII ones stemmed by rouge-score's
    own tokenizer (Porter stemmer, as `rouge_scorer.RougeScorer(use_stemmer=True)`)."""

    def __init__(self) -> None:
        from rouge_score import tokenizers

        self._ascii = tokenizers.DefaultTokenizer(use_stemmer=True)

    def tokenize(self, text: str) -> list[str]:
        chars: list[str] = []
        for ch in unicodedata.normalize("NFKC", text).lower():
            mark = unicodedata.category(ch).startswith("M")
            if _cjk(ch):
                chars += [" ", ch, " "]
            elif _unspaced(ch):
                chars += [ch] if mark else [" ", ch]
            elif ch.isalnum() or mark:
                chars.append(ch)
            else:
                chars.append(" ")
        tokens: list[str] = []
        for word in "".join(chars).split():
            tokens += self._ascii.tokenize(word) if word.isascii() else [word]
        return tokens


_SCORER: Any = None


def adk_rouge1(candidate: str, reference: str) -> float:
    """ROUGE-1 F1 as ADK's response_match_score computes it for one invocation."""
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rouge1"], tokenizer=_Tokenizer())
    return float(_SCORER.score(reference, candidate)["rouge1"].fmeasure)


def _turns(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name}: value must be a list with one entry per invocation (turn)")
    return value


@scorer("adk_response_match")
def adk_response_match(value: Any, *, threshold: float = 0.8) -> ScoreFn:
    """ADK's response_match_score: the mean over invocations of ROUGE-1 F1 (with stemming) between each
    turn's reply and its expected reply (a turn without one scores against an empty text, as in ADK).

    Args:
        value: the expected reply of each turn (null where the eval set gives none).
        threshold: the least mean score that passes."""
    expected = _turns(value, "adk_response_match")

    def score(inp: ScoreInput) -> ScoreResult:
        outputs = inp.turn_outputs or [inp.output]
        if len(outputs) != len(expected):
            return ScoreResult(
                "adk_response_match", False, 0.0, f"{len(outputs)} replies for {len(expected)} invocations"
            )
        per_turn = [adk_rouge1(out, ref or "") for out, ref in zip(outputs, expected, strict=True)]
        mean = sum(per_turn) / len(per_turn)
        return ScoreResult(
            "adk_response_match",
            mean >= threshold,
            mean,
            f"ROUGE-1 {mean:.3f} (threshold {threshold:g})",
            details={"per_turn": per_turn},
        )

    return score


def _turn_matches(
    actual: list[dict[str, Any]], expected: list[dict[str, Any]], match: str, ignore_args: bool
) -> bool:
    def same(a: dict[str, Any], e: dict[str, Any]) -> bool:
        return a["name"] == e["name"] and (ignore_args or (a.get("arguments") or {}) == (e.get("args") or {}))

    if match == "EXACT":
        return len(actual) == len(expected) and all(same(a, e) for a, e in zip(actual, expected, strict=True))
    if not expected:
        return True
    if match == "IN_ORDER":
        i = 0
        for a in actual:
            if same(a, expected[i]):
                i += 1
                if i == len(expected):
                    return True
        return False
    left = list(actual)  # ANY_ORDER: each expected call among the actual ones, extras allowed
    for e in expected:
        hit = next((n for n, a in enumerate(left) if same(a, e)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True


@scorer("adk_trajectory")
def adk_trajectory(
    value: Any, *, threshold: float = 1.0, match_type: str = "EXACT", ignore_args: bool = False
) -> ScoreFn:
    """ADK's tool_trajectory_avg_score: each invocation (turn) scores 1 when its tool calls match the
    expected ones (arguments compared strictly), else 0; the mean must reach the threshold.

    Args:
        value: per turn, the expected calls `[{name, args}]`.
        threshold: the least mean that passes.
        match_type: EXACT (same calls, same order, nothing else), IN_ORDER (these in order, others
            between) or ANY_ORDER (these in any order, others allowed).
        ignore_args: compare tool names only."""
    expected = _turns(value, "adk_trajectory")
    match = match_type.upper()
    if match not in ("EXACT", "IN_ORDER", "ANY_ORDER"):
        raise ValueError(
            f"adk_trajectory: match_type must be EXACT, IN_ORDER or ANY_ORDER, got {match_type!r}"
        )

    def score(inp: ScoreInput) -> ScoreResult:
        per_turn = []
        for t, exp in enumerate(expected):
            actual = [c for c in inp.tool_calls if c.get("turn", 0) == t]
            per_turn.append(1.0 if _turn_matches(actual, exp or [], match, ignore_args) else 0.0)
        mean = sum(per_turn) / len(per_turn)
        missed = [t + 1 for t, s in enumerate(per_turn) if s < 1]
        reason = f"{len(per_turn) - len(missed)} of {len(per_turn)} invocations match ({match})"
        if missed:
            reason += f"; not turn(s) {', '.join(map(str, missed))}"
        return ScoreResult("adk_trajectory", mean >= threshold, mean, reason, details={"per_turn": per_turn})

    return score
