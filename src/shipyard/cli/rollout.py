"""`shipyard deploy`, `shipyard rollout ...` and `shipyard experiment ...`.

Exit codes: 0 done, 1 a gate or analysis failed (a refused deploy, a canary rolled back),
2 bad input (unknown version, overlapping rollout, a weight outside 0-100, a lost race).
"""

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, handle_errors, load_project

rollout_app = typer.Typer(
    help="Canary and blue-green rollouts: start, watch, promote, pause, resume, abort, roll back.\n\n"
    "Example: shipyard rollout canary support 1.2.0 --steps 5,25,50,100 --min-interactions 100",
    no_args_is_help=True,
)
experiment_app = typer.Typer(
    help="A/B experiments between two versions: start, status, report, stop.\n\n"
    "Example: shipyard experiment start support --a 1.0.0 --b 1.2.0 --split 50",
    no_args_is_help=True,
)
app.add_typer(rollout_app, name="rollout")
app.add_typer(experiment_app, name="experiment")

ActorOption = typer.Option(None, "--by", help="Who acts (recorded with the decision; default: your login).")
OverrideGateOption = typer.Option(
    None,
    "--override-gate",
    metavar="REASON",
    help="Start it although a version has not passed its production gate; the reason is recorded with "
    "your name and shown by `rollout status` and the dashboard. Never covers a promotion.",
)
VERDICT_STYLE = {
    "PASS": "green",
    "FAIL": "red",
    "MARGINAL": "yellow",
    "SRM": "yellow",
    "GATE": "yellow",  # held before a promotion its production gate does not allow yet
    "INSUFFICIENT_DATA": "dim",
    "OVERRIDE": "yellow",  # an admin let an ungated version serve (`rollout override-gate`)
}
ACTION_STYLE = {"rollback": "red", "abort": "red", "pause": "yellow", "promote": "green", "step_up": "green"}


def _actor(by: str | None) -> str:
    if by:
        return by
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "cli"


@contextlib.contextmanager
def _controller(config: Path | None, agent: str | None, *, history: bool = False) -> Iterator[Any]:
    """A RolloutController over the project's store and runtime (closed afterwards), once `agent`
    (None: no one agent) is known to be one of the project's.

    Args:
        history: reading only: an agent no longer in shipyard.yaml is known too while the store
            keeps its deployment, decisions or experiments (what `rollout status` lists).
    """
    import asyncio

    from shipyard.rollout import REDIS_ENV, RolloutController
    from shipyard.runtime import Runtime
    from shipyard.store import Store

    cfg = load_project(config)
    store = Store.from_config(cfg)
    try:
        if agent is not None:
            _check_agent(cfg, store, agent, history=history)
        rt = Runtime(cfg, store=store)
        try:
            yield RolloutController.for_runtime(
                rt, store, redis_url=os.environ.get(REDIS_ENV), eval_gate=_eval_gate(cfg, store)
            )
        finally:
            asyncio.run(rt.aclose())
    finally:
        store.close()


def _check_agent(cfg: Any, store: Any, agent: str, *, history: bool) -> None:
    """Refuse (exit 2) an agent the project does not have, as `rollout canary` always did: before
    anything reads or writes a deployment under a mistyped name."""
    if agent in cfg.agents:
        return
    if history and (
        store.get_deployment(agent) is not None
        or store.rollout_decisions(agent, limit=1)
        or store.list_experiments(agent)
    ):
        return
    from shipyard.errors import NotFoundError

    known = ", ".join(sorted(cfg.agents)) or "none"
    raise NotFoundError(
        f"no agent named {agent!r} in {cfg.path or 'shipyard.yaml'} (agents: {known})",
        hint="add it under `agents:` or check the spelling",
    )


def _eval_gate(cfg: Any, store: Any) -> Any:
    from shipyard.rollout import eval_gate

    return eval_gate(cfg, store)


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "-")


def _styled(text: Any, style: str) -> str:
    """`text` (anything recorded: a verdict, an action, a version, a name) as markup in `style`
    ("": plain); escaped, so brackets in it print as they are."""
    plain = escape(str(text))
    return f"[{style}]{plain}[/]" if style else plain


def _deployment_line(dep: Any) -> str:
    if dep.strategy == "none" or not dep.candidate_version:
        return f"stable {_styled(dep.stable_version or '(current configured version)', 'bold')}"
    steps = ""
    if dep.strategy == "canary":
        marks = [_styled(f"{w}%", "bold" if i == dep.step else "") for i, w in enumerate(dep.steps)]
        steps = f"  steps {' → '.join(marks)}"
    return (
        f"{escape(dep.strategy.replace('_', '-'))} {_styled(dep.state, 'bold')}: {dep.weight}% to "
        f"{escape(str(dep.candidate_version))}, {100 - dep.weight}% to {escape(str(dep.stable_version))}{steps}"
    )


def print_deployment(dep: Any) -> None:
    console.print(
        f"{_styled(dep.agent, 'bold')}: {_deployment_line(dep)}  [dim](revision {dep.revision})[/]",
        highlight=False,
    )
    if dep.gate_override and dep.candidate_version:
        from shipyard.rollout import override_lines

        first, *said = override_lines(dep.config.get("gate"))
        console.print(f"  [bold yellow]{escape(first)}[/]", highlight=False)
        for line in said:
            console.print(f"    {escape(line)}", highlight=False)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return escape(f"[{v[0]:.3g}, {v[1]:.3g}]")
    return escape(str(v))


def print_analysis(analysis: dict[str, Any]) -> None:
    """The metrics table of one canary analysis."""
    metrics = analysis.get("metrics") or []
    if not metrics:
        return
    table = Table(show_edge=False, pad_edge=False, box=None)
    for col in ("metric", "baseline", "canary", "effect", "95% CI", "p", "result"):
        table.add_column(col, no_wrap=True)
    for m in metrics:
        cls = str(m.get("classification", ""))
        style = {"PASS": "green", "HIGH": "red", "LOW": "red", "NODATA": "dim"}.get(cls, "")
        crit = " [bold red]critical[/]" if m.get("critical") and cls in ("HIGH", "LOW") else ""
        table.add_row(
            escape(str(m.get("name"))),
            _fmt(m.get("baseline")),
            _fmt(m.get("canary")),
            _fmt(m.get("effect")),
            _fmt(m.get("ci")),
            _fmt(m.get("p_value")),
            _styled(cls, style) + crit,
        )
    console.print(table)


def print_decision(d: dict[str, Any], *, detail: bool = True) -> None:
    """One decision of the log: when, step, action, verdict, the numbers' summary, who, and its
    first reasons. Whatever was recorded prints as written (any verdict: `OVERRIDE`, an experiment's
    `no detectable difference`; any reason or actor), never as markup."""
    action, verdict = d["action"], d.get("verdict")
    numbers = d.get("numbers") or {}
    analysis = numbers.get("analysis") or {}
    v = f" {_styled(verdict, VERDICT_STYLE.get(str(verdict), ''))}" if verdict else ""
    score = f" score {analysis['score']:.0f}" if isinstance(analysis.get("score"), (int, float)) else ""
    arms = ""
    if isinstance(numbers.get("baseline"), dict) and isinstance(numbers.get("canary"), dict):
        arms = f" n={numbers['baseline'].get('interactions')}/{numbers['canary'].get('interactions')}"
    when = _when(d.get("created_at"))
    console.print(
        f"  {when}  step {d.get('step', 0)}  {_styled(action, ACTION_STYLE.get(str(action), ''))}{v}{score}"
        f"{escape(arms)}  [dim]by {escape(str(d.get('actor')))}[/]",
        highlight=False,
    )
    for r in (d.get("reasons") or [])[:6]:
        console.print(f"      {escape(str(r))}", highlight=False)
    if detail and analysis:
        print_analysis(analysis)


# deploy --------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def deploy(
    agent: str = typer.Argument(..., help="The agent."),
    version: str = typer.Argument(..., help="A version label, hash or id (see `shipyard versions`)."),
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Make VERSION the agent's stable version (needs a passing production gate).

    Refused unless its latest production gate run PASSed
    (or was MARGINAL and approved); the message names the run and what failed.

    Example: shipyard deploy support 1.2.0
    """
    with _controller(config, agent) as ctl:
        dep = ctl.deploy(agent, version, actor=_actor(by))
        print_deployment(dep)


@rollout_app.command("override-gate")
@handle_errors
def override_gate_cmd(
    agent: str = typer.Argument(..., help="The agent."),
    version: str | None = typer.Argument(
        None, help="The configured version to serve (label, hash or id; default: the current one)."
    ),
    reason: str = typer.Option(..., "--reason", help="Why it may serve ungated (recorded with your name)."),
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Let a version without a passing production gate take production traffic where no deployment
    chooses a version (a server that requires the gate otherwise answers 503).

    Recorded in the agent's decision log, written to the audit log (`gate_overridden`) and shown on
    the dashboard; a production gate run of the version made afterwards decides again.

    Example: shipyard rollout override-gate support 1.3.0 --reason "incident 42 hotfix; gate suite broken, see #123"
    """
    from shipyard.rollout import override_lines, override_serving

    with _controller(config, agent) as ctl:
        done = override_serving(ctl, agent, version, reason, actor=_actor(by))
        effect = _override_effect(ctl.get(agent), done["candidate"], ctl.resolve(agent, None))
    console.print(effect, highlight=False, markup=False)
    for line in override_lines(done["numbers"]["gate"]):
        console.print(f"  {escape(line)}", highlight=False)


def _override_effect(dep: Any, version: str, current: str) -> str:
    """What an override of `version`'s gate changes now, said truly. It covers production traffic
    where no deployment chooses a version (`assign`): a server then serves its current configured
    version, and a replica that cannot run the deployment's versions falls back to its own."""
    chosen = list(dict.fromkeys(v for v, _ in dep.arms())) or (
        [dep.stable_version] if dep.stable_version else []
    )
    if not chosen:
        if version != current:
            return (
                f"{version} may take production traffic without a deployment once it is {dep.agent!r}'s "
                f"current configured version (now {current})"
            )
        return f"{version} may now take production traffic: no deployment of {dep.agent!r} chooses a version"
    serving = " and ".join(chosen)
    if version in chosen:
        return (
            f"{version} takes production traffic as the deployment of {dep.agent!r} chooses ({serving}); the "
            "override also lets it serve where no deployment chooses a version"
        )
    return (
        f"{version} takes no production traffic while the deployment of {dep.agent!r} chooses the versions "
        f"served ({serving}); the override lets it serve where no deployment chooses a version, or on a "
        "replica that cannot run those and has it as its current configured version"
    )


# rollout ---------------------------------------------------------------------------------------------
@rollout_app.command("canary")
@handle_errors
def canary(
    agent: str = typer.Argument(..., help="The agent."),
    version: str = typer.Argument(..., help="The candidate version (label, hash or id)."),
    steps: str = typer.Option("5,25,50,100", "--steps", help="The candidate's percent at each step."),
    min_interactions: int = typer.Option(50, "--min-interactions", help="Interactions per arm a step needs."),
    min_duration: str = typer.Option(
        "60s", "--min-duration", help="How long each step lasts at least (0: no minimum, interactions only)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record what would be decided; change nothing."),
    gate_suite: list[str] | None = typer.Option(
        None, "--gate-suite", help="An eval suite the candidate must pass before each step up; repeatable."
    ),
    override_gate: str | None = OverrideGateOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Start a canary: VERSION gets the first step's share of traffic; `tick` (or the server, every few
    seconds) analyses it against the stable version and steps up, holds, pauses or rolls back.

    VERSION needs a passing (or approved MARGINAL) production gate, checked again before each step
    up and before the promotion: a gate run since the start that does not pass rolls it back.
    `--override-gate REASON` starts it without one (recorded); it is then promoted only once its
    gate passes.

    Example: shipyard rollout canary support 1.2.0 --steps 5,25,50,100 --min-duration 5m
    """
    from shipyard.config import parse_window

    try:
        seconds = parse_window(min_duration, allow_zero=True)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--min-duration") from None
    with _controller(config, agent) as ctl:
        dep = ctl.start_canary(
            agent,
            version,
            steps=steps,
            min_interactions=min_interactions,
            min_duration_s=seconds,
            dry_run=dry_run,
            gate_suites=gate_suite or [],
            actor=_actor(by),
            override_gate=override_gate,
        )
        print_deployment(dep)


@rollout_app.command("blue-green")
@handle_errors
def blue_green(
    agent: str = typer.Argument(..., help="The agent."),
    version: str = typer.Argument(..., help="The green version (label, hash or id)."),
    promote_after: str | None = typer.Option(
        None, "--promote-after", help="After the switch, promote green once healthy this long (e.g. 10m)."
    ),
    override_gate: str | None = OverrideGateOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Deploy VERSION as green beside blue with no traffic (preview it with the X-Shipyard-Version
    header), then `shipyard rollout switch` sends all traffic to it at once. VERSION needs a passing
    (or approved MARGINAL) production gate, or `--override-gate REASON` (recorded; covers the switch,
    never the promotion).

    Example: shipyard rollout blue-green support 1.2.0 --promote-after 10m
    """
    from shipyard.config import parse_window

    seconds = None
    if promote_after:
        try:
            seconds = parse_window(promote_after)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--promote-after") from None
    with _controller(config, agent) as ctl:
        dep = ctl.start_blue_green(
            agent, version, promote_after_s=seconds, actor=_actor(by), override_gate=override_gate
        )
        print_deployment(dep)


@rollout_app.command("switch")
@handle_errors
def switch(
    agent: str = typer.Argument(..., help="The agent."),
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Send all traffic to green at once (green needs a passing production gate, or the override its
    blue-green started with, unless a gate run since then refused it).

    Example: shipyard rollout switch support
    """
    with _controller(config, agent) as ctl:
        print_deployment(ctl.switch(agent, actor=_actor(by)))


@rollout_app.command("status")
@handle_errors
def status(
    agent: str | None = typer.Argument(None, help="The agent (default: every deployed agent)."),
    last: int = typer.Option(5, "--last", help="How many recent decisions to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    config: Path | None = ConfigOption,
) -> None:
    """Show the deployment: state, weights, current step, and the last decisions with their numbers.

    Example: shipyard rollout status support --last 10
    """
    with _controller(config, agent, history=True) as ctl:
        agents = [agent] if agent else [row["agent"] for row in ctl.store.list_deployments()]
        if as_json:
            out = {
                a: {"deployment": ctl.get(a).to_dict(), "decisions": ctl.decisions(a, last)} for a in agents
            }
            typer.echo(json.dumps(out, default=str, indent=2))
            return
        if not agents:
            console.print("[dim]nothing deployed yet: `shipyard deploy AGENT VERSION`[/]")
        for a in agents:
            print_deployment(ctl.get(a))
            decisions = ctl.decisions(a, last)
            if decisions:
                console.print("[bold]decisions[/] (newest first):")
            for i, d in enumerate(decisions):
                print_decision(d, detail=i == 0)


def _manual(action: str, agent: str, by: str | None, reason: str, config: Path | None) -> None:
    with _controller(config, agent) as ctl:
        dep = getattr(ctl, action)(agent, actor=_actor(by), reason=reason)
        print_deployment(dep)


ReasonOption = typer.Option("", "--reason", help="Why (recorded with the decision).")


@rollout_app.command("promote")
@handle_errors
def promote(
    agent: str = typer.Argument(...),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Make the candidate the stable version now. A rolled-back or aborted candidate is refused, and so
    is one without a passing (or approved) production gate, whatever override its rollout started with.

    Example: shipyard rollout promote support --reason "all steps green"
    """
    _manual("promote", agent, by, reason, config)


@rollout_app.command("pause")
@handle_errors
def pause(
    agent: str = typer.Argument(...),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Stop the canary's automatic steps (its traffic share stays).

    Example: shipyard rollout pause support --reason "investigating latency"
    """
    _manual("pause", agent, by, reason, config)


@rollout_app.command("resume")
@handle_errors
def resume(
    agent: str = typer.Argument(...),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Continue a paused canary; its current step starts a fresh analysis window.

    Example: shipyard rollout resume support --reason "split fixed"
    """
    _manual("resume", agent, by, reason, config)


@rollout_app.command("abort")
@handle_errors
def abort(
    agent: str = typer.Argument(...),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Stop the rollout: all traffic back to the stable version.

    Example: shipyard rollout abort support --reason "wrong build"
    """
    _manual("abort", agent, by, reason, config)


@rollout_app.command("rollback")
@handle_errors
def rollback(
    agent: str = typer.Argument(...),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Switch back at once: to the stable (blue) version during a rollout, or to the previous stable
    version after a promotion.

    Example: shipyard rollout rollback support --reason "refund complaints"
    """
    _manual("rollback", agent, by, reason, config)


@rollout_app.command("tick")
@handle_errors
def tick(
    agent: str = typer.Argument(..., help="The agent."),
    config: Path | None = ConfigOption,
) -> None:
    """Analyse the running rollout once and act (what the server does every few seconds). Exit code 1
    when the candidate was rolled back.

    Example: shipyard rollout tick support
    """
    with _controller(config, agent) as ctl:
        decision = ctl.tick(agent)
        if decision is None:
            console.print(f"nothing to decide: {_deployment_line(ctl.get(agent))}", highlight=False)
            return
        print_decision({**decision.to_dict(), "created_at": None})
        print_deployment(ctl.get(agent))
        if decision.action == "rollback":
            raise typer.Exit(1)


# experiments ----------------------------------------------------------------------------------------
@experiment_app.command("start")
@handle_errors
def experiment_start(
    agent: str = typer.Argument(..., help="The agent."),
    a: str = typer.Option(..., "--a", help="Arm A's version (label, hash or id)."),
    b: str = typer.Option(..., "--b", help="Arm B's version."),
    split: int = typer.Option(50, "--split", help="Percent of traffic to arm B (1-99)."),
    metric: list[str] | None = typer.Option(None, "--metric", help="A metric to report on; repeatable."),
    override_gate: str | None = OverrideGateOption,
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Split traffic between two versions, sticky per session, and measure the difference. Both
    versions need a passing (or approved MARGINAL) production gate, or `--override-gate REASON`.

    Example: shipyard experiment start support --a 1.0.0 --b 1.2.0 --split 50 --metric completion
    """
    from shipyard.rollout import start_experiment

    with _controller(config, agent) as ctl:
        exp = start_experiment(
            ctl, agent, a, b, split=split, metrics=metric, actor=_actor(by), override_gate=override_gate
        )
        console.print(
            f"experiment {_styled(exp['id'], 'bold')} on {escape(agent)}: A {escape(exp['arms']['a'])} "
            f"({100 - split}%), B {escape(exp['arms']['b'])} ({split}%)",
            highlight=False,
        )
        print_deployment(ctl.get(agent))


@experiment_app.command("status")
@handle_errors
def experiment_status(
    agent: str = typer.Argument(..., help="The agent."),
    config: Path | None = ConfigOption,
) -> None:
    """List the agent's experiments, running first, with their interaction counts.

    Example: shipyard experiment status support
    """
    from shipyard.rollout import arm_counts

    with _controller(config, agent, history=True) as ctl:
        exps = ctl.store.list_experiments(agent)
        if not exps:
            console.print(
                f"[dim]no experiments of {escape(agent)}: "
                f"`shipyard experiment start {escape(agent)} --a V1 --b V2`[/]"
            )
        for e in sorted(exps, key=lambda e: e["state"] != "running"):
            counts = arm_counts(ctl.store, e)
            console.print(
                f"{_styled(e['id'], 'bold')} {escape(str(e['state']))}: A {escape(e['arms']['a'])} "
                f"n={counts['a']}, B {escape(e['arms']['b'])} n={counts['b']} "
                f"(split {100 - e['split']}/{e['split']}), since {_when(e['started_at'])}",
                highlight=False,
            )


@experiment_app.command("report")
@handle_errors
def experiment_report(
    agent: str = typer.Argument(..., help="The agent."),
    experiment: str | None = typer.Option(None, "--id", help="The experiment (default: the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    config: Path | None = ConfigOption,
) -> None:
    """The experiment's report: effect sizes, confidence intervals, fixed-horizon and sequential
    tests, the sample size needed, the SRM check and the verdict (safe to look at any time).

    Example: shipyard experiment report support --json
    """
    from shipyard.rollout import experiment_report as report
    from shipyard.rollout import find_experiment

    with _controller(config, agent, history=True) as ctl:
        exp = find_experiment(ctl.store, agent, experiment)
        rep = report(ctl.store, exp)
        if as_json:
            typer.echo(json.dumps(rep.to_dict(), default=str, indent=2))
        else:
            console.print(rep.render_markdown(), highlight=False, markup=False)


@experiment_app.command("stop")
@handle_errors
def experiment_stop(
    agent: str = typer.Argument(..., help="The agent."),
    by: str | None = ActorOption,
    config: Path | None = ConfigOption,
) -> None:
    """Stop the running experiment (all traffic back to the stable version) and keep its final report.

    Example: shipyard experiment stop support
    """
    from shipyard.rollout import stop_experiment

    with _controller(config, agent) as ctl:
        exp = stop_experiment(ctl, agent, actor=_actor(by))
        verdict = (exp.get("report") or {}).get("verdict", "-")
        console.print(f"experiment {_styled(exp['id'], 'bold')} stopped; verdict: {escape(str(verdict))}")
