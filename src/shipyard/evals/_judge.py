"""The LLM judge: a configured model grades a reply against a rubric, by majority of k samples.

The judge must answer with a JSON verdict `{"pass": true|false, "score": 0..1, "reason": "..."}`.
An unreadable verdict (or a failed judge call) decides nothing: when the readable verdicts cannot
form a majority of k, the scorer's result is undecided and the repeat is ERROR, never a pass.
Judge tokens and cost are recorded on the ScoreResult, apart from the agent's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.cost import call_cost
from shipyard.evals._scorers import ScoreFn, ScoreInput, scorer
from shipyard.evals._scorers_match import find_json, parse_json_output
from shipyard.evals._types import ScoreResult
from shipyard.llm import ChatResponse, LLMError, Message

if TYPE_CHECKING:
    from shipyard.evals._replay import RecordReplay
    from shipyard.llm import ModelPool

JUDGE_SYSTEM = (
    "You grade the reply of an AI agent against a rubric. Be strict and literal. "
    'Answer with one JSON object and nothing else: {"pass": true or false, "score": a number from 0 to 1, '
    '"reason": "one short sentence"}.'
)


@dataclass(slots=True)
class JudgeReply:
    """One judge call: its text, tokens and cost (0 when replayed)."""

    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    replayed: bool = False


class Judge:
    """Judge models of one project, shared by a run.

    Args:
        pool: the project's model clients (`shipyard.llm.ModelPool`)."""

    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool

    def handle(self, recorder: RecordReplay | None = None) -> JudgeHandle:
        """The judge as one case repeat sees it (its calls recorded under that repeat's scope)."""
        return JudgeHandle(self, recorder)


class JudgeHandle:
    """`ScoreInput.judge`: ask a configured model; calls are priced and maybe recorded."""

    __slots__ = ("_judge", "_recorder")

    def __init__(self, judge: Judge, recorder: RecordReplay | None) -> None:
        self._judge = judge
        self._recorder = recorder

    async def chat(
        self, model: str, messages: list[Message], *, temperature: float | None = None, kind: str = "judge"
    ) -> JudgeReply:
        """One call of model `model` (a key of `models` in shipyard.yaml). Raises LLMError.

        `kind` names the caller in a recording (`judge`, or `user_simulator` for the user simulator,
        which calls its model through the same handle)."""
        pool = self._judge.pool
        client = pool.client(model)

        async def call() -> ChatResponse:
            return await client.chat(messages, temperature=temperature)

        if self._recorder is not None:
            request = {"model": model, "messages": messages, "temperature": temperature}
            resp, replayed = await self._recorder.chat(kind, request, call)
        else:
            resp, replayed = await call(), False
        cost = 0.0 if replayed else call_cost(pool.prices(model), resp.usage)
        return JudgeReply(resp.text or "", resp.usage.input_tokens, resp.usage.output_tokens, cost, replayed)


def parse_verdict(text: str) -> tuple[bool, float, str] | None:
    """(pass, score, reason) from a judge's reply, or None when it is not a readable verdict."""
    ok, value = parse_json_output(text.strip())
    candidates = [value] if ok else find_json(text)
    for v in candidates:
        if not isinstance(v, dict) or not isinstance(v.get("pass"), bool):
            continue
        passed = v["pass"]
        score = v.get("score", 1.0 if passed else 0.0)
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            continue
        return passed, float(score), str(v.get("reason", ""))
    return None


def judge_messages(rubric: str, inp: ScoreInput, include_expected: bool) -> list[Message]:
    parts = [f"Rubric:\n{rubric}", f"User input:\n{inp.user_input}"]
    if include_expected and inp.case.expected is not None:
        exp = inp.case.expected
        parts.append(
            "Expected reply:\n" + (exp if isinstance(exp, str) else "\n".join(f"- {e}" for e in exp))
        )
    if inp.tool_calls:
        parts.append(
            "Tools the agent called:\n"
            + "\n".join(f"- {c['name']}({c['arguments']})" for c in inp.tool_calls)
        )
    parts.append(f"Agent reply:\n{inp.output}")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


@scorer("llm_judge")
def llm_judge(
    value: str,
    *,
    model: str | list[str] = "judge",
    k: int | None = None,
    temperature: float | None = None,
    include_expected: bool = True,
) -> ScoreFn:
    """A judge model grades the reply against a rubric; the majority of k verdicts decides.

    Args:
        value: the rubric: what a good reply does (and must not do).
        model: a key of `models` in shipyard.yaml, or a list of keys (a panel, asked in turn).
        k: how many verdicts to collect (default: 1, or the size of the panel). Ties fail.
        temperature: sampling temperature for the judge (default: the model's own).
        include_expected: show the case's expected output to the judge."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("llm_judge: value must be the rubric text")
    models = [model] if isinstance(model, str) else list(model)
    if not models or not all(isinstance(m, str) for m in models):
        raise ValueError(f"llm_judge: model must be a model key or a list of them, got {model!r}")
    samples = k if k is not None else len(models)
    if not isinstance(samples, int) or samples < 1 or samples > 25:
        raise ValueError(f"llm_judge: k must be between 1 and 25, got {k!r}")

    async def score(inp: ScoreInput) -> ScoreResult:
        if inp.judge is None:
            return ScoreResult("llm_judge", None, reason="no judge available", error="no judge available")
        messages = judge_messages(value, inp, include_expected)

        async def one(i: int) -> tuple[JudgeReply | None, str | None]:
            try:
                return await inp.judge.chat(models[i % len(models)], messages, temperature=temperature), None  # type: ignore[union-attr]
            except LLMError as e:
                return None, str(e)

        replies = await asyncio.gather(*(one(i) for i in range(samples)))
        votes: list[dict[str, Any]] = []
        tokens_in = tokens_out = 0
        cost = 0.0
        for i, (reply, err) in enumerate(replies):
            m = models[i % len(models)]
            if reply is None:
                votes.append({"model": m, "pass": None, "error": err})
                continue
            tokens_in += reply.input_tokens
            tokens_out += reply.output_tokens
            cost += reply.cost_usd
            verdict = parse_verdict(reply.text)
            if verdict is None:
                votes.append({"model": m, "pass": None, "error": f"unreadable verdict: {reply.text[:120]!r}"})
            else:
                votes.append({"model": m, "pass": verdict[0], "score": verdict[1], "reason": verdict[2]})
        yes = sum(v["pass"] is True for v in votes)
        no = sum(v["pass"] is False for v in votes)
        readable = [v for v in votes if v["pass"] is not None]
        passed: bool | None
        if yes * 2 > samples:
            passed = True
        elif no * 2 >= samples or (len(readable) == samples):
            passed = False  # a majority failed, or every verdict was read and it is a tie
        else:
            passed = None
        mean = sum(v["score"] for v in readable) / len(readable) if readable else 0.0
        result = ScoreResult(
            "llm_judge",
            passed,
            mean,
            judge_input_tokens=tokens_in,
            judge_output_tokens=tokens_out,
            judge_cost_usd=cost,
            details={"votes": votes, "k": samples},
        )
        if passed is None:
            errors = [v["error"] for v in votes if v["pass"] is None]
            result.error = f"judge gave no majority verdict ({yes} pass, {no} fail of {samples}): {errors[0]}"
            result.reason = "unreadable judge verdict"
        else:
            side = [v for v in readable if v["pass"] is passed]
            result.reason = f"judge {yes}/{samples} pass: {side[0]['reason'] if side else ''}".rstrip(": ")
        return result

    score.models = tuple(models)  # type: ignore[attr-defined]
    return score
