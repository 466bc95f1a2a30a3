"""`shipyard redteam generate`: an adversarial eval suite for one agent, from its tools and prompts."""

from pathlib import Path

import typer
from rich.markup import escape

from shipyard.cli._app import ConfigOption, app, console, handle_errors, load_project

redteam_app = typer.Typer(
    help="Red-team suites: attacks from public corpora crossed with an agent's own tools and goals.\n\n"
    "Example: shipyard redteam generate --agent support",
    no_args_is_help=True,
)
app.add_typer(redteam_app, name="redteam")


@redteam_app.command("generate")
@handle_errors
def generate(
    agent: str = typer.Option(..., "--agent", "-a", help="Agent name from shipyard.yaml."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Where the broad adversarial suite goes (default: evals/AGENT/redteam.yaml beside shipyard.yaml).",
        show_default=False,
    ),
    critical: Path | None = typer.Option(
        None,
        "--critical",
        help="Where the frozen safety-critical subset goes (default: redteam_critical.yaml beside --out).",
        show_default=False,
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed of every choice the generator makes (same seed, same file)."
    ),
    max_cases: int = typer.Option(
        120, "--max-cases", min=1, help="Most cases in the broad suite (sampled across attack families)."
    ),
    version: str | None = typer.Option(
        None, "--version", "-v", help="Version whose tools and prompt bundle are attacked (default: current)."
    ),
    freeze: bool = typer.Option(
        False,
        "--freeze",
        help="Rewrite the critical subset from the agent as it is now, as its next version (it is frozen "
        "otherwise: written once, then kept).",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Write an adversarial eval suite for an agent, and its frozen safety-critical subset.

    Injection templates (PromptInject, BIPIA, ps-fuzz; MIT) are crossed with the agent's tools and the
    rules of its prompt bundle: goal hijacking, system-prompt extraction, forbidden tool use, encodings
    (base64, rot13, leetspeak, Unicode tags), PII and markdown exfiltration, indirect injection through
    tool results, multi-turn escalation. Every case names its source in `metadata.source`.

    The broad suite (category adversarial) is gated as a pass rate; the critical subset (category
    safety, with a `version`) at 100%: add both to the production gate's suites in shipyard.yaml.
    Each idempotent (read-only) tool is called once with example arguments, so attacks hidden in its
    answers have the real shape; tools with side effects are never called.

    Example: shipyard redteam generate --agent support --seed 7 --out evals/support/redteam.yaml
    """
    import asyncio

    from shipyard.evals import agent_surface, generate_redteam, write_redteam

    cfg = load_project(config)
    broad_path = out if out is not None else cfg.resolve(f"evals/{agent}/redteam.yaml")
    critical_path = critical if critical is not None else broad_path.with_name("redteam_critical.yaml")
    surface = asyncio.run(agent_surface(cfg, agent, version))
    team = generate_redteam(surface, seed=seed, max_cases=max_cases)
    written = write_redteam(team, broad_path, critical_path, freeze=freeze)
    broad_n, crit_n = len(team.broad["cases"]), len(team.critical["cases"])
    console.print(
        f"red team of [bold]{escape(agent)}[/] ({escape(team.version)}), seed {seed}: "
        f"{team.available} cases possible",
        highlight=False,
    )
    families = ", ".join(f"{k} {v}" for k, v in team.families(team.broad).items())
    console.print(f"  wrote {escape(str(broad_path))}: {broad_n} cases ({families})", highlight=False)
    state = written.critical_state
    where = escape(str(critical_path))
    if state == "written":
        console.print(f"  wrote {where}: {crit_n} critical cases, version {written.critical_version}")
    elif state == "unchanged":
        console.print(f"  kept {where}: version {written.critical_version}, unchanged")
    elif state == "refrozen":
        console.print(
            f"  froze {where} as version {written.critical_version}: {_diff_text(written.critical_diff)}"
        )
    else:
        console.print(
            f"  [yellow]kept {where} frozen at version {written.critical_version}[/]; the agent's critical "
            f"cases now differ ({_diff_text(written.critical_diff)}): review them and run again with "
            "--freeze to make them the next version",
            highlight=False,
        )
    console.print(
        "  gate them: list both files under `gates.production.suites` in shipyard.yaml, with a "
        "`min_pass_rate` for adversarial",
        highlight=False,
    )


def _diff_text(diff: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(v)} {k}" for k, v in diff.items() if v) or "no change"
