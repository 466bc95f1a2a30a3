"""What a router sees of a request: the last user message, the step, earlier turns, tools."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any

WORD_RE = re.compile(r"[a-z0-9']+")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)?")
_NEGATION_RE = re.compile(r"(?i)\b(not|no|never|without|n't|cannot|can't|won't|don't|didn't|isn't|wasn't)\b")
_CLAUSE_RE = re.compile(r"(?i)\b(and|but|also|because|although|unless|while|then|or)\b|[;,]")
_SENTENCE_RE = re.compile(r"[.!?]+(?:\s|$)")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """One model call as a router sees it.

    Attributes:
        agent: the agent's name.
        user: the last user message ("" when there is none).
        step: the agent's name for this step (`ctx.llm.chat(..., step=...)`), if it gave one.
        turns: user messages before the last one.
        has_tools: the call offers tools.
        new_turn: the last message is the user's (not a tool result inside a turn).
    """

    agent: str
    user: str
    step: str | None = None
    turns: int = 0
    has_tools: bool = False
    new_turn: bool = True
    words: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls, agent: str, messages: list[Any], *, step: str | None = None, has_tools: bool = False
    ) -> RouteRequest:
        users = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
        user = _text(messages[users[-1]].get("content")) if users else ""
        last_role = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
        return cls(
            agent=agent,
            user=user,
            step=step,
            turns=max(0, len(users) - 1),
            has_tools=has_tools,
            new_turn=last_role == "user",
            words=WORD_RE.findall(user.lower()),
        )

    @classmethod
    def from_input(cls, agent: str, user_input: str, turns: int = 0) -> RouteRequest:
        """The request of an interaction's first call (the user's input), for fitting and evaluating."""
        return cls(agent=agent, user=user_input, turns=turns, words=WORD_RE.findall(user_input.lower()))


NUMERIC = ("words", "sentences", "clauses", "numbers", "negations", "questions", "turns")


def numeric_features(r: RouteRequest) -> dict[str, float]:
    """Length and structure of the request, each scaled to about 0..1."""
    text = r.user
    return {
        "words": min(len(r.words), 120) / 120,
        "sentences": min(len(_SENTENCE_RE.findall(text)) + 1, 8) / 8,
        "clauses": min(len(_CLAUSE_RE.findall(text)), 8) / 8,
        "numbers": min(len(_NUMBER_RE.findall(text)), 6) / 6,
        "negations": min(len(_NEGATION_RE.findall(text)), 4) / 4,
        "questions": min(text.count("?"), 4) / 4,
        "turns": min(r.turns, 10) / 10,
    }


# the feature scorer's weights: longer, multi-part, negated, multi-turn requests are harder
_WEIGHTS = {
    "words": 0.9,
    "sentences": 0.5,
    "clauses": 0.9,
    "numbers": 0.3,
    "negations": 0.6,
    "questions": 0.4,
    "turns": 0.5,
}
_BIAS = 0.05


def difficulty(r: RouteRequest) -> tuple[float, list[str]]:
    """The feature scorer: a difficulty score in 0..1 and the features that raised it most."""
    feats = numeric_features(r)
    parts = {k: _WEIGHTS[k] * v for k, v in feats.items()}
    score = min(1.0, _BIAS + sum(parts.values()) / 2.0)
    top = sorted(((v, k) for k, v in parts.items() if v > 0), reverse=True)[:3]
    return score, [f"{k}={feats[k]:.2f}" for _, k in top]


def hashed_terms(r: RouteRequest, dims: int) -> dict[int, float]:
    """Unigrams and bigrams of the last user message (and the step name), hashed into `dims` slots."""
    terms = list(r.words) + [f"{a} {b}" for a, b in zip(r.words, r.words[1:], strict=False)]
    if r.step:
        terms.append(f"step:{r.step}")
    out: dict[int, float] = {}
    for t in terms:
        i = zlib.crc32(t.encode()) % dims
        out[i] = 1.0  # presence, not counts: a repeated word is no harder
    return out
