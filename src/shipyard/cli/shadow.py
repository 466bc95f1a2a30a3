"""`shipyard shadow`: replay recorded production traffic against a candidate version."""

import math
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, err_console, handle_errors, load_project

VERDICT_STYLE = {"PASS": "green", "FAIL": "red", "INCOMPLETE": "yellow"}


@app.command()
@handle_errors
def shadow(
    agent: str = typer.Option(..., "--agent", "-a", help="The agent whose traffic is replayed."),
    candidate: str = typer.Option(..., "--candidate", help="The candidate version (label, hash or id)."),
    since: str = typer.Option(
        "24h", "--since", help="Replay interactions from this far back (90s, 15m, 24h, 7d)."
    ),
    sample: int = typer.Option(
        50, "--sample", "-n", help="Replay at most this many interactions (drawn at random)."
    ),
    filters: list[str] | None = typer.Option(
        None,
        "--filter",
        help="Only interactions with KEY=VALUE: status=failed, version=1.2.0, feedback=negative, "
        "contains=TEXT, user=ID, meta.NAME=VALUE (the request's metadata); repeatable (all must hold).",
    ),
    max_cost: float | None = typer.Option(
        None, "--max-cost", help="Spend cap of this run in USD (default: shadow.max_cost_usd)."
    ),
    concurrency: int = typer.Option(4, "--concurrency", help="Interactions replayed at once."),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed of the sampling, to draw the same interactions again."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    config: Path | None = ConfigOption,
) -> None:
    """Replay recorded production interactions against a candidate, and twice against the version that
    served them to measure the noise: only differences above that noise are reported, grouped by kind
    (status, trajectory, output, guardrails, cost, latency), each with the traces of both sides.

    Shadow traffic is recorded as traffic_source=shadow (never in production KPIs). Tools answer from
    what production recorded; a tool with side effects never runs (its arguments are checked and the
    call gets the recorded result, a shadow.tool_stubs stub, or an error). Exit code 0: PASS; 1: the
    candidate regressed (a worse status, a new guardrail verdict) or the run is INCOMPLETE (the
    spend cap stopped it, or nothing could be compared).

    Example: shipyard shadow --agent support --candidate 1.3.0 --since 24h --sample 50
    """
    from shipyard import _aio
    from shipyard.config import parse_window
    from shipyard.loop import ShadowRunner, parse_filters

    try:
        since_s = parse_window(since)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--since") from None
    if sample < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--sample")
    if concurrency < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--concurrency")
    if max_cost is not None and max_cost <= 0:
        raise typer.BadParameter("must be more than 0", param_hint="--max-cost")
    wanted = parse_filters(filters or [])
    cfg = load_project(config)
    if agent not in cfg.agents:
        raise typer.BadParameter(
            f"no agent {agent!r} in {cfg.path} (agents: {', '.join(sorted(cfg.agents)) or 'none'})",
            param_hint="--agent",
        )

    async def go() -> Any:
        from shipyard.runtime import Runtime
        from shipyard.store import BatchWriter, Store

        store = Store.from_config(cfg)
        writer = BatchWriter(store)
        rt = Runtime(cfg, store=store, writer=writer)
        show = not as_json and sys.stderr.isatty()
        try:
            rt.resolve_version(agent, candidate)  # an unknown candidate fails here, before any replay
            runner = ShadowRunner(rt, store, concurrency=concurrency, progress=_progress if show else None)
            records = runner.select(agent, since_s=since_s, sample=sample, filters=wanted, seed=seed)
            if not as_json:
                err_console.print(
                    f"replaying {len(records)} interaction(s) of {agent} x3 (baseline twice, candidate once)",
                    highlight=False,
                )
            return await runner.run(
                agent,
                candidate,
                records,
                config={"since": since, "sample": sample, "filters": wanted, "seed": seed},
                max_cost_usd=max_cost,
            )
        finally:
            await rt.aclose()
            writer.close()
            store.close()

    report = _aio.run(go())
    sample_size = sample_power(report.summary, cfg.shadow.alpha)
    if as_json:
        console.print_json(data={**report.to_dict(), "sample": sample_size})
    else:
        print_shadow_report(report, sample_size)
    if report.verdict != "PASS":
        raise typer.Exit(1)


def _tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the test the shadow analysis runs per kind (loop/_shadow_compare.py)."""
    if k <= 0:
        return 1.0
    if p <= 0:
        return 0.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def sample_power(summary: dict[str, Any], alpha: float) -> dict[str, Any]:
    """What a run's sample could show, from its counts (the analysis itself is unchanged):

    - `unseen_rate_bound`: with n interactions compared and none different, the share of
      interactions a change could affect and still go unseen, at confidence 1 - alpha (the exact
      one-sided bound 1 - alpha^(1/n); 0 compared: 1);
    - `blind_kinds`: kinds whose differences could not be reported even if every interaction the
      baseline agreed on differed (the binomial test against the baseline's noise cannot reach alpha
      with so few interactions, or the baseline disagreed with itself on every one).
    """
    n = int(summary["compared"])
    blind = []
    for k in summary["kinds"].values():
        m, noisy = int(k["compared"]), int(k["noisy"])
        if m == 0 or _tail(m - noisy, m, noisy / m) >= alpha:
            blind.append(str(k["kind"]))
    return {
        "compared": n,
        "confidence": round(1 - alpha, 6),
        "unseen_rate_bound": round(1 - alpha ** (1 / n), 4) if n else 1.0,
        "blind_kinds": blind,
    }


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else "\r"
    err_console.file.write(f"  replayed {done}/{total}{end}")
    err_console.file.flush()


def _short(value: Any, n: int = 60, *, names: bool = False) -> str:
    """A value for a table cell; `names`: a trajectory as its tool names (the JSON has the arguments)."""
    if names and isinstance(value, list):
        value = [str(v).split(" ", 1)[0] for v in value]
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    if isinstance(value, float):
        text = f"{value:.6g}"
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def print_shadow_report(report: Any, sample_size: dict[str, Any] | None = None) -> None:
    """The report as rich tables: the noise and differences per kind, then each difference, then
    what the sample size could show (`sample_power`)."""
    summary = report.summary
    console.print(
        f"[bold]shadow run {report.run_id}[/]: {report.agent} candidate {report.candidate} against "
        f"{', '.join(report.baselines) or '-'}; {summary['compared']} compared, "
        f"${report.cost_usd:.6f} spent ({report.status})",
        highlight=False,
    )
    kinds = Table(title="Noise and differences by kind", title_justify="left")
    for col in ("kind", "compared", "noisy (baseline vs itself)", "different", "p", "reported"):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    for k in summary["kinds"].values():
        kinds.add_row(
            k["kind"],
            str(k["compared"]),
            f"{k['noisy']} ({k['noise_rate']:.0%})",
            str(k["different"]),
            f"{k['p_value']:.3g}",
            "[bold red]yes[/]" if k["reported"] else "no",
        )
    console.print(kinds)
    doc = report.to_dict()
    if doc["differences"]:
        diffs = Table(title="Differences above the noise, by kind", title_justify="left")
        for col in ("kind", "interaction", "input", "baseline", "candidate"):
            diffs.add_column(col, overflow="fold")
        traces: dict[str, tuple[str, str, str]] = {}
        for kind, items in doc["differences"].items():
            for i, d in enumerate(items):
                diffs.add_row(
                    kind if i == 0 else "",
                    d["interaction_id"][:12],
                    escape(_short(d["input"], 40)),
                    escape(_short(d["baseline"], names=kind == "trajectory")),
                    escape(_short(d["candidate"], names=kind == "trajectory")),
                    end_section=i == len(items) - 1,
                )
                traces[d["interaction_id"][:12]] = (
                    d["production_trace"],
                    d["baseline_trace"],
                    d["candidate_trace"],
                )
        console.print(diffs)
        links = Table(
            title="Their traces (shipyard serve: /dashboard/traces/<trace id>)", title_justify="left"
        )
        for col in ("interaction", "production", "baseline", "candidate"):
            links.add_column(col, no_wrap=True)
        for ref, (prod, base, cand) in traces.items():
            links.add_row(ref, prod, base, cand)
        console.print(links)
    else:
        console.print("  no difference above the noise")
    if sample_size is not None and sample_size["compared"]:
        _print_sample(sample_size)
    style = VERDICT_STYLE.get(report.verdict, "white")
    console.print(f"[bold {style}]{report.verdict}[/]: " + escape("; ".join(report.reasons)), highlight=False)


def _print_sample(size: dict[str, Any]) -> None:
    n, bound, blind = size["compared"], size["unseen_rate_bound"], size["blind_kinds"]
    console.print(
        f"  sample: {n} interaction(s) compared; a change in up to {bound:.0%} of interactions could go "
        f"unseen ({size['confidence']:.0%} bound; replaying more, --sample and --since, narrows it)",
        highlight=False,
    )
    if blind:
        console.print(
            f"  [yellow]too few interactions to detect any {', '.join(blind)} difference above the noise[/] "
            "(even if every one differed); replay more (--sample, --since)",
            highlight=False,
        )
