"""What `shipyard prompts lint` lints: each bundle with the tools and variables it is linted against.
Apart from the command's module, so `shipyard --help` builds no dataclass for it."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from shipyard.cli._app import console, fail


@dataclass(slots=True)
class Target:
    """One bundle to lint, with what it is linted against."""

    title: str
    path: Path
    tools: Any  # ToolRegistry | None
    variables: dict[str, str]
    problem: Any = None  # LintIssue found before linting (e.g. the entry point does not import)


def agent_targets(cfg: Any, names: list[str]) -> list[Target]:
    """The bundles of the named agents (all when none), current version first, then `versions:`."""
    from shipyard.agents import adapter_spec, load_entry
    from shipyard.errors import ShipyardError
    from shipyard.prompts import LintIssue

    unknown = [n for n in names if n not in cfg.agents]
    if unknown:
        raise fail(
            f"no agent named {unknown[0]!r} in {cfg.path}",
            hint=f"agents: {', '.join(sorted(cfg.agents)) or 'none'}",
        )
    targets: list[Target] = []
    for name in names or sorted(cfg.agents):
        agent = cfg.agents[name]
        seen: set[tuple[str | None, str | None]] = set()
        variants = [("", agent.entry, agent.prompts)]
        variants += [(f" versions[{i}]", v.entry or agent.entry, v.prompts or agent.prompts)
                     for i, v in enumerate(agent.versions)]  # fmt: skip
        for suffix, entry, prompts in variants:
            if (entry, prompts) in seen:
                continue
            seen.add((entry, prompts))
            if not prompts:
                console.print(f"[dim]{escape(name)}{suffix}: no prompt bundle (prompts: is not set)[/]")
                continue
            target = Target(f"{name}{suffix}", cfg.resolve(prompts), None, dict(agent.prompt_variables))
            try:
                spec = load_entry(entry, root=cfg.root) if entry else adapter_spec(agent.adapter, name)
                target.tools = spec.tools
            except ShipyardError as e:
                target.problem = LintIssue("error", f"entry {entry}", None, str(e))
            targets.append(target)
    return targets
