"""CPU of a PII scan (`find_pii`, what masking at rest runs on every distinct text with a digit or an `@`),
per text, on a realistic mix: the eval bench's texts (questions about orders, the order tool's JSON
results, the replies), other support texts with numbers and no personal data, and texts with personal
data (emails, phone numbers, street addresses in several languages, cards, IBANs, SSNs, IPs, secrets).

Prints, in microseconds of CPU per text (process time, one core, best of `--rounds`):
- per group of texts (the eval bench's, look-alikes, each kind of personal data) and over the whole mix;
- per detector: `find_pii(text, entities=(KIND,))` over the whole mix;
- what a `.search` call costs through a `lazy_re` pattern held in a variable (shipyard._lazy; a module's
  global name is rebound to the compiled pattern on first use) and through a plain compiled pattern.

`--against REV` loads `src/shipyard/guardrails/_pii.py` and `src/shipyard/_lazy.py` as they are at git
revision REV (say HEAD) beside the working tree's and measures both, taking turns, on the same texts;
`--check N` also compares what the two find on the mix and on N Faker-generated texts per kind in 11
locales (a difference is an error).

    .venv/bin/python benchmarks/bench_pii.py [--rounds 7] [--against HEAD] [--check 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import re
import string
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PII_FILE = "src/shipyard/guardrails/_pii.py"

# What masking at rest scans per case of the eval bench (benchmarks/bench_evals.py): its input and reply
EVAL_CASE = ["where is order 10042?", "Order 10042 is shipped."]
# More like them: questions, the order tool's JSON results, replies
EVAL = [
    "Where is my order 10002?",
    "hello number 42",
    '{"order_id": "10042", "status": "shipped"}',
    '{"order_id": "10002", "status": "shipped", "eta": "2026-12-09", "carrier": "UPS", "items": 3, "total": 129.90}',
    "Your order 10002 shipped on 2026-12-07 and should arrive by Wednesday, 9 December.",
]
# Support texts with numbers and no personal data
LOOKALIKE = [
    "Please refund order 10002, it arrived broken. I paid 49.99 on 2026-11-30.",
    "Ticket #48213 was escalated at 14:30; SLA is 4 hours, priority 2 of 5.",
    "Version 3.12.4 fixed it; build 20261015 1430 still shows the error code E-4012.",
    "Refunds take 5-10 business days. Your reference is RF-2026-004217.",
    "We have 3 items in stock: SKU AB-10024 (x2) and SKU CD-88812 at $1,249.00 each.",
    '{"tickets": [{"id": 4821, "status": "open", "age_h": 26}, {"id": 4822, "status": "closed", "age_h": 3}]}',
]
PII: dict[str, list[str]] = {
    "email": [
        "Email me at jane.roe@example.org about order 10001.",
        "Contact: m.müller+orders@post.example.de, Kundennummer 448812",
    ],
    "phone": [
        "Call me on +1 650-253-0000 ext. 12 after 5pm.",
        "Ring me on 020 7946 0958 or 07700 900123.",
        "Meine Nummer ist 030 901820, mobil +49 1512 3456789.",
        "Appelez-moi au 01 23 45 67 89.",
        "Mobile: +91 98765 43210, office (080) 2345 6789",
        "電話番号は03-1234-5678です",
    ],
    "address": [
        "Ship it to 1600 Amphitheatre Parkway, Mountain View, CA 94043 please.",
        "My address is Flat 6, Claire Plaza, London SW1A 1AA.",
        "Lieferung an Hauptstraße 5, 10115 Berlin bitte.",
        "Envoyez à 12 bis, rue de la Paix, 75002 Paris.",
        "Mi dirección es Calle de Alcalá 42, 28014 Madrid.",
        "Spedire a Via Cavalcanti, 21, 20127 Milano (MI).",
        "Entregar na Rua Augusta, nº 1500, São Paulo, 01305-100",
        "H.No. 46, Rattan Nagar, Karaikudi-301852",
        "住所は東京都新宿区西新宿2丁目8番1号です",
        "Bezorgen op Keizersgracht 123, 1015 CJ Amsterdam.",
    ],
    "card": ["Charge 4111 1111 1111 1111 exp 12/28.", "card 5500-0000-0000-0004"],
    "iban": ["My IBAN is DE89 3704 0044 0532 0130 00.", "IBAN GB82WEST12345698765432 please"],
    "ssn": ["SSN 078-05-1120 on file.", "my social security number is 219099999"],
    "ip": ["The server is 192.168.10.24, and 2001:db8::8a2e:370:7334 on v6."],
    "secret": [
        "use key sk-proj-abcdEFGH1234ijklMNOP5678qrstUVWX and order 10002",
        "password=Hunter2Secret! for 10002",
        "aws AKIAIOSFODNN7EXAMPLE in region 3",
        "token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
}
GROUPS: dict[str, list[str]] = {"eval case": EVAL_CASE, "eval-like": EVAL, "lookalike": LOOKALIKE, **PII}
KINDS = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP_ADDRESS", "SECRET", "ADDRESS")


def load_at(rev: str) -> ModuleType:
    """`_pii.py` as it is at git revision `rev`, with the `shipyard._lazy` of that revision, as modules
    of their own (its guardrail registered under another name, so the working tree's stays)."""
    tag = re.sub(r"\W", "_", rev)

    def module(name: str, path: str, edit: Callable[[str], str]) -> ModuleType:
        source = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        spec = importlib.util.spec_from_loader(name, loader=None)
        assert spec is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        exec(compile(edit(source), f"{rev}:{path}", "exec"), mod.__dict__)
        return mod

    module(f"shipyard._lazy_at_{tag}", "src/shipyard/_lazy.py", lambda s: s)
    return module(
        f"shipyard.guardrails._pii_at_{tag}",
        PII_FILE,
        lambda s: s.replace('@guardrail_kind("pii")', f'@guardrail_kind("pii_at_{tag}")').replace(
            "from shipyard._lazy import lazy_re", f"from shipyard._lazy_at_{tag} import lazy_re"
        ),
    )


def cpu_per_text(scans: Sequence[Callable[[str], Any]], texts: Sequence[str], rounds: int) -> list[float]:
    """Microseconds of CPU per text for each of `scans`: the best of `rounds` rounds, each scanning
    `texts` enough times to take ~0.03 s; the scans take turns within a round, so each sees the same
    machine load."""
    for scan in scans:
        for t in texts:
            scan(t)  # compile the patterns the texts reach, load phone metadata
    reps = 1
    while True:
        t0 = time.process_time()
        for _ in range(reps):
            for t in texts:
                scans[0](t)
        if time.process_time() - t0 >= 0.03:
            break
        reps *= 2
    best = [float("inf")] * len(scans)
    for _ in range(rounds):
        for i, scan in enumerate(scans):
            t0 = time.process_time()
            for _ in range(reps):
                for t in texts:
                    scan(t)
            best[i] = min(best[i], time.process_time() - t0)
    return [b / (reps * len(texts)) * 1e6 for b in best]


def measure(modules: Sequence[ModuleType], rounds: int) -> dict[str, list[float]]:
    scans = [m.find_pii for m in modules]
    out = {name: cpu_per_text(scans, texts, rounds) for name, texts in GROUPS.items()}
    everything = [t for texts in GROUPS.values() for t in texts]
    out["ALL (mix)"] = cpu_per_text(scans, everything, rounds)
    for kind in KINDS:
        per_kind = [lambda t, f=f, k=(kind,): f(t, entities=k) for f in scans]
        out[f"detector {kind}"] = cpu_per_text(per_kind, everything, rounds)
    return out


def lazy_vs_compiled(rounds: int) -> tuple[float, float]:
    """Nanoseconds per `.search` call of a `lazy_re` pattern (after its first use) and of the same
    pattern from `re.compile`, on a short text, taking turns."""
    from shipyard._lazy import lazy_re

    lazy, compiled = lazy_re(r"\d\d\d[- ]\d\d[- ]\d{4}"), re.compile(r"\d\d\d[- ]\d\d[- ]\d{4}")
    text = "Where is my order 10002?"
    lazy.search(text)
    n = 200_000
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, p in enumerate((lazy, compiled)):
            t0 = time.process_time()
            for _ in range(n):
                p.search(text)
            best[i] = min(best[i], time.process_time() - t0)
    return best[0] / n * 1e9, best[1] / n * 1e9


def faker_texts(per_kind: int) -> list[str]:
    """Texts with Faker's values in bench_guardrails' locales, and look-alikes (for `--check`)."""
    from faker import Faker

    from bench_guardrails import LOCALES as locales  # the guardrail benchmark's locales

    Faker.seed(20261207)
    rnd = random.Random(20261207)
    fakes = [Faker(loc) for loc in locales]
    out = []
    for i in range(per_kind):
        f = fakes[i % len(fakes)]
        out += [
            f"Email {f.email()} or call {f.phone_number()}.",
            f"Ship to {f.address()}".replace("\n", rnd.choice([", ", "\n"])),
            f"{f.street_address()} ({f.city()})",
            f"Card {f.credit_card_number()}, IBAN {f.iban()}, from {f.ipv4()} / {f.ipv6()}",
            f"SSN {fakes[0].ssn()}; api_key={''.join(rnd.choices(string.ascii_letters + string.digits, k=24))}",
            f"Order {rnd.randint(10000, 99999999)} on {f.date()} at {f.time()} cost {rnd.uniform(1, 999):.2f}",
            f.sentence() + f" {rnd.randint(1, 99999)} " + f.sentence(),
        ]
    return out


def check(new: ModuleType, old: ModuleType, texts: Sequence[str]) -> int:
    differ = 0
    for t in texts:
        a, b = new.find_pii(t), old.find_pii(t)
        if [tuple(vars_of(e)) for e in a] != [tuple(vars_of(e)) for e in b]:
            differ += 1
            if differ <= 10:
                print(f"  DIFFERS: {t!r}\n    now: {a}\n    was: {b}")
    return differ


def vars_of(e: Any) -> tuple[Any, ...]:
    return (e.type, e.start, e.end, e.value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--against", metavar="REV", help="also measure _pii.py as it is at this git revision")
    ap.add_argument(
        "--check",
        type=int,
        default=0,
        metavar="N",
        help="with --against: compare finds on N Faker texts per kind",
    )
    args = ap.parse_args()

    from shipyard.guardrails import _pii as now

    old = load_at(args.against) if args.against else None
    if old is not None and args.check:
        texts = [t for ts in GROUPS.values() for t in ts] + faker_texts(args.check)
        differ = check(now, old, texts)
        print(f"finds compared on {len(texts)} texts: {differ} differ")
        if differ:
            raise SystemExit(1)
    labels = ["now"] + ([args.against] if old is not None else [])
    results = measure([now] + ([old] if old is not None else []), args.rounds)
    n_texts = sum(len(t) for t in GROUPS.values())
    print(f"µs CPU per text, best of {args.rounds} rounds, taking turns ({n_texts} texts in the mix)")
    print(f"{'':<20}" + "".join(f"{label:>12}" for label in labels) + (f"{'now/was':>10}" if old else ""))
    for key, figures in results.items():
        ratio = f"{figures[0] / figures[1]:>10.2f}" if old else ""
        print(f"{key:<20}" + "".join(f"{f:>12.2f}" for f in figures) + ratio)
    lazy_ns, compiled_ns = lazy_vs_compiled(args.rounds)
    print(
        f"a .search call: lazy_re {lazy_ns:.0f} ns, re.compile {compiled_ns:.0f} ns (best of {args.rounds})"
    )


if __name__ == "__main__":
    main()
