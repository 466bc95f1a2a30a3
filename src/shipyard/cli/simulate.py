"""`shipyard simulate`: realistic traffic through a running server, with feedback.

Many users, each with sessions of one to three turns drawn from the support desk's request kinds
(order status, returns, eligible and ineligible refunds, policy questions, escalations), at a
steady rate, with a bounded number of requests in flight; a share of answers gets thumbs or a
1-5 score via POST /v1/feedback. Loopback only: it is a load generator for your own server.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import typer

from shipyard.cli._app import app, console, handle_errors
from shipyard.errors import ShipyardError

ELIGIBLE = ["10002", "10012", "10013", "10014", "10026"]
INELIGIBLE = ["10003", "10024", "10035", "10006", "10004"]  # final sale, digital, out of the window
ANY_ORDER = ["10001", "10002", "10005", "10008", "10010", "10020", "10036", "10039"]

# kind -> (weight, turns); "{order}" is filled per session
REQUEST_KINDS: dict[str, tuple[int, list[list[str]]]] = {
    "order_status": (30, [["Where is my order {order}?"], ["Hi, any news on order {order}?", "Thanks!"]]),
    "return": (15, [["I want to return order {eligible}"], ["Can I send back order {ineligible}?"]]),
    "refund_eligible": (
        15,
        [
            ["Please refund order {eligible}, it arrived broken"],
            ["I'd like a refund for order {eligible}", "How long will it take?"],
        ],
    ),
    "refund_ineligible": (
        12,
        [["Refund order {ineligible} please"], ["I want my money back for order {ineligible}"]],
    ),
    "policy": (
        18,
        [["How long do refunds take?"], ["What is your return policy?"], ["Do you ship internationally?"]],
    ),
    "escalation": (
        10,
        [["This is unacceptable, I want to talk to a human!"], ["I'd like to speak to a manager please"]],
    ),
}


@dataclass(slots=True)
class Conversation:
    """One session: a user and the turns they send."""

    user_id: str
    session_id: str
    kind: str
    turns: list[str]


def conversations(rng: random.Random, users: int) -> Iterator[Conversation]:
    """An endless stream of sessions from `users` users, with the request kinds' mix."""
    kinds = list(REQUEST_KINDS)
    weights = [REQUEST_KINDS[k][0] for k in kinds]
    n = 0
    while True:
        n += 1
        kind = rng.choices(kinds, weights)[0]
        template = rng.choice(REQUEST_KINDS[kind][1])
        fill = {"order": rng.choice(ANY_ORDER), "eligible": rng.choice(ELIGIBLE),
                "ineligible": rng.choice(INELIGIBLE)}  # fmt: skip
        user = f"user-{rng.randrange(users):05d}"
        yield Conversation(
            user, f"sim-{rng.getrandbits(48):012x}-{n}", kind, [t.format(**fill) for t in template]
        )


def feedback_for(rng: random.Random, status: str, output: str) -> dict[str, Any]:
    """What a simulated customer says about an answer: mostly happy with a completed answer,
    less with an escalation, unhappy with a failure or a refusal."""
    refused = any(w in output.lower() for w in ("not eligible", "can't", "cannot", "couldn't", "sorry"))
    if status == "failed" or status == "blocked":
        good = 0.1
    elif status == "escalated":
        good = 0.55
    else:
        good = 0.55 if refused else 0.9
    if rng.random() < 0.5:
        return {"thumbs": 1 if rng.random() < good else -1}
    score = 5 if rng.random() < good else rng.choice([1, 2, 3])
    return {"score": score}


@dataclass(slots=True)
class Tally:
    """The live summary."""

    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    ok: int = 0
    errors: int = 0
    feedback: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] * 1000 if lat else 0.0
        versions = ", ".join(f"{v.split('@')[-1]} {n}" for v, n in self.versions.most_common(3))
        statuses = " ".join(f"{s} {n}" for s, n in self.statuses.most_common())
        return (
            f"{elapsed:5.1f}s  sent {self.sent}  ok {self.ok}  errors {self.errors}  "
            f"{self.sent / elapsed:.1f} req/s  p50 {p50:.0f}ms p95 {p95:.0f}ms  feedback {self.feedback}  "
            f"[{statuses}]  versions: {versions or '-'}"
        )


async def drive(
    url: str,
    agent: str,
    *,
    rps: float,
    duration_s: float,
    users: int = 200,
    feedback_rate: float = 0.3,
    concurrency: int = 32,
    api_key: str | None = None,
    seed: int | None = None,
    on_tick: Any = None,
) -> Tally:
    """Send conversations to `url` at about `rps` requests per second for `duration_s` seconds.

    Args:
        url: the server's base URL (loopback only).
        agent: the agent to call (POST /v1/agents/{agent}/invoke).
        users: how many distinct users sessions are drawn from.
        feedback_rate: the share of answers that get feedback.
        concurrency: the most requests in flight (later turns of a session wait for earlier ones).
        api_key: sent as a bearer token when the server has keys.
        seed: the same seed sends the same conversations with the same gaps (how many of them a run
            gets to send depends on the server's speed), and draws feedback alike.
        on_tick: called with the tally about once a second.
    """
    import asyncio

    import aiohttp

    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ShipyardError(
            f"simulate only sends traffic to a server on this machine, not {host!r}",
            hint="start one with `shipyard serve` and pass --url http://127.0.0.1:PORT",
        )
    if rps <= 0 or duration_s <= 0:
        raise ShipyardError("--rps and --duration must be positive")
    if not 0 <= feedback_rate <= 1:
        raise ShipyardError(f"--feedback-rate must be between 0 and 1, got {feedback_rate}")
    # conversations and feedback draw from their own generators: feedback is drawn as answers come
    # back, in an order that varies, and must not change which conversations are sent
    rng = random.Random(seed)
    feedback_rng = random.Random(None if seed is None else f"{seed}:feedback")
    tally = Tally()
    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    base = url.rstrip("/")

    async def turn(http: aiohttp.ClientSession, conv: Conversation, text: str) -> None:
        tally.sent += 1
        t0 = time.monotonic()
        body = {"input": text, "session_id": conv.session_id, "user_id": conv.user_id}
        try:
            async with http.post(f"{base}/v1/agents/{agent}/invoke", json=body) as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            tally.errors += 1
            return
        tally.latencies.append(time.monotonic() - t0)
        if resp.status >= 400 and "interaction_id" not in (data.get("error") or {}):
            tally.errors += 1
            return
        result = data if resp.status < 400 else data["error"]
        tally.ok += 1
        tally.statuses[str(result.get("status"))] += 1
        tally.versions[str(result.get("version"))] += 1
        if feedback_rng.random() < feedback_rate:
            fb = {
                "interaction_id": result["interaction_id"],
                **feedback_for(feedback_rng, result.get("status", ""), result.get("output", "")),
            }
            try:
                async with http.post(f"{base}/v1/feedback", json=fb) as r:
                    if r.status < 400:
                        tally.feedback += 1
            except (aiohttp.ClientError, TimeoutError):
                pass

    async def session(http: aiohttp.ClientSession, conv: Conversation, gaps: list[float]) -> None:
        for i, text in enumerate(conv.turns):
            if i:
                await asyncio.sleep(gaps[i - 1])
            async with limit:
                await turn(http, conv, text)

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as http:
        tasks: set[asyncio.Task[None]] = set()
        stream = conversations(rng, users)
        start = time.monotonic()
        sent_turns = 0.0
        next_report = start + 1.0
        while (now := time.monotonic()) - start < duration_s:
            # start sessions so that turns (not sessions) arrive at about rps
            due = (now - start) * rps
            while sent_turns < due and len(tasks) < concurrency * 4:
                conv = next(stream)
                sent_turns += len(conv.turns)
                gaps = [rng.uniform(0.2, 1.0) for _ in conv.turns[1:]]
                task = asyncio.get_running_loop().create_task(session(http, conv, gaps))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if on_tick is not None and now >= next_report:
                on_tick(tally)
                next_report += 1.0
            await asyncio.sleep(min(0.05, 1.0 / rps))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    if on_tick is not None:
        on_tick(tally)
    return tally


@app.command()
@handle_errors
def simulate(
    agent: str = typer.Option("support", "--agent", help="The agent to call."),
    rps: float = typer.Option(5.0, "--rps", help="Requests per second."),
    duration: float = typer.Option(30.0, "--duration", help="Seconds to run."),
    url: str = typer.Option("http://127.0.0.1:8000", "--url", help="The server (loopback only)."),
    users: int = typer.Option(200, "--users", help="Distinct users the sessions come from."),
    feedback_rate: float = typer.Option(0.3, "--feedback-rate", help="Share of answers rated (0-1)."),
    concurrency: int = typer.Option(32, "--concurrency", help="Most requests in flight."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="SHIPYARD_API_KEY", help="Key with invoke role."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed for a repeatable mix."),
) -> None:
    """Drive realistic traffic through a running server.

    Many users, multi-turn sessions, a mix of request kinds, a share of
    thumbs and score feedback; prints a live summary every second.

    Example: shipyard simulate --agent support --rps 20 --duration 60 --url http://127.0.0.1:8000
    """
    import asyncio

    def show(t: Tally) -> None:
        console.print(t.line(), highlight=False)

    tally = asyncio.run(
        drive(
            url,
            agent,
            rps=rps,
            duration_s=duration,
            users=users,
            feedback_rate=feedback_rate,
            concurrency=concurrency,
            api_key=api_key,
            seed=seed,
            on_tick=show,
        )
    )
    if tally.ok == 0:
        raise ShipyardError(
            f"no request succeeded ({tally.errors} errors): is the server running at {url}?",
            hint="start it with `shipyard serve`",
        )
