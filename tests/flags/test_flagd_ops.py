"""flagd's custom operations, checked against the vectors of flagd's own conformance suite
(open-feature/flagd-testbed, gherkin/targeting.feature, the `@fractional-v2` examples), so a key
gets the same variant here as in flagd."""

from __future__ import annotations

import itertools
from typing import Any

import mmh3
import pytest

from shipyard.flags import (
    FlagStore,
    Reason,
    bucket,
    compare_semver,
    fractional,
    parse_flag_set,
    parse_semver,
)

FOUR = [["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]]


def _flag(
    targeting: dict[str, Any], variants: dict[str, Any] | None = None, default: str = "wild"
) -> dict[str, Any]:
    variants = variants or {v: v for v in ("clubs", "diamonds", "hearts", "spades", "wild")}
    return {"state": "ENABLED", "variants": variants, "defaultVariant": default, "targeting": targeting}


CARDS = {c: c for c in ("clubs", "diamonds", "hearts", "spades", "wild")}

STORE = FlagStore(
    parse_flag_set(
        {
            "flags": {
                "fractional-flag": _flag(
                    {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]}, *FOUR]}
                ),
                "fractional-flag-A-shared-seed": _flag(
                    {"fractional": [{"cat": ["shared-seed", {"var": "user.name"}]}, *FOUR]}
                ),
                "fractional-flag-shorthand": _flag(
                    {"fractional": [["heads"], ["tails", 1]]},
                    {"heads": "heads", "tails": "tails", "draw": "draw"},
                    "draw",
                ),
                "fractional-hash-edge-flag": _flag(
                    {"fractional": [{"var": "targetingKey"}, ["lower", 50], ["upper", 50]]},
                    {"lower": "lower", "upper": "upper"},
                    "lower",
                ),
                "fractional-nested-if-flag": _flag(
                    {
                        "fractional": [
                            {"var": "targetingKey"},
                            [{"if": [{"==": [{"var": "tier"}, "premium"]}, "premium", "standard"]}, 50],
                            ["standard", 50],
                        ]
                    },
                    {"premium": "premium", "standard": "standard", "fallback": "fallback"},
                    "fallback",
                ),
                "fractional-nested-weight-flag": _flag(
                    {
                        "fractional": [
                            {"var": "targetingKey"},
                            ["red", {"if": [{"==": [{"var": "tier"}, "premium"]}, 100, 0]}],
                            ["blue", 10],
                        ]
                    },
                    {"red": "red", "blue": "blue", "fallback": "fallback"},
                    "fallback",
                ),
                "fractional-as-condition-flag": _flag(
                    {"if": [{"fractional": [[False, 0], [True, 100]]}, "big", "small"]},
                    {"big": "hundreds", "small": "ones", "fallback": "zero"},
                    "fallback",
                ),
                "starts-ends-flag": _flag(
                    {
                        "if": [
                            {"starts_with": [{"var": "id"}, "abc"]},
                            "prefix",
                            {
                                "if": [
                                    {"ends_with": [{"var": "id"}, "xyz"]},
                                    "postfix",
                                    {"if": [{"ends_with": [{"var": "id"}, 3]}, "fail", "none"]},
                                ]
                            },
                        ]
                    },
                    {"prefix": "prefix", "postfix": "postfix", "none": "none", "fail": "fail"},
                    "none",
                ),
                "equal-greater-lesser-version-flag": _flag(
                    {
                        "if": [
                            {"sem_ver": [{"var": "version"}, "=", "2.0.0"]},
                            "equal",
                            {"sem_ver": [{"var": "version"}, ">", "2.0.0"]},
                            "greater",
                            {"sem_ver": [{"var": "version"}, "<", "2.0.0"]},
                            "lesser",
                            "none",
                        ]
                    },
                    {"equal": "equal", "greater": "greater", "lesser": "lesser", "none": "none"},
                    "none",
                ),
                "major-minor-version-flag": _flag(
                    {
                        "if": [
                            {"sem_ver": [{"var": "version"}, "~", "3.0.0"]},
                            "minor",
                            {"sem_ver": [{"var": "version"}, "^", "3.0.0"]},
                            "major",
                            "none",
                        ]
                    },
                    {"minor": "minor", "major": "major", "none": "none"},
                    "none",
                ),
            }
        }
    )
)


def value(flag: str, ctx: dict[str, Any]) -> Any:
    return STORE.evaluate(flag, "fallback", ctx).value


@pytest.mark.parametrize(
    ("name", "expected"),
    [("jack", "hearts"), ("queen", "spades"), ("ten", "clubs"), ("nine", "diamonds"), ("3", "clubs")],
)
def test_fractional_matches_flagd_vectors(name: str, expected: str) -> None:
    assert value("fractional-flag", {"user": {"name": name}}) == expected


@pytest.mark.parametrize(
    ("name", "expected"), [("seven", "hearts"), ("eight", "diamonds"), ("nine", "clubs"), ("two", "spades")]
)
def test_fractional_shared_seed_vectors(name: str, expected: str) -> None:
    assert value("fractional-flag-A-shared-seed", {"user": {"name": name}}) == expected


@pytest.mark.parametrize(("key", "expected"), [("jon@company.com", "heads"), ("jane@company.com", "tails")])
def test_fractional_shorthand_buckets_flag_key_plus_targeting_key(key: str, expected: str) -> None:
    d = STORE.evaluate("fractional-flag-shorthand", "fallback", {"targetingKey": key})
    assert (d.value, d.reason) == (expected, Reason.SPLIT)


@pytest.mark.parametrize(
    ("key", "hash_", "expected"),
    [
        ("ejOoVL", 0, "lower"),
        ("bY9fO-", 1, "lower"),
        ("SI7p-", 2**31 - 1, "lower"),
        ("6LvT0", 2**31, "upper"),
        ("ceQdGm", 2**32 - 1, "upper"),
    ],
)
def test_fractional_hash_edges_use_the_unsigned_hash(key: str, hash_: int, expected: str) -> None:
    assert mmh3.hash(key, 0, signed=False) == hash_
    assert value("fractional-hash-edge-flag", {"targetingKey": key}) == expected


@pytest.mark.parametrize(
    ("key", "tier", "expected"),
    [
        ("jon@company.com", "premium", "premium"),
        ("jon@company.com", "basic", "standard"),
        ("user1", "premium", "standard"),
        ("user1", "basic", "standard"),
    ],
)
def test_fractional_with_a_computed_variant(key: str, tier: str, expected: str) -> None:
    assert value("fractional-nested-if-flag", {"targetingKey": key, "tier": tier}) == expected


@pytest.mark.parametrize(
    ("key", "tier", "expected"),
    [
        ("jon@company.com", "premium", "red"),
        ("jon@company.com", "basic", "blue"),
        ("user1", "premium", "red"),
    ],
)
def test_fractional_with_a_computed_weight(key: str, tier: str, expected: str) -> None:
    assert value("fractional-nested-weight-flag", {"targetingKey": key, "tier": tier}) == expected


def test_fractional_as_a_condition() -> None:
    assert value("fractional-as-condition-flag", {"targetingKey": "some-targeting-key"}) == "hundreds"


def test_fractional_without_any_key_falls_back_to_the_default_variant() -> None:
    d = STORE.evaluate("fractional-flag-shorthand", "fallback", {})
    assert (d.value, d.reason) == ("draw", Reason.DEFAULT)


def test_bucket_is_flagd_integer_arithmetic() -> None:
    h = mmh3.hash("flagkey-user-1", 0, signed=False)
    assert bucket("flagkey-user-1", 100) == (h * 100) >> 32
    assert fractional("k", [("a", 0), ("b", 0)]) is None


def test_fractional_distribution_and_stickiness() -> None:
    keys = [f"user-{i}" for i in range(10_000)]
    at_10 = {k: fractional(f"new_refund_flow{k}", [("on", 10), ("off", 90)]) for k in keys}
    share = sum(v == "on" for v in at_10.values()) / len(keys)
    assert 0.09 <= share <= 0.11  # binomial sd is 0.3%: this band is > 3 sd wide
    # the same key always gets the same variant
    assert all(
        fractional(f"new_refund_flow{k}", [("on", 10), ("off", 90)]) == v
        for k, v in list(at_10.items())[:500]
    )
    # raising the weight of the first variant never moves a key that already had it
    for pct in (25, 50, 99):
        at_pct = {k: fractional(f"new_refund_flow{k}", [("on", pct), ("off", 100 - pct)]) for k in keys}
        assert all(at_pct[k] == "on" for k, v in at_10.items() if v == "on")
    # also across scales (whole percents use 100, fractional ones 10000)
    at_fine = {k: fractional(f"new_refund_flow{k}", [("on", 1050), ("off", 8950)]) for k in keys}
    assert all(at_fine[k] == "on" for k, v in at_10.items() if v == "on")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.0.0", "equal"),
        ("2.1.0", "greater"),
        ("1.9.0", "lesser"),
        ("2.0.0-alpha", "lesser"),
        ("2.0.0.0", "none"),
    ],
)
def test_sem_ver_comparison(version: str, expected: str) -> None:
    assert value("equal-greater-lesser-version-flag", {"version": version}) == expected


@pytest.mark.parametrize(("version", "expected"), [("3.0.1", "minor"), ("3.1.0", "major"), ("4.0.0", "none")])
def test_sem_ver_caret_and_tilde(version: str, expected: str) -> None:
    assert value("major-minor-version-flag", {"version": version}) == expected


def test_sem_ver_parsing_edges() -> None:
    assert parse_semver("v1.0.0") == parse_semver("V1.0.0") == (1, 0, 0, None)
    assert parse_semver("1") == parse_semver("1.0") == parse_semver(1) == (1, 0, 0, None)
    assert parse_semver(1.2) == (1, 2, 0, None)
    assert parse_semver("1.0.0+build.5") == (1, 0, 0, None)
    assert parse_semver("1.0.0-rc.1") == (1, 0, 0, ("rc", 1))
    for bad in ("2.0.0.0", "not-a-version", "01.0.0", "1.0.0-", None, True):
        assert parse_semver(bad) is None
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]  # fmt: skip  (the precedence example of semver.org)
    parsed = [parse_semver(v) for v in order]
    for a, b in itertools.pairwise(parsed):
        assert a is not None and b is not None and compare_semver(a, b) < 0


@pytest.mark.parametrize(
    ("id_", "expected"),
    [("abcdef", "prefix"), ("uvwxyz", "postfix"), ("abcxyz", "prefix"), ("lmnopq", "none"), ("3", "none")],
)
def test_starts_with_and_ends_with(id_: str, expected: str) -> None:
    assert value("starts-ends-flag", {"id": id_}) == expected


def test_string_operations_on_non_strings_give_the_default() -> None:
    fs = parse_flag_set(
        {"flags": {"f": _flag({"if": [{"starts_with": [{"var": "num"}, "1"]}, "clubs", "hearts"]}, CARDS)}}
    )
    # starts_with on a number is null: the `if` takes its else branch
    assert FlagStore(fs).evaluate("f", "x", {"num": 123}).value == "hearts"
