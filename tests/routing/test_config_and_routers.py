"""The `routing:` section's errors (each names what is wrong and what to do), the feature scorer,
the learned router's fit and file, and a scripted rules file built on another (`base:`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.config import ShipyardConfig
from shipyard.errors import ConfigError, ShipyardError
from shipyard.llm import ScriptedModel
from shipyard.llm._scripted import load_rules
from shipyard.routing import (
    CaseOutcome,
    FeatureScorer,
    LearnedRouter,
    RouteRequest,
    RouterNotFitted,
    difficulty,
    enough_tier,
    fit,
)

Project = Callable[..., ShipyardConfig]


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        (
            "routing:\n  agents: [desk]\n  tiers: {small: nope, large: large-model}\n",
            "routing.tiers.small names model 'nope', not defined under models",
        ),
        ("routing:\n  agents: [ghost]\n", "routing.agents names agent 'ghost', not defined under agents"),
        (
            "routing:\n  agents: [desk]\n  tiers: {small: large-model, large: small-model}\n",
            "routing.tiers.small names model 'large-model', whose tier is large: set models.large-model.tier",
        ),
        ("routing:\n  enabled: true\n", "routing.enabled is true but routing.agents names no agent"),
        ("routing:\n  agents: [desk]\n  reference: medium\n", "routing.reference is 'medium' but no model"),
        (
            "routing:\n  agents: [desk]\n  steps: {classify: medium}\n",
            "routing sends requests to tier 'medium', which has no model",
        ),
        (
            "routing:\n  agents: [desk]\n  rules: [{when: {pattern: '(unclosed'}, tier: large}]\n",
            "not a valid regular expression",
        ),
        (
            "routing:\n  agents: [desk]\n  rules: [{when: {}, tier: large}]\n",
            "a rule needs at least one condition",
        ),
        ("routing:\n  agents: [desk]\n  router: magic\n", "routing.router"),
        ("routing:\n  agents: [desk]\n  tiers: {small: small-model}\n", "at least two tiers"),
        (
            "routing:\n  agents: [desk]\n  scorer: {thresholds: [0.3, 0.6]}\n",
            "needs 1 cut-off(s) for 2 tiers",
        ),
        ("routing:\n  agents: [desk]\n  typo: 1\n", "routing.typo"),
    ],
)
def test_a_bad_routing_section_is_a_config_error_that_says_what_to_fix(
    routed: Project, routing: str, message: str
) -> None:
    with pytest.raises(ConfigError) as e:
        routed(routing)
    assert message in str(e.value) and "shipyard.yaml" in str(e.value)


def test_tiers_default_to_the_models_tier_and_ambiguity_is_an_error(routed: Project) -> None:
    cfg = routed("routing:\n  agents: [desk]\n")
    assert cfg.routing.tier_models(cfg) == {"small": "small-model", "large": "large-model"}
    text = (
        (cfg.root / "shipyard.yaml").read_text().replace("large-model: {", "large-model: {tier: small, ", 1)
    )
    (cfg.root / "shipyard.yaml").write_text(text.replace(", tier: large", ""))
    from shipyard.config import load_config

    with pytest.raises(ConfigError, match="all have tier small; name the one to route to"):
        load_config(cfg.root / "shipyard.yaml")


def test_a_learned_router_that_was_never_fitted_stops_the_runtime_with_what_to_run(
    routed: Project, routing_yaml: str
) -> None:
    from shipyard.runtime import Runtime

    cfg = routed(routing_yaml + "  router: learned\n")
    with pytest.raises(RouterNotFitted) as e:
        Runtime(cfg)
    assert "shipyard routing fit" in (e.value.hint or "")


def test_the_feature_scorer_rates_longer_multi_part_requests_harder() -> None:
    easy, _ = difficulty(RouteRequest.from_input("a", "Where is order 10001?"))
    hard, why = difficulty(
        RouteRequest.from_input(
            "a",
            "I was charged twice, and the refund did not arrive; also, why was order 10002 not shipped?",
            turns=3,
        )
    )
    assert 0 <= easy < hard <= 1 and why
    scorer = FeatureScorer(["small", "medium", "large"], [0.2, 0.3])
    assert scorer.decide(RouteRequest.from_input("a", "hi"))[0] == "small"
    tier, confidence, reasons = scorer.decide(
        RouteRequest.from_input("a", "x " * 200 + "and, but; also?" * 5)
    )
    assert tier == "large" and 0 <= confidence <= 1 and "difficulty" in reasons[0]
    # wrong number of cut-offs: evenly spaced ones
    assert FeatureScorer(["small", "large"], [0.1, 0.2]).thresholds == [0.5]


def test_a_request_reads_the_last_user_message_its_turns_and_whether_it_is_a_new_turn() -> None:
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "Second one"}]},
    ]
    r = RouteRequest.of("a", messages, step="s", has_tools=True)
    assert (r.user, r.turns, r.new_turn, r.step, r.words) == ("Second one", 1, True, "s", ["second", "one"])
    assert RouteRequest.of("a", [*messages, {"role": "tool", "content": "{}"}]).new_turn is False


def _cases(n: int) -> list[CaseOutcome]:
    """Refund requests need large (small fails them); status questions are fine on small."""
    out = []
    for i in range(n):
        hard = i % 3 == 0
        text = f"Please refund order {10000 + i}." if hard else f"Where is my order {10000 + i}?"
        out.append(
            CaseOutcome(
                key=f"s/c{i}",
                user=text,
                passed={"small": 0.0 if hard else 1.0, "large": 1.0},
                cost={"small": 0.001, "large": 0.02},
            )
        )
    return out


def test_the_learned_router_learns_which_tier_was_enough_and_keeps_the_loss_target(tmp_path: Path) -> None:
    cases = _cases(60)
    assert enough_tier(cases[0], ["small", "large"]) == 1 and enough_tier(cases[1], ["small", "large"]) == 0
    router = fit("a", cases, ["small", "large"], "large", 0.01, ["s"])
    c = router.calibration
    assert c.reference_pass_rate == 1.0 and c.reference_pass_rate - c.pass_rate <= 0.01
    assert c.saved > 0.5 and c.tier_share["small"] > 0.5
    assert router.decide(RouteRequest.from_input("a", "Please refund order 20001."))[0] == "large"
    assert router.decide(RouteRequest.from_input("a", "Where is my order 20002?"))[0] == "small"
    path = tmp_path / "routing" / "a.json"
    router.save(path)
    again = LearnedRouter.load(path, ["small", "large"])
    r = RouteRequest.from_input("a", "Can I get a refund for order 20003?")
    assert again.chances(r) == pytest.approx(router.chances(r)) and again.threshold == router.threshold
    with pytest.raises(ShipyardError, match="routes between small, large"):
        LearnedRouter.load(path, ["small", "medium", "large"])
    path.write_text("{not json")
    with pytest.raises(ShipyardError, match="cannot be read"):
        LearnedRouter.load(path, ["small", "large"])


def test_a_zero_loss_target_with_an_unlearnable_mix_keeps_everything_on_the_reference() -> None:
    # the same words pass or fail on small at random: nothing to learn, so nothing may go small
    cases = [
        CaseOutcome(
            f"s/c{i}", "Where is my order?", {"small": float(i % 2), "large": 1.0}, {"small": 1, "large": 9}
        )
        for i in range(20)
    ]
    router = fit("a", cases, ["small", "large"], "large", 0.0, ["s"])
    assert router.calibration.pass_rate == 1.0 and router.calibration.tier_share.get("small", 0) == 0
    with pytest.raises(ShipyardError, match="at least 4 eval cases"):
        fit("a", cases[:3], ["small", "large"], "large", 0.0, ["s"])


def test_a_rules_file_built_on_another_tries_its_own_rules_first(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "prompt_cache: true\ndefault: base default\nrules:\n  - {when: {user: hello}, reply: base hello}\n"
        "  - {when: {user: bye}, reply: base bye}\n"
    )
    (tmp_path / "weak.yaml").write_text(
        "base: base.yaml\nrules:\n  - {when: {user: hello}, reply: weak hello}\n"
    )
    rules = load_rules(tmp_path / "weak.yaml")
    assert rules.prompt_cache is True and rules.default.reply == "base default"
    model = ScriptedModel(rules)
    assert model.choose([{"role": "user", "content": "hello"}])[0].reply == "weak hello"
    assert model.choose([{"role": "user", "content": "bye"}])[0].reply == "base bye"
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\nrules: []\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_rules(tmp_path / "loop.yaml")
    (tmp_path / "lost.yaml").write_text("base: nowhere.yaml\nrules: []\n")
    with pytest.raises(ConfigError, match="no rules file"):
        load_rules(tmp_path / "lost.yaml")


def test_a_models_version_changes_when_the_file_its_rules_build_on_changes(tmp_path: Path) -> None:
    from shipyard.config import ShipyardConfig as Cfg
    from shipyard.llm._providers import scripted_identity

    (tmp_path / "base.yaml").write_text("rules: []\n")
    (tmp_path / "weak.yaml").write_text("base: base.yaml\nrules: []\n")
    cfg = Cfg.model_validate({"models": {"m": {"provider": "scripted", "rules": "weak.yaml"}}})
    cfg._root = tmp_path
    m = cfg.models["m"]
    before = scripted_identity(m.settings, cfg)
    (tmp_path / "base.yaml").write_text("default: changed\nrules: []\n")
    assert scripted_identity(m.settings, cfg) != before
