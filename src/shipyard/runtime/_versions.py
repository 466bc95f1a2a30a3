"""Version identity: an agent version is its code + prompt bundle + model settings + tool
definitions + the agent's own settings.

Its id is the label from version.txt plus a short content hash of all five
(`support@1.3.0+a1b2c3d`), so two different things never share a version id. The code is the entry
module and every module of the agent's own folder it imports (`shipyard.agents.code_identity`)."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from shipyard.agents import AgentSpec, adapter_spec, code_identity, load_entry, load_tools
from shipyard.config import AdapterConfig, AgentConfig, AgentModelSettings, ShipyardConfig
from shipyard.errors import NotFoundError
from shipyard.prompts import PromptBundle, load_bundle

DEFAULT_LABEL = "0.0.0"


@dataclass(slots=True)
class AgentVersion:
    """One deployable version of an agent, with what it is made of."""

    agent: str
    id: str
    label: str
    hash: str
    entry: str | None
    adapter: AdapterConfig | None
    prompts_path: Path | None
    model: AgentModelSettings
    prompt_variables: dict[str, str]
    timeout_s: float
    spec: AgentSpec
    bundle: PromptBundle | None
    components: dict[str, str] = field(default_factory=dict)

    def matches(self, ref: str) -> bool:
        """True when `ref` names this version: full id, label, `label+hash`, or (short) hash."""
        return ref in (self.id, self.label, self.hash, f"{self.label}+{self.hash}") or (
            len(ref) >= 4 and self.hash.startswith(ref)
        )


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# module name -> (the module object, its code hash): the hash of the code this process loaded.
_CODE: dict[tuple[str, Path], tuple[ModuleType, str]] = {}


def _code_hash(spec: AgentSpec, entry: str | None, root: Path) -> str:
    """The agent's code: the entry module and its import closure inside the agent's own folder
    (see `shipyard.agents.code_identity`); the function's own source when it has no file.

    Read once per loaded module: a file edited after the process imported it is not the code that
    runs, so it does not change the id until the module is loaded again (a restart)."""
    assert entry is not None
    module_name = entry.partition(":")[0]
    module = importlib.import_module(module_name)
    known = _CODE.get((module_name, root))
    if known is not None and known[0] is module:
        return known[1]
    file = getattr(module, "__file__", None)
    if file and Path(file).suffix == ".py":
        digest = code_identity(Path(file), module_name, root).digest
    else:
        try:
            digest = _sha(inspect.getsource(spec.fn))
        except (OSError, TypeError):
            digest = _sha(entry)
    _CODE[(module_name, root)] = (module, digest)
    return digest


def _model_fingerprint(cfg: ShipyardConfig, settings: AgentModelSettings) -> str:
    """What the models change about the answers: provider, model id and what the provider says of
    its settings (`ModelProvider.identity`: an endpoint, a rules file's content). Timeouts, retries,
    breaker and prices are operations; changing them is not a new version."""
    models: dict[str, Any] = {}
    for key in [settings.name, *settings.fallbacks]:
        m = cfg.models[key]
        models[key] = {"provider": m.provider, "model": m.model, **m.spec.identity(m.settings, cfg)}
    return json.dumps({"settings": settings.model_dump(mode="json"), "models": models}, sort_keys=True)


# Agent settings hashed as the agent's configuration: everything but what has its own component
# (code, prompts, model) and what does not change behaviour. New settings are covered by default.
_NOT_CONFIG = {"entry", "prompts", "model", "versions", "description"}


def _config_fingerprint(agent_cfg: AgentConfig) -> str:
    found = agent_cfg.model_dump(mode="json", exclude=_NOT_CONFIG)
    g = agent_cfg.guardrails
    if not (g.input or g.tool_call or g.tool_result or g.output) and not g.model_fields_set & {
        "blocked_reply",
        "escalated_reply",
    }:
        del found["guardrails"]  # added after version ids existed: while unused, ids stay as they were
    return json.dumps(found, sort_keys=True)


def _tools_fingerprint(spec: AgentSpec) -> str:
    return json.dumps(spec.tools.definitions(), sort_keys=True)


def _routing_fingerprint(cfg: ShipyardConfig, agent: str) -> str | None:
    """`routing.routing_fingerprint`, which is None while routing is off: the routing package is
    imported only when it is on."""
    if not cfg.routing.enabled:
        return None
    from shipyard.routing import routing_fingerprint

    return routing_fingerprint(cfg, agent)


def build_version(
    cfg: ShipyardConfig, name: str, agent_cfg: AgentConfig, override: Any = None
) -> AgentVersion:
    """Resolve one version of an agent from its config (and an entry of its `versions:` list)."""
    entry = (override.entry if override and override.entry else None) or agent_cfg.entry
    prompts = (override.prompts if override and override.prompts else None) or agent_cfg.prompts
    model = (override.model if override and override.model else None) or agent_cfg.model
    adapter_tools = agent_cfg.adapter.tools if agent_cfg.adapter is not None and entry is None else None
    if agent_cfg.adapter is not None and entry is None:
        spec = adapter_spec(agent_cfg.adapter, name)
        if adapter_tools is not None:  # the model-as-agent's tools, from the project's code
            spec.tools = load_tools(adapter_tools, root=cfg.root)
    else:
        assert entry is not None
        spec = load_entry(entry, root=cfg.root)
    bundle = load_bundle(cfg.resolve(prompts)) if prompts else None
    components = {
        "code": (
            _code_hash(spec, entry, cfg.root)
            if entry
            else _sha(
                json.dumps(agent_cfg.adapter.model_dump(mode="json") if agent_cfg.adapter else {})
                + (_code_hash(spec, adapter_tools, cfg.root) if adapter_tools else "")
            )
        )[:12],
        "prompts": bundle.hash[:12] if bundle else "",
        "model": _sha(_model_fingerprint(cfg, model))[:12],
        "tools": _sha(_tools_fingerprint(spec))[:12],
        "config": _sha(_config_fingerprint(agent_cfg))[:12],
    }
    routed = _routing_fingerprint(cfg, name)
    if routed is not None:  # only when routed: the ids of agents without routing stay as they were
        components["routing"] = _sha(routed)[:12]
    digest = _sha("|".join(f"{k}={v}" for k, v in sorted(components.items())))[:7]
    label = bundle.label if bundle else DEFAULT_LABEL
    return AgentVersion(
        agent=name,
        id=f"{name}@{label}+{digest}",
        label=label,
        hash=digest,
        entry=entry,
        adapter=agent_cfg.adapter,
        prompts_path=cfg.resolve(prompts) if prompts else None,
        model=model,
        prompt_variables=dict(agent_cfg.prompt_variables),
        timeout_s=agent_cfg.timeout_s,
        spec=spec,
        bundle=bundle,
        components=components,
    )


def agent_versions(cfg: ShipyardConfig, name: str) -> list[AgentVersion]:
    """The configured versions of an agent: the current one first, then its `versions:` entries."""
    try:
        agent_cfg = cfg.agents[name]
    except KeyError:
        known = ", ".join(sorted(cfg.agents)) or "none"
        raise NotFoundError(
            f"no agent named {name!r} in {cfg.path or 'shipyard.yaml'} (agents: {known})",
            hint="add it under `agents:` or check the spelling",
        ) from None
    versions = [build_version(cfg, name, agent_cfg)]
    versions += [build_version(cfg, name, agent_cfg, v) for v in agent_cfg.versions]
    return versions


def pick_version(versions: list[AgentVersion], ref: str | None) -> AgentVersion:
    """The version `ref` names (None: the current one)."""
    if ref is None:
        return versions[0]
    for v in versions:
        if v.matches(ref):
            return v
    # a label prefix that names exactly one version: "1.1" for "1.1.0"
    by_prefix = [v for v in versions if v.label.startswith(ref + ".")]
    if len(by_prefix) == 1:
        return by_prefix[0]
    known = ", ".join(v.id for v in versions)
    raise NotFoundError(
        f"agent {versions[0].agent!r} has no version {ref!r} (known: {known})",
        hint="run `shipyard versions` to list them; a version is a label, a hash or a full id",
    )
