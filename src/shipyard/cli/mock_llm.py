"""`shipyard mock-llm`: the scripted model as an OpenAI-compatible HTTP server, with injectable faults."""

from pathlib import Path

import typer

from shipyard.cli._app import app, console, fail, handle_errors


@app.command("mock-llm")
@handle_errors
def mock_llm(
    rules: Path = typer.Option(..., "--rules", "-r", help="Rules file of the scripted model (YAML)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        8100, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port)."
    ),
    latency_ms: float = typer.Option(0.0, "--latency-ms", min=0, help="Simulated latency per request."),
    error_rate: float = typer.Option(
        0.0, "--error-rate", min=0, max=1, help="Share of chat requests answered with HTTP 500."
    ),
    rate_limit_rate: float = typer.Option(
        0.0,
        "--rate-limit-rate",
        min=0,
        max=1,
        help="Share of chat requests answered with HTTP 429 + Retry-After.",
    ),
    retry_after: float = typer.Option(
        1.0, "--retry-after", min=0, help="Retry-After seconds sent with a 429."
    ),
    max_concurrent: int | None = typer.Option(
        None,
        "--max-concurrent",
        min=1,
        help="A provider's capacity: a request arriving while this many are answered gets HTTP 429 + Retry-After.",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the fault dice (repeatable runs)."),
    model_name: str = typer.Option("mock", "--model-name", help="Model id listed by GET /v1/models."),
) -> None:
    """Serve the scripted model as an OpenAI-compatible API, with injected faults.

    POST /v1/chat/completions (also stream: true), GET /v1/models, GET /health.

    Point a model at it with `provider: openai` and `base_url: http://127.0.0.1:8100/v1`.

    The rules file (YAML): the first rule whose `when` conditions all hold answers; none: `default`.

      base: support.yaml               # optional: a rules file (relative) whose rules follow these
      prompt_cache: false              # report a repeated system prompt as cached input tokens
      default: "Sorry, I can't help."  # when no rule matches (text, or a mapping like a rule body)
      rules:
        - name: lookup-order           # optional, named in errors
          when:                        # every condition given must hold
            user: '(?i)order (?P<order_id>\\d{5})'  # regex searched in the last user message
            system: '(?i)returns'      # regex searched in the system prompt(s)
            not_user: '...'            # regex that must NOT match the last user message
            not_system: '...'          # regex that must NOT match the system prompt(s)
            last_tool: lookup_order    # the last message is this tool's result (regex, whole name)
            tool_result: '"ok": true'  # regex searched in the last tool result
            fresh: true                # no tool result since the last user message (false: after tools)
            called: \\[lookup_order]     # tools called since the last user message
            not_called: \\[refund]       # tools not called since the last user message
            tools_available: \\[refund]  # tools the request offers
          reply: "Order {order_id} is {result\\[status]}."
          tool_calls:                  # tool calls to answer with
            - name: lookup_order
              arguments: {order_id: "{order_id}"}
          latency_ms: 40               # this answer's latency
          finish_reason: stop          # default: tool_calls when there are any, else stop

    `reply` and string `arguments` are templates over the regexes' named groups, `result` (the last
    tool result, as JSON when it is JSON) and `user` (the last user message); a missing key renders
    as empty text.

    Example: shipyard mock-llm --rules rules/assistant.yaml --port 8100 --error-rate 0.05
    """
    from shipyard.llm import bind_mock_llm as bind
    from shipyard.llm import make_app
    from shipyard.llm import serve_mock_llm as serve

    if error_rate + rate_limit_rate > 1:
        raise fail(
            "--error-rate plus --rate-limit-rate must be at most 1",
            hint=f"got {error_rate} + {rate_limit_rate}",
        )
    mock = make_app(
        rules,
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit_rate=rate_limit_rate,
        retry_after_s=retry_after,
        max_concurrent=max_concurrent,
        seed=seed,
        model_name=model_name,
    )
    try:
        sock = bind(host, port)
    except OSError as e:
        raise fail(
            f"cannot listen on {host}:{port}: {e.strerror}",
            hint="pick another --port, or stop what is using it",
        ) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"mock LLM serving {len(mock.model.rules.rules)} rule(s) from {rules} "
        f"at [bold]http://{shown}:{bound}/v1[/]  (Ctrl+C stops)",
        highlight=False,
    )
    if error_rate or rate_limit_rate:
        console.print(f"  faults: {error_rate:.1%} HTTP 500, {rate_limit_rate:.1%} HTTP 429", highlight=False)
    if max_concurrent:
        console.print(f"  capacity: {max_concurrent} requests at once, HTTP 429 beyond", highlight=False)
    serve(mock, sock)
