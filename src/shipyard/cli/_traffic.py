"""Simulated traffic of a support desk, what `shipyard simulate` sends through a running server and
the demo's rollout runs in-process.

Many users, each with sessions of one to three turns drawn from the support desk's request kinds
(order status, returns, eligible and ineligible refunds, policy questions, escalations), at a
steady rate, with a bounded number of requests in flight; a share of answers gets thumbs or a
1-5 score via POST /v1/feedback. Loopback only: it is a load generator for your own server.

Apart from the command's module, so `shipyard --help` builds none of its dataclasses."""

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

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


GIVE_UP_AFTER = 10  # refusals of one kind (401, 403, 404) with no success: stop sending


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
    failures: Counter[int] = field(default_factory=Counter)  # HTTP status of failed requests; 0: no answer
    failure_messages: dict[int, str] = field(default_factory=dict)  # the first message per status

    def failed(self, status: int, message: str) -> None:
        """A request that did not succeed: `status` 0 when no answer came (connection refused, ...)."""
        self.errors += 1
        self.failures[status] += 1
        self.failure_messages.setdefault(status, message)

    def hopeless(self) -> bool:
        """Nothing succeeded and the server keeps refusing for a reason more requests cannot change
        (a key it wants or refuses, an agent it does not serve)."""
        return self.ok == 0 and any(self.failures[s] >= GIVE_UP_AFTER for s in (401, 403, 404))

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

    Stops early when nothing succeeded and GIVE_UP_AFTER requests got one refusal more requests
    cannot change (401, 403 or 404); the tally keeps what the server answered (`failures`).
    """
    import asyncio

    import aiohttp

    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ShipyardError(
            f"--url must be a server's base URL such as http://127.0.0.1:8000, got {url!r}",
            hint="start a server with `shipyard serve` and pass --url http://127.0.0.1:PORT",
        )
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ShipyardError(
            f"simulate only sends traffic to a server on this machine, not {url!r}",
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
        status = 0
        try:
            async with http.post(f"{base}/v1/agents/{agent}/invoke", json=body) as resp:
                status = resp.status
                data = await resp.json(content_type=None)
        except ValueError:
            tally.failed(status, "the answer is not JSON: is this a Shipyard server?")
            return
        except (aiohttp.ClientError, TimeoutError) as e:
            tally.failed(status, f"{type(e).__name__}: {e}".splitlines()[0])
            return
        tally.latencies.append(time.monotonic() - t0)
        if not isinstance(data, dict):
            tally.failed(status, "the answer is not a JSON object: is this a Shipyard server?")
            return
        raw_error = data.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        if status >= 400 and "interaction_id" not in error:
            tally.failed(status, str(error.get("message") or f"HTTP {status}"))
            return
        result = data if status < 400 else error
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
        while (now := time.monotonic()) - start < duration_s and not tally.hopeless():
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


def no_success(tally: Tally, url: str, agent: str, *, api_key: str | None) -> ShipyardError:
    """Why nothing succeeded, from what the server answered (its most common refusal)."""
    if not tally.failures:
        return ShipyardError(f"no request was sent to {url}", hint="raise --rps or --duration")
    status, count = tally.failures.most_common(1)[0]
    said = tally.failure_messages.get(status, "")
    if status == 0:
        return ShipyardError(
            f"no request succeeded ({tally.errors} errors): is the server running at {url}? ({said})",
            hint="start it with `shipyard serve`",
        )
    head = f"no request succeeded: {count} of {tally.errors} got HTTP {status} from {url}: {said}"
    if status == 401 and api_key:
        return ShipyardError(
            head,
            hint="the key given with --api-key (or SHIPYARD_API_KEY) is not one this server knows, or is "
            "revoked; create one with `shipyard keys create --role invoke`",
        )
    if status == 401:
        return ShipyardError(
            head,
            hint="this server needs an API key: pass one with --api-key KEY or set SHIPYARD_API_KEY "
            "(create one with `shipyard keys create --role invoke`)",
        )
    if status == 403:
        return ShipyardError(
            head, hint="use a key with role invoke or admin (`shipyard keys create --role invoke`)"
        )
    if status == 404 and "agent" in said:
        return ShipyardError(head, hint=f"--agent {agent!r} is not served there: pass one the server serves")
    if status == 404:
        return ShipyardError(head, hint=f"is {url} a Shipyard server (`shipyard serve`)?")
    return ShipyardError(head, hint="see the server's log for why")
