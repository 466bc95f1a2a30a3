"""PII detection and redaction: checked values (Luhn, mod-97, libphonenumber), typed placeholders,
and a streaming redactor that still catches a value split across chunks."""

from __future__ import annotations

import re

import pytest

from shipyard.guardrails import GuardrailInput, Pii, StreamRedactor, Verdict, find_pii, redact_pii
from shipyard.guardrails._pii import DEFAULT_REGIONS, MAX_PHONE_PARSES, PiiOptions, iban_ok, luhn_ok


def _types(text: str) -> list[str]:
    return [e.type for e in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+orders@mail.example.co.uk today", "EMAIL"),
        ("call +1 415-555-2671 please", "PHONE"),
        ("call (415) 555-2671 ext. 204", "PHONE"),
        ("ring 020 7946 0958", "PHONE"),  # UK national
        ("Tel. +49 30 901820", "PHONE"),
        ("appelez le 01 42 68 53 00", "PHONE"),  # FR national
        ("+91 98765 43210 is my mobile", "PHONE"),
        ("card 4111 1111 1111 1111 exp 12/29", "CARD"),
        ("card 5500-0000-0000-0004", "CARD"),
        ("amex 378282246310005", "CARD"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN"),
        ("iban GB82WEST12345698765432", "IBAN"),
        ("SSN 123-45-6789", "SSN"),
        ("my ssn is 123456789", "SSN"),
        ("server at 10.0.12.7", "IP_ADDRESS"),
        ("v6 2001:db8:85a3::8a2e:370:7334 ok", "IP_ADDRESS"),
        ("key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "SECRET"),
        ("token ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", "SECRET"),
        ("aws AKIAIOSFODNN7EXAMPLE", "SECRET"),
        ("slack xoxb-123456789012-abcdefghijkl", "SECRET"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "SECRET",
        ),
        ("config api_key=Zx81kQp0Lm3vT7aB", "SECRET"),
        ("ship it to 742 Evergreen Terrace, Springfield, IL 62704", "ADDRESS"),
        ("Lieferung an Hauptstraße 5, 10115 Berlin", "ADDRESS"),
        ("au 12 rue de la Paix, 75002 Paris", "ADDRESS"),
        ("Calle de Alcalá 42, 28014 Madrid", "ADDRESS"),
    ],
)
def test_each_entity_type_is_found(text: str, kind: str) -> None:
    assert kind in _types(text), (text, find_pii(text))


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn-invalid
        "card 4111-1111 1111-1111",  # mixed separators
        "IBAN DE89 3704 0044 0532 0130 01",  # wrong check digits
        "Order 10042 shipped on 2024-01-15 at 10:30 in 3 boxes.",
        "Version 1.2.3.4000 of the app; build 20240115.",
        "SSN 000-12-3456",  # area 000 is never issued
        "Ignore the warning about password reset if you did not ask.",
        "The meeting is at 10:30 in room 4, floor 2.",
    ],
)
def test_near_misses_are_not_flagged(text: str) -> None:
    assert find_pii(text) == [], find_pii(text)


def test_luhn_and_mod97_checks() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")


def test_redaction_uses_typed_placeholders_and_keeps_the_rest() -> None:
    text = "Mail jane@example.com, card 4111 1111 1111 1111, password: hunter2!"
    out, found = redact_pii(text)
    assert out == "Mail [EMAIL], card [CARD], password: [SECRET]"
    assert [e.type for e in found] == ["EMAIL", "CARD", "SECRET"]


def test_the_guardrail_redacts_or_blocks() -> None:
    inp = GuardrailInput(agent="a", stage="output", text="Reach me at +44 20 7946 0958", user_input="")
    d = Pii("pii", PiiOptions()).check(inp)
    assert d.verdict is Verdict.REDACT and d.text == "Reach me at [PHONE]" and d.reason == "found 1 PHONE"
    d = Pii("pii", PiiOptions(action="block", reply="No personal data, sorry.")).check(inp)
    assert d.verdict is Verdict.BLOCK and d.text == "No personal data, sorry."
    only_email = Pii("pii", PiiOptions(entities=["EMAIL"]))
    assert only_email.check(inp).verdict is Verdict.ALLOW


def test_unknown_phone_regions_are_refused_when_options_load() -> None:
    with pytest.raises(ValueError, match="XX"):
        PiiOptions(regions=["US", "XX"])


def _stream(text: str, size: int) -> str:
    r = StreamRedactor()
    out = [r.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + r.finish()


@pytest.mark.parametrize("size", [1, 3, 7, 16, 50])
def test_stream_redaction_catches_values_split_across_chunks(size: int) -> None:
    text = (
        "Sure! The customer is jane.doe@example.com, phone +1 415-555-2671, and the card on file is "
        "4111 1111 1111 1111. Their key is sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z. Anything else?"
    )
    whole, _ = redact_pii(text)
    assert _stream(text, size) == whole
    assert "jane" not in _stream(text, size) and "4111" not in _stream(text, size)


def test_stream_holds_back_only_a_bounded_tail() -> None:
    r = StreamRedactor(hold=32)
    released = r.feed("word " * 100)
    assert len(r.buffer) <= 40 and len(released) >= 460
    assert released + r.finish() == "word " * 100


def test_numbers_written_one_after_the_other_are_each_found() -> None:
    found = find_pii("Call (415) 555-2671 (415) 555-2672 or +44 20 7946 0958 +33 1 42 68 53 00")
    assert [e.value for e in found] == [
        "(415) 555-2671",
        "(415) 555-2672",
        "+44 20 7946 0958",
        "+33 1 42 68 53 00",
    ]
    found = find_pii("Tokyo office: 03-3123-4567 03-3123-4568, thanks")
    assert [e.value for e in found] == ["03-3123-4567", "03-3123-4568"]


def test_hostile_digit_runs_stay_cheap_and_fail_closed() -> None:
    """A long run of digits must not make the phone pattern backtrack (it finds nothing, at once); past
    the parse budget, text written like phone numbers is redacted unparsed rather than let through."""
    assert find_pii("1" * 20_000) == []
    many = " ".join(f"(415) 555-{i:04d}" for i in range(400))  # each valid in the first region tried
    found = find_pii(many)
    assert len(found) == 400 and {e.type for e in found} == {"PHONE"}
    tokyo = [f"03-{3000 + i:04d}-5678" for i in range(400)]  # each needs most regions: over budget
    assert 400 * len(DEFAULT_REGIONS) > MAX_PHONE_PARSES
    assert [e.value for e in find_pii(", ".join(tokyo))] == tokyo


def test_stream_redacts_a_long_secret_that_arrives_in_pieces() -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9." + "eyJ" + "a" * 300 + "." + "b" * 43
    r = StreamRedactor(hold=32)
    out = "".join(r.feed(secret[i : i + 10]) for i in range(0, len(secret), 10))
    assert out == ""  # one token with no space yet: nothing released, whatever its length
    assert out + r.feed(" done") + r.finish() == "[SECRET] done"


@pytest.mark.parametrize(
    "text",
    [
        "Your refund will arrive by 2026-10-15.",
        "Delivered on 2026-10-15 14:30:00, signed by the neighbour.",
        "Booked for 15/10/2026 10:30.",
        "Invoice 2026-0042-17 is attached.",
        "The sale runs 2026 10 15 to 2026 10 20.",
        "Logged at 20261015 1430 by the courier.",
        "Your refund of 1234567.89 was approved.",
        "Order #10042, 2 items, 59.90 EUR, shipped 2026-10-15.",
        "Version 2.14.3, build 20261015; order 1000123456.",
    ],
)
def test_dates_times_amounts_and_order_numbers_are_not_phones_with_default_regions(text: str) -> None:
    assert "PHONE" not in _types(text), find_pii(text)
    assert "[PHONE]" not in redact_pii(text)[0]


def test_a_phone_next_to_a_time_is_still_found() -> None:
    assert [e.value for e in find_pii("Call 415-555-2671 14:30") if e.type == "PHONE"] == ["415-555-2671"]
    assert [e.value for e in find_pii("+44 20 7946 0958 at 09:15") if e.type == "PHONE"] == [
        "+44 20 7946 0958"
    ]


@pytest.mark.parametrize(
    "ident",
    [
        "bb8aea6608944335961bf21cfea8e1a0",  # a uuid4 hex whose digits pass Luhn: once masked as [CARD]
        "78aca360672846498d318f63fd2f543e",
        "fadcc86632114111955e8f1ba5731e8a",
        "a078-05-1120b",  # an SSN shape inside a token
    ],
)
def test_ids_are_not_pii(ident: str) -> None:
    """Run, trace and interaction ids ride in record metadata, which is masked at rest: a digit run
    inside a longer token is part of that token, not a card or an SSN."""
    assert redact_pii(ident)[0] == ident
    assert redact_pii(f"card 4111 1111 1111 1111, ref {ident}")[0] == f"card [CARD], ref {ident}"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # street words looked for in the lower-cased text; the patterns ignore their case
        ("Lieferung an HAUPTSTRASSE 5, 10115 Berlin", [("ADDRESS", "HAUPTSTRASSE 5, 10115 Berlin")]),
        (
            "Bezorgen op KEIZERSGRACHT 123, 1015 CJ Amsterdam",
            [("ADDRESS", "KEIZERSGRACHT 123, 1015 CJ Amsterdam")],
        ),
        # Spanish/Italian/Portuguese street types: any space after them, abbreviations with and without "."
        ("Vivo en Calle\tMayor 5, Madrid", [("ADDRESS", "Calle\tMayor 5")]),
        (
            "Avda. de la Constitución 12, 41001 Sevilla",
            [("ADDRESS", "Avda. de la Constitución 12, 41001 Sevilla")],
        ),
        (
            "Avda de la Constitución 12, 41001 Sevilla",
            [("ADDRESS", "Avda de la Constitución 12, 41001 Sevilla")],
        ),
        ("C. Mayor 7, 28013 Madrid", [("ADDRESS", "C. Mayor 7, 28013 Madrid")]),
        ("Praça da Sé 10, São Paulo", [("ADDRESS", "Praça da Sé 10")]),
        ("住所は東京都新宿区西新宿2丁目8番1号です", [("ADDRESS", "所は東京都新宿区西新宿2丁目8番1号")]),
        (
            "H.No. 46, Rattan Nagar, Karaikudi-301852",
            [("ADDRESS", "H.No. 46, Rattan Nagar, Karaikudi-301852")],
        ),
        ("Flat 6, Claire Plaza, London SW1A 1AA", [("ADDRESS", "Flat 6, Claire Plaza, London SW1A 1AA")]),
        # secret keywords in any case
        ("API_KEY=Zx81kQp0Lm3vT7aB", [("SECRET", "Zx81kQp0Lm3vT7aB")]),
        ("PASSWORD: hunter2hunter2", [("SECRET", "hunter2hunter2")]),
        # an IPv6 address in JSON, whose '": "' has colons too
        ('{"ip": "2001:db8::8a2e:370:7334", "port": 443}', [("IP_ADDRESS", "2001:db8::8a2e:370:7334")]),
        ('{"peer": "2001:db8::1", "n": 1}', [("IP_ADDRESS", "2001:db8::1")]),
        # loopback and unspecified addresses identify no one: a local error keeps them
        ('{"peer": "::1", "n": 1}', []),
        ("connecting to 127.0.0.1:8100 and 0.0.0.0 failed; from 10.1.2.3", [("IP_ADDRESS", "10.1.2.3")]),
        ("bound to [::] and 127.255.0.9", []),
        # what comes right before a number decides (the first digit or letter is matched before that is looked at)
        ("4111 1111 1111 1111 is the card", [("CARD", "4111 1111 1111 1111")]),
        ("x4111111111111111", []),
        ("GB82WEST12345698765432", [("IBAN", "GB82WEST12345698765432")]),
        ("xGB82WEST12345698765432", []),
    ],
)
def test_quick_gates_let_through_what_the_patterns_find(text: str, found: list[tuple[str, str]]) -> None:
    assert [(e.type, e.value) for e in find_pii(text)] == found


def test_word_alternations_find_exactly_the_words() -> None:
    """The gates look for many words with one pattern, written as a trie: it must find any of the words
    wherever `in` finds one, and nothing else."""
    import random

    from shipyard.guardrails._pii import _alternation

    words = ["str.", "straße", "strasse", "straat", "steeg", "weg", "hof", "都", "Av.", "Avda", "Avda."]
    pattern = re.compile(_alternation(words))
    assert all(pattern.fullmatch(w) for w in words)
    rnd = random.Random(7)
    alphabet = "strasseßagwehofv.Ad都 "
    for _ in range(5000):
        text = "".join(rnd.choices(alphabet, k=rnd.randint(0, 12)))
        assert bool(pattern.search(text)) == any(w in text for w in words), text


def test_a_lazy_pattern_compiles_on_first_use_and_may_be_written_by_a_function() -> None:
    from shipyard._lazy import lazy_re

    written: list[str] = []

    def source() -> str:
        written.append("once")
        return r"\d{4}"

    lazy = lazy_re(source)
    assert written == []  # nothing built before it is used
    found = lazy.search("order 1234")
    assert found is not None and found.group(0) == "1234"
    assert lazy.sub("#", "5678 and 9012") == "# and #" and lazy.pattern == r"\d{4}"
    assert written == ["once"]
    assert find_pii("card 4111 1111 1111 1111")[0].type == "CARD"


@pytest.mark.parametrize(
    ("text", "regions", "redacted"),
    [
        ("電話：０３－１２３４－５６７８です", ["JP"], "電話：[PHONE]です"),  # full-width, run into the words
        ("電話03-1234-5678です", ["JP"], "電話[PHONE]です"),
        ("携帯 ０９０－１２３４－５６７８ まで", ["JP"], "携帯 [PHONE] まで"),
        ("＋８１　３－１２３４－５６７８", ["US"], "[PHONE]"),  # international, with an ideographic space
        ("전화 010-1234-5678입니다", ["KR"], "전화 [PHONE]입니다"),
        ("メールjane@example.orgまで", ["JP"], "メール[EMAIL]まで"),
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｏｒｇ", ["JP"], "[EMAIL]"),
        ("カード４１１１ １１１１ １１１１ １１１１で", ["JP"], "カード[CARD]で"),
    ],
)
def test_cjk_text_and_full_width_forms(text: str, regions: list[str], redacted: str) -> None:
    """Japanese and Korean text runs numbers and addresses into the words around it, often in full-width
    forms: found where they are written, with the text around them kept as it was."""
    out, found = redact_pii(text, regions=regions)
    assert out == redacted, found
    assert all(text[e.start : e.end] == e.value for e in found)


@pytest.mark.parametrize(
    "text", ["abc4111111111111111", "id3f9a6086728464923", "ref４１１１１１１１１１１１１１１１x"]
)
def test_a_number_inside_a_latin_token_is_still_not_pii(text: str) -> None:
    assert find_pii(text) == [], find_pii(text)
