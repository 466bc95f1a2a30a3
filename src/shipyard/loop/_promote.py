"""Promotion: an incident becomes an eval case that replays deterministically.

The case holds the interaction's input, the session's earlier turns as `history`, every tool result
recorded at the time as `tool_results` with `recorded_tools_only: true` (a call the recording does
not answer is an ERROR, never a live tool call), and the expected behaviour: a human correction
(`expected`) and/or assertions (`must_not_call`, `must_refuse`, `contains`, a `trajectory`). It is
tagged `incident:<id>` and its metadata names the incident, interaction, trace and spans, so the
gate report says which incident each regression case came from.

Without an expectation nothing is written: a thumbs-down says something was wrong, not what is
right, so such an incident becomes a candidate for review, never a golden case.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shipyard._atomic import atomic_file
from shipyard.config import ShipyardConfig, format_validation_error
from shipyard.errors import ShipyardError
from shipyard.store import InteractionRecord, Store

INCIDENT_TAG = "incident:"
REGRESSION_CATEGORY = "regression"
MAX_HISTORY_MESSAGES = 40
OPEN_STATES = ("open", "triaged", "candidate")


class PromotionError(ShipyardError):
    """An incident cannot become an eval case (no interaction, no expectation, a closed state)."""


@dataclass(slots=True)
class PromoteResult:
    """What promotion did: `written` False means the incident stays a candidate (no expectation)."""

    incident: dict[str, Any]
    written: bool
    suite: str | None = None
    case: dict[str, Any] | None = None
    message: str = ""


def make_expectation(
    *,
    expected: str | None = None,
    contains: Sequence[str] = (),
    must_not_call: Sequence[str] = (),
    must_refuse: bool = False,
    trajectory: Sequence[str] | None = None,
    by: str,
) -> dict[str, Any] | None:
    """An expectation from a human correction and/or assertions (None when nothing is given).

    Args:
        expected: the answer the agent should have given (compared with `contains`... by the suite's
            default match).
        contains: texts the answer must contain.
        must_not_call: tools the agent must not call.
        must_refuse: the agent must refuse.
        trajectory: the tools the agent should call, in this order (others allowed between).
        by: who said so.
    """
    asserts: list[dict[str, Any]] = [{"type": "contains", "value": c} for c in contains]
    if must_not_call:
        asserts.append({"type": "must_not_call", "value": list(must_not_call)})
    if must_refuse:
        asserts.append({"type": "must_refuse"})
    out: dict[str, Any] = {}
    if expected:
        out["expected"] = expected
    if asserts:
        out["assert"] = asserts
    if trajectory:
        out["trajectory"] = {"mode": "in_order", "calls": [{"name": t} for t in trajectory]}
    if not out:
        return None
    return {**out, "by": by, "at": time.time()}


def check_expectation(expectation: Mapping[str, Any]) -> dict[str, Any]:
    """The expectation as a case would hold it; ShipyardError naming what is wrong."""
    from shipyard.evals import Case

    body = {k: v for k, v in expectation.items() if k in ("expected", "assert", "trajectory")}
    if not body:
        raise PromotionError("the expectation is empty: give expected text or assertions")
    try:
        Case.model_validate({"id": "check", "input": "x", **body})
    except ValidationError as e:
        raise PromotionError(
            "the expectation is not valid: " + "; ".join(format_validation_error(e, {}))
        ) from None
    return dict(expectation)


def _interaction(store: Store, incident: Mapping[str, Any]) -> InteractionRecord:
    ref = incident.get("interaction_id")
    record = store.get_interaction(ref, spans=False) if ref else None
    if record is None:
        raise PromotionError(
            f"incident {incident['id']} has no stored interaction to replay"
            + (f" ({ref} is not in the store)" if ref else " (it came from an alert)"),
            hint="promote an incident made from an interaction (a complaint, feedback, an error...)",
        )
    return record


def history_of(store: Store, record: InteractionRecord) -> list[dict[str, str]]:
    """The session's earlier turns before `record`, as chat messages (oldest first)."""
    earlier = store.list_interactions(
        agent=record.agent,
        session_id=record.session_id,
        until=record.created_at,
        limit=MAX_HISTORY_MESSAGES // 2,
    )
    out: list[dict[str, str]] = []
    for r in sorted(earlier, key=lambda r: r.created_at):
        if r.id == record.id:
            continue
        out += [{"role": "user", "content": r.input}, {"role": "assistant", "content": r.output}]
    return out[-MAX_HISTORY_MESSAGES:]


def recorded_tool_results(record: InteractionRecord) -> list[dict[str, Any]]:
    """The results the interaction's tools gave, as the case's fixed answers (calls a guardrail
    refused never ran and are left out: the guardrail refuses them again)."""
    out: list[dict[str, Any]] = []
    for t in record.tool_calls:
        if t.status == "success":
            out.append({"tool": t.name, "args": dict(t.arguments), "result": t.result})
        elif t.status == "error":
            out.append({"tool": t.name, "args": dict(t.arguments), "error": t.error or "the tool failed"})
    return out


def case_id_of(incident: Mapping[str, Any]) -> str:
    return f"incident-{str(incident['id']).removeprefix('inc-')}"


def build_case(store: Store, incident: Mapping[str, Any], expectation: Mapping[str, Any]) -> dict[str, Any]:
    """The eval case (as suite YAML data) of an incident with an expectation."""
    record = _interaction(store, incident)
    spans = sorted({s for o in incident.get("occurrences", []) for s in (o.get("span_ids") or [])})
    case: dict[str, Any] = {
        "id": case_id_of(incident),
        "input": record.input,
    }
    history = history_of(store, record)
    if history:
        case["history"] = history
    for key in ("expected", "assert", "trajectory"):
        if expectation.get(key):
            case[key] = expectation[key]
    case["category"] = REGRESSION_CATEGORY
    case["tags"] = [f"{INCIDENT_TAG}{incident['id']}"]
    case["tool_results"] = recorded_tool_results(record)
    case["recorded_tools_only"] = True
    case["metadata"] = {
        "incident_id": incident["id"],
        "interaction_id": record.id,
        "trace_id": record.trace_id,
        "span_ids": spans,
        "version": record.version,
        "failure": incident["failure"],
        "title": incident["title"],
        "expectation_by": expectation.get("by"),
    }
    return case


def agent_tools(cfg: ShipyardConfig, agent: str) -> tuple[list[str] | None, str]:
    """The tool names of `agent`'s current version, as `shipyard eval run` checks a suite against
    them, and that version's id. None when the agent registers no tools with Shipyard (a framework
    or remote agent): its tool names cannot be checked. NotFoundError for an agent not in the config."""
    from shipyard.runtime import agent_versions

    v = agent_versions(cfg, agent)[0]
    return (v.spec.tools.names() or None), v.id


def write_case(
    path: Path,
    case: Mapping[str, Any],
    *,
    name: str = "regression",
    cfg: ShipyardConfig | None = None,
    tools: Collection[str] | None = None,
    tools_of: str = "the agent",
) -> str:
    """Add `case` to the suite at `path` (replacing a case with its id), creating the file when it
    is missing. The result is checked as a gate would check it (`validate_suite`: every scorer, the
    judge models of `cfg`, every tool name against `tools` when given) before it replaces the file;
    when it fails, SuiteError names the file and nothing is written. Returns the suite's name.
    A file written by hand keeps its cases but not its comments."""
    from shipyard.config import load_yaml_with_lines
    from shipyard.evals import SuiteError, load_suite, parse_suite, validate_suite

    data: dict[str, Any]
    if path.is_file():
        loaded, _ = load_yaml_with_lines(path)  # ConfigError: the file, the line, what is wrong
        if not isinstance(loaded, dict) or not isinstance(loaded.get("cases", []), list):
            raise PromotionError(f"{path} is not a suite file (a mapping with name and cases)")
        data = loaded
    else:
        data = {
            "name": name,
            "description": "Cases promoted from production incidents (shipyard incidents promote).",
            "cases": [],
        }
    cases = [c for c in data.get("cases") or [] if not (isinstance(c, dict) and c.get("id") == case["id"])]
    data["cases"] = [*cases, dict(case)]
    path.parent.mkdir(parents=True, exist_ok=True)
    # a project file (the umask's mode); `.yaml`, so load_suite reads it as a suite
    try:
        # the suite as it would be written (no line numbers: the file is rewritten, so they would
        # point nowhere), then the written file itself; a raise leaves the file as it was
        validate_suite(parse_suite(data, path), cfg, tools=tools, tools_of=tools_of)
        with atomic_file(path, suffix=".yaml") as tmp:
            with tmp.open("w", encoding="utf-8") as f:
                yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True, width=110)
            suite = load_suite(tmp)
    except SuiteError as e:  # named by the file it is about, never the temp file
        raise SuiteError(
            str(path),
            e.problems,
            hint="nothing was written and the incident is unchanged; fix the expectation "
            "(--must-not-call and --trajectory take the agent's tool names) or the suite file",
        ) from None
    return suite.name


def promote(
    store: Store,
    cfg: ShipyardConfig,
    ref: str,
    *,
    suite: str | None = None,
    expectation: Mapping[str, Any] | None = None,
    by: str = "cli",
) -> PromoteResult:
    """Promote an incident to an eval case in `suite` (default: `incidents.regression_suite`).

    With an expectation (given here, or stored on the incident by a correction or a reviewer) the
    case is written and the incident is `in_suite`; without one the incident becomes a `candidate`
    in the review queue and nothing is written."""
    incident = store.get_incident(ref)
    state = incident["state"]
    if state in ("fixed", "wont_fix"):
        raise PromotionError(
            f"incident {incident['id']} is {state}, which is final: it is not promoted again",
            hint="a failure that comes back after a fix is a new incident (shipyard incidents list)",
        )
    _interaction(store, incident)  # fail before changing anything
    given = check_expectation(expectation) if expectation is not None else None
    if given is None and not incident.get("expectation"):
        if state in ("open", "triaged"):
            incident = store.transition_incident(
                incident["id"], "candidate", by=by, note="no expectation: a candidate for review", review=True
            )
        return PromoteResult(
            incident,
            False,
            message=f"incident {incident['id']} has no expectation (a correction or assertions), so it is a "
            "candidate case, not a golden one; review it in the dashboard, or promote again with --expect, "
            "--contains, --must-not-call, --must-refuse or --trajectory",
        )
    chosen: Mapping[str, Any] = given if given is not None else incident["expectation"]
    rel = suite or cfg.incidents.suite_for(incident["agent"])
    path = cfg.resolve(rel)
    case = build_case(store, incident, chosen)
    tools, tools_of = agent_tools(cfg, incident["agent"])
    # the file first, as the gate will read it: a case the gate would refuse changes nothing
    name = write_case(path, case, cfg=cfg, tools=tools, tools_of=tools_of)
    if given is not None:
        incident = store.update_incident(
            incident["id"], by=by, note="expectation set", expectation=dict(given)
        )
    if incident["state"] in OPEN_STATES:
        incident = store.transition_incident(
            incident["id"], "golden", by=by, note="expectation accepted", review=False
        )
    if incident["state"] == "golden":
        incident = store.transition_incident(
            incident["id"],
            "in_suite",
            by=by,
            note=f"case {case['id']} in {rel}",
            suite=rel,
            case_id=case["id"],
        )
    return PromoteResult(incident, True, rel, case, f"wrote case {case['id']} to {rel} (suite {name})")


def review(
    store: Store,
    ref: str,
    action: str,
    *,
    by: str,
    expectation: Mapping[str, Any] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A reviewer's decision on a queued incident: `accept` (golden; needs an expectation), `edit`
    (set the expectation, stays queued) or `reject` (won't fix)."""
    incident = store.get_incident(ref, occurrences=0)
    if action == "edit":
        if expectation is None:
            raise PromotionError("edit needs the new expectation")
        return store.update_incident(
            incident["id"],
            by=by,
            note=note or "expectation edited",
            expectation=check_expectation(expectation),
        )
    if action == "accept":
        if expectation is not None:
            incident = store.update_incident(
                incident["id"], by=by, note="expectation edited", expectation=check_expectation(expectation)
            )
        if not incident.get("expectation"):
            raise PromotionError(
                f"incident {incident['id']} has no expectation yet; edit it (what the agent should have "
                "done) before accepting: a complaint without a correction is never a golden case"
            )
        return store.transition_incident(
            incident["id"], "golden", by=by, note=note or "accepted", review=False
        )
    if action == "reject":
        return store.transition_incident(
            incident["id"], "wont_fix", by=by, note=note or "rejected", review=False
        )
    raise PromotionError(f"unknown review action {action!r}; use accept, edit or reject")


def sync_fixed(store: Store, cfg: ShipyardConfig, agent: str | None = None) -> list[dict[str, Any]]:
    """Mark `fixed` every in-suite incident whose case has passed (every repeat) in a finished eval
    run since it was promoted; `fixed_version` is the first version that did. Returns those fixed."""
    from shipyard.evals import load_suite

    fixed = []
    names: dict[str, str | None] = {}
    for inc in store.list_incidents(agent, "in_suite", limit=None):
        rel = inc.get("suite")
        if not rel or not inc.get("case_id"):
            continue
        if rel not in names:
            try:
                names[rel] = load_suite(cfg.resolve(rel)).name
            except ShipyardError:
                names[rel] = None
        name = names[rel]
        if name is None:
            continue
        promoted_at = max((h["at"] for h in inc["history"] or [] if h.get("to") == "in_suite"), default=None)
        for outcome in store.case_outcomes(name, inc["case_id"], since=promoted_at):
            if outcome["passed"]:
                fixed.append(
                    store.transition_incident(
                        inc["id"],
                        "fixed",
                        by="eval",
                        note=f"{outcome['version']} passed its case in run {outcome['run_id']}",
                        fixed_version=outcome["version"],
                    )
                )
                break
    return fixed
