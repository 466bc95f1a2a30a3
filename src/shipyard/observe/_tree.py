"""The trace tree of one interaction, as the CLI and the demo print it:

[User Request] "Help me return my order"
+-- [LLM Call 1] (150ms) Model: small-model, Tokens: 800 in / 120 out
+-- [Tool Call] lookup_order(order_id="12345") (340ms) Status: success
Total: 885ms, Cost: $0.003
"""

from __future__ import annotations

import json
from collections import defaultdict

from shipyard.observe import _semconv as sc
from shipyard.store import InteractionRecord, SpanRecord


def _args(raw: object) -> str:
    try:
        args = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        return str(raw)
    if not isinstance(args, dict):
        return str(args)
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _money(usd: float) -> str:
    return f"${usd:.6f}".rstrip("0").rstrip(".") if usd and usd < 0.01 else f"${usd:.4f}"


def _ms(value: float) -> str:
    return f"{value:.1f}ms" if value < 10 else f"{value:.0f}ms"


def _describe(span: SpanRecord, n_llm: int, arguments: object = None) -> str:
    a = span.attributes
    ms = f"({_ms(span.duration_ms)})"
    op = a.get(sc.OPERATION) or a.get(sc.SHIPYARD_OPERATION)
    err = " ERROR" if span.status == "error" else ""
    if a.get(sc.ATTEMPT) is not None:
        code = f" HTTP {a[sc.HTTP_STATUS]}" if a.get(sc.HTTP_STATUS) else ""
        return f"[Attempt {a[sc.ATTEMPT]}] {ms} {a.get(sc.REQUEST_MODEL, '')} -> {a.get(sc.ATTEMPT_OUTCOME)}{code}"
    if op == sc.OP_CHAT:
        cached = a.get(sc.CACHE_READ_TOKENS) or 0
        cache = f" ({cached} cached)" if cached else ""
        model = a.get(sc.RESPONSE_MODEL) or a.get(sc.REQUEST_MODEL, "?")
        replay = " [replayed]" if a.get(sc.REPLAYED) else ""
        if span.status == "error":
            return f"[LLM Call {n_llm}] {ms} Model: {model}, ERROR {a.get(sc.ERROR_TYPE, '')}".rstrip()
        return (
            f"[LLM Call {n_llm}] {ms} Model: {model}, "
            f"Tokens: {a.get(sc.INPUT_TOKENS, 0)} in{cache} / {a.get(sc.OUTPUT_TOKENS, 0)} out{replay}"
        )
    if op == sc.OP_TOOL and sc.TOOL_STATUS in a:  # a framework's own tool span is shown by its name
        name = a.get(sc.TOOL_NAME, span.name)
        cached = " (cached)" if a.get(sc.TOOL_CACHED) else ""
        # the span has the arguments only with content capture on; the record has them always
        args = _args(a.get(sc.TOOL_ARGUMENTS, arguments))
        return f"[Tool Call] {name}({args}) {ms} Status: {a.get(sc.TOOL_STATUS, '?')}{cached}"
    if op == sc.OP_CACHE:
        sim = f", similarity {a[sc.CACHE_SIMILARITY]:.3f}" if sc.CACHE_SIMILARITY in a else ""
        saved = f", saved {_money(a.get(sc.CACHE_SAVED_USD, 0.0))}" if a.get(sc.CACHE_HIT) else ""
        hit = "hit" if a.get(sc.CACHE_HIT) else "miss"
        return f"[Cache] {a.get(sc.CACHE_KIND, '?')} {hit} {ms}{sim}{saved}"
    if op == sc.OP_GUARDRAIL:
        return f"[Guardrail] {span.name.split(' ', 1)[-1]} {ms} Verdict: {a.get(sc.GUARDRAIL_VERDICT, '?')}"
    return f"[{span.name}] {ms}{err}"


def trace_tree_lines(record: InteractionRecord, spans: list[SpanRecord] | None = None) -> list[str]:
    """The tree as plain-text lines (the caller colours them)."""
    spans = spans if spans is not None else record.spans
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    ids = {s.span_id for s in spans}
    root: SpanRecord | None = None
    for s in spans:
        if s.attributes.get(sc.OPERATION) == sc.OP_AGENT and (s.parent_id is None or s.parent_id not in ids):
            root = s
        else:
            children[s.parent_id].append(s)
    lines = [f'[User Request] "{_clip(record.input)}"']
    counter = {"llm": 0}
    recorded: dict[str, list[object]] = defaultdict(list)  # the record's tool arguments, in call order
    for t in record.tool_calls:
        recorded[t.name].append(t.arguments)

    def walk(parent_id: str | None, prefix: str) -> None:
        for s in sorted(children.get(parent_id, []), key=lambda x: x.start_ns):
            if s.attributes.get(sc.OPERATION) == sc.OP_CHAT and s.attributes.get(sc.ATTEMPT) is None:
                counter["llm"] += 1
            args = None
            if s.attributes.get(sc.OPERATION) == sc.OP_TOOL and sc.TOOL_STATUS in s.attributes:
                queue = recorded.get(str(s.attributes.get(sc.TOOL_NAME, "")))
                args = queue.pop(0) if queue else None
            lines.append(f"{prefix}+-- {_describe(s, counter['llm'], args)}")
            walk(s.span_id, prefix + "|   ")

    if root is not None:
        walk(root.span_id, "")
    else:  # spans not kept (sampled out): fall back to the record's own lists
        for i, c in enumerate(record.llm_calls, 1):
            lines.append(
                f"+-- [LLM Call {i}] ({_ms(c.duration_ms)}) Model: {c.request_model or c.model}, "
                f"Tokens: {c.input_tokens} in / {c.output_tokens} out"
            )
        for t in record.tool_calls:
            lines.append(
                f"+-- [Tool Call] {t.name}({_args(t.arguments)}) ({_ms(t.duration_ms)}) Status: {t.status}"
            )
    status = record.status if record.status == "completed" else record.status.upper()
    tail = f" Error: {record.error}" if record.error else ""
    lines.append(
        f"Total: {_ms(record.latency_ms)}, Cost: {_money(record.cost_usd)}, "
        f"Tokens: {record.input_tokens} in / {record.output_tokens} out, Status: {status}{tail}"
    )
    return lines
