"""`shipyard routing evaluate | fit`: what model routing would save, and the learned router's fit.

Both run eval suites on every tier of `routing:` (each call forced to that tier's model) through the
same runtime as `shipyard eval run`, without recording the runs or their interactions: they are a
what-if, never a gate's evidence."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, err_console, handle_errors, load_project
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from shipyard.config import ShipyardConfig
    from shipyard.evals import Suite

routing_app = typer.Typer(
    help="Model routing: what it saves against always using the reference tier, and fitting the learned "
    "router on your eval results.\n\n"
    "Example: shipyard routing evaluate --agent support --suite evals/support/broad.yaml",
    no_args_is_help=True,
)
app.add_typer(routing_app, name="routing")

AgentOption = typer.Option(..., "--agent", "-a", help="Agent name from shipyard.yaml.")
SuiteOption = typer.Option(..., "--suite", "-s", help="Eval suite file. Repeatable.")
JsonOption = typer.Option(False, "--json", help="Print the result as JSON.")
ConcurrencyOption = typer.Option(
    None, "--concurrency", "-j", min=1, help="Most repeats in flight (default: adapts to the provider)."
)


def _load(cfg: "ShipyardConfig", agent: str, suites: list[str]) -> "list[Suite]":
    from shipyard.cli.evals import _suite_path
    from shipyard.evals import load_suite

    if agent not in cfg.agents:
        raise ShipyardError(
            f"no agent named {agent!r} in {cfg.path or 'shipyard.yaml'} (agents: {', '.join(sorted(cfg.agents))})"
        )
    return [load_suite(_suite_path(cfg, s)) for s in suites]


def _tiers(cfg: "ShipyardConfig") -> dict[str, str]:
    tiers = cfg.routing.tier_models(cfg)
    if len(tiers) < 2:
        raise ShipyardError(
            "routing needs models of at least two tiers to compare",
            hint="give models a tier (models.<key>.tier: small | medium | large) or set routing.tiers",
        )
    return tiers


# evaluate -----------------------------------------------------------------------------------------


@routing_app.command("evaluate")
@handle_errors
def evaluate(
    agent: str = AgentOption,
    suite: list[str] = SuiteOption,
    concurrency: int | None = ConcurrencyOption,
    as_json: bool = JsonOption,
    json_out: Path | None = typer.Option(
        None,
        "--json-out",
        dir_okay=False,
        help="Also write the result as JSON to this file, whatever is printed: the table and the JSON "
        "from one run of the suites.",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Run the suites on every tier and on the router(s), and print pass rate and cost for each
    (the RouteLLM cost / quality table): what routing saves against always using the reference tier,
    and at what pass-rate loss. Works with routing off, so you can look before turning it on.

    Rows: each tier alone, the feature scorer (`rules`) and the learned router. The learned router
    is the fitted one (`shipyard routing fit`) when it was fitted on other suites; otherwise it is
    cross-fitted here: each fifth of the cases is routed by a router fitted on the other four fifths
    (on the tier runs above), so its row is measured on cases it did not learn from. Nothing is
    recorded. Exit 1 when the configured router loses more pass rate than
    routing.learned.max_pass_rate_loss against the reference tier, 2 on a usage or config error.

    Example: shipyard routing evaluate --agent support --suite evals/support/broad.yaml --json

    Example: shipyard routing evaluate --agent support --suite evals/support/broad.yaml --json-out routing.json
    (prints the table and writes the same result as JSON to routing.json, for CI to keep)
    """
    import asyncio

    from shipyard import _aio
    from shipyard.cli._routing_arms import Arm, cross_fitted, row, run_arm, tier_arms
    from shipyard.routing import LearnedRouter, RouterNotFitted

    cfg = load_project(config)
    suites = _load(cfg, agent, suite)
    if json_out is not None and not json_out.parent.is_dir():  # said before the suites run, not after
        raise ShipyardError(
            f"--json-out {json_out}: the folder {json_out.parent} does not exist",
            hint="give a file in a folder that exists",
        )
    r = cfg.routing
    tiers = _tiers(cfg)
    reference = r.reference if r.reference in tiers else list(tiers)[-1]
    target = r.learned.max_pass_rate_loss
    learned: LearnedRouter | None = None
    try:
        learned = LearnedRouter.load(cfg.resolve(r.learned.file.replace("{agent}", agent)), list(tiers))
    except RouterNotFitted:
        learned = None
    names = {s.name for s in suites}
    saved_usable = learned is not None and not set(learned.suites) & names
    arms_of: dict[str, Arm] = {}

    async def run_all() -> None:
        arms_of.update(await tier_arms(cfg, agent, suites, tiers, concurrency))
        rules = Arm("rules router", "router")
        runs: list[Coroutine[Any, Any, Any]] = [
            run_arm(cfg, agent, suites, rules, force=None, router="rules", concurrency=concurrency)
        ]
        if saved_usable:
            learned_arm = Arm("learned router (fitted)", "router")
            runs.append(
                run_arm(
                    cfg, agent, suites, learned_arm, force=None, router="learned", concurrency=concurrency
                )
            )
        else:
            learned_arm = Arm("", "router")
            runs.append(
                cross_fitted(cfg, agent, suites, arms_of, learned_arm, reference, target, concurrency)
            )
        await asyncio.gather(*runs)
        arms_of["router:rules"] = rules
        arms_of["router:learned"] = learned_arm

    _aio.run(run_all())
    ref = arms_of[reference]
    configured = arms_of[f"router:{r.router}"]
    rows = [row(name, arm, ref) for name, arm in arms_of.items()]
    loss = ref.pass_rate - configured.pass_rate
    verdict = {
        "router": r.router,
        "arm": configured.name,
        "saved": rows[list(arms_of).index(f"router:{r.router}")]["saved"],
        "pass_rate_loss_points": 100 * loss,
        "target_points": 100 * target,
        "within_target": loss <= target + 1e-9,
    }
    data = {
        "agent": agent,
        "suites": sorted(names),
        "reference": reference,
        "arms": rows,
        "verdict": verdict,
        "learned_fitted_on": learned.suites if learned is not None else None,
    }
    if json_out is not None:
        _write_json(json_out, data)
    if as_json:
        console.print_json(data=data)
    else:
        _print_table(agent, rows, reference)
        style = "green" if verdict["within_target"] else "red"
        console.print(
            f"[bold]{escape(configured.name)}[/]: [{style}]{100 * verdict['saved']:.0f}% cheaper than always "
            f"{reference}[/] at [{style}]{100 * loss:+.1f} points[/] pass-rate loss (target: at most "
            f"{100 * target:.1f}); routing is {'on' if r.enabled else 'off'}"
        )
        if r.router == "learned" and learned is None:
            console.print("[dim]no fitted router yet: `shipyard routing fit` writes the one routing uses[/]")
    if not verdict["within_target"]:
        raise typer.Exit(1)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """`--json-out`: the result as JSON in a file (written whole, or not at all)."""
    import json

    from shipyard._atomic import atomic_write

    text = json.dumps(data, indent=2) + "\n"
    try:
        atomic_write(path, text)
    except OSError as e:
        raise ShipyardError(
            f"--json-out {path}: cannot write it ({e.strerror or e})",
            hint="give a file in a folder that exists and you can write to",
        ) from None
    err_console.print(f"[dim]wrote {escape(str(path))}[/]")


def _print_table(agent: str, rows: list[dict[str, Any]], reference: str) -> None:
    cases = rows[0]["cases"] if rows else 0
    table = Table(title=f"Model routing for {escape(agent)} on {cases} cases, against always {reference}")
    table.add_column("arm", no_wrap=True)
    for col in ("pass rate (95% CI)", "loss (pts)", "$ / case", "saved"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("calls by tier", no_wrap=True)
    for r in rows:
        lo, hi = r["pass_rate_ci95"]
        table.add_row(
            escape(r["name"]),
            f"{100 * r['pass_rate']:.1f}% ({100 * lo:.0f}-{100 * hi:.0f})",
            f"{r['pass_rate_loss_points']:+.1f}",
            f"${r['cost_per_case_usd']:.5f}",
            f"{100 * r['saved']:.0f}%",
            " ".join(f"{t} {100 * s:.0f}%" for t, s in r["calls_by_tier"].items()),
        )
    console.print(table)


# fit ----------------------------------------------------------------------------------------------


@routing_app.command("fit")
@handle_errors
def fit_router(
    agent: str = AgentOption,
    suite: list[str] = SuiteOption,
    max_loss: float | None = typer.Option(
        None,
        "--max-loss",
        min=0.0,
        max=1.0,
        help="Most pass-rate loss against the reference tier, as a share (default: "
        "routing.learned.max_pass_rate_loss).",
    ),
    concurrency: int | None = ConcurrencyOption,
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
) -> None:
    """Fit the learned router on your eval results: run the suites on every tier, learn which tier was
    enough for which kind of request, and calibrate it (on cross-validated predictions) to the cheapest
    threshold that keeps the pass rate within the target of the reference tier. The router is written
    to routing.learned.file (default routing/<agent>.json) in the project, to commit with it.

    Example: shipyard routing fit --agent support --suite evals/support/broad.yaml --max-loss 0.01
    """
    from shipyard import _aio
    from shipyard.cli._routing_arms import outcomes, tier_arms
    from shipyard.routing import fit

    cfg = load_project(config)
    suites = _load(cfg, agent, suite)
    tiers = _tiers(cfg)
    r = cfg.routing
    reference = r.reference if r.reference in tiers else list(tiers)[-1]
    target = r.learned.max_pass_rate_loss if max_loss is None else max_loss
    arms = _aio.run(tier_arms(cfg, agent, suites, tiers, concurrency))
    cases = outcomes(arms, suites)
    router = fit(
        agent, cases, list(tiers), reference, target, [s.name for s in suites], r.escalation.min_confidence
    )
    path = cfg.resolve(r.learned.file.replace("{agent}", agent))
    router.save(path)
    c = router.calibration
    out = {
        "agent": agent,
        "file": str(path),
        "cases": c.cases,
        "threshold": c.threshold,
        "cross_validated": {
            "pass_rate": c.pass_rate,
            "reference_pass_rate": c.reference_pass_rate,
            "pass_rate_loss_points": 100 * (c.reference_pass_rate - c.pass_rate),
            "cost_per_case_usd": c.cost,
            "reference_cost_per_case_usd": c.reference_cost,
            "saved": c.saved,
            "share_by_tier": c.tier_share,
        },
        "target_points": 100 * target,
        "router_in_use": r.router == "learned" and r.enabled,
    }
    if as_json:
        console.print_json(data=out)
        return
    table = Table(title=f"Learned router for {escape(agent)} (cross-validated on {c.cases} cases)")
    table.add_column("")
    table.add_column("pass rate", justify="right")
    table.add_column("cost / case", justify="right")
    table.add_row(f"always {reference}", f"{100 * c.reference_pass_rate:.1f}%", f"${c.reference_cost:.5f}")
    table.add_row("learned router", f"{100 * c.pass_rate:.1f}%", f"${c.cost:.5f}")
    console.print(table)
    share = " · ".join(f"{t} {100 * s:.0f}%" for t, s in c.tier_share.items())
    console.print(
        f"threshold {c.threshold:.3f}: {100 * c.saved:.0f}% cheaper at "
        f"{100 * (c.reference_pass_rate - c.pass_rate):+.1f} points (target: at most {100 * target:.1f}); "
        f"requests by tier: {share}"
    )
    console.print(f"wrote [bold]{escape(str(path))}[/]")
    if r.router != "learned":
        console.print(
            "[dim]to use it: routing.router: learned (and routing.enabled: true) in shipyard.yaml[/]"
        )
