"""Rate limits per API key and per user (`rate_limits:`): 429 with Retry-After on the gateway routes,
counted in this process (memory) or in Redis shared by replicas (DB 7, a key prefix per test), and
what happens when Redis goes away (fail_closed / fail_open)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import redis
from fault_helpers import SHIPYARD, env_with
from fault_helpers import demo_project as fault_project
from server_helpers import HTTP, Served, free_port, run_in_thread
from throwaway import throwaway_redis
from waiting import wait_until

from shipyard.config import RateLimitsConfig, load_config
from shipyard.server import create_app, create_key

REDIS_DB7 = "redis://127.0.0.1:6379/7"


def _limits(yaml: str) -> Callable[[str], str]:
    return lambda text: text + "\nrate_limits:\n" + yaml


def _invoke(client: httpx.Client, text: str, **body: Any) -> httpx.Response:
    return client.post("/v1/agents/support/invoke", json={"input": text, **body})


def _refused(r: httpx.Response, what: str) -> int:
    """The Retry-After of a 429 whose message names `what`; fails otherwise."""
    assert r.status_code == 429, r.text
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert what in r.json()["error"]["message"], r.text
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 120
    return retry


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own in Redis DB 7, whose keys are deleted afterwards."""
    name = f"rltest-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_DB7)
    for key in client.scan_iter(match=f"*{name}*"):
        client.delete(key)
    client.close()


def test_settings_that_would_do_nothing_are_errors() -> None:
    with pytest.raises(pydantic.ValidationError, match="used only with backend: redis"):
        RateLimitsConfig.model_validate({"redis_url": "redis://x", "per_user": {"requests_per_minute": 1}})
    with pytest.raises(pydantic.ValidationError, match="sets no limit"):
        RateLimitsConfig.model_validate({"backend": "redis"})
    with pytest.raises(pydantic.ValidationError, match="requests_per_minute, tokens_per_minute"):
        RateLimitsConfig.model_validate({"per_key": {}})
    assert not RateLimitsConfig().enabled


def test_memory_backend_limits_each_user_across_routes(serve_project: Callable[..., Served]) -> None:
    served = serve_project(_limits("  per_user: {requests_per_minute: 3}\n"))
    c = served.client()
    for i in range(2):
        assert _invoke(c, f"where is order {i}?", user_id="ann").status_code == 200
    chat = {"model": "support", "messages": [{"role": "user", "content": "hello"}], "user": "ann"}
    assert c.post("/v1/chat/completions", json=chat).status_code == 200
    _refused(_invoke(c, "one more", user_id="ann"), "user 'ann' has used its 3 requests per minute")
    _refused(c.post("/v1/chat/completions", json=chat), "rate_limits.per_user.requests_per_minute")
    assert _invoke(c, "and me?", user_id="bob").status_code == 200  # another user has a minute of his own
    assert _invoke(c, "no user").status_code == 200  # no user: not counted per user
    scrape = c.get("/metrics").text
    assert _total(scrape, 'shipyard_rate_limited_total{limit="requests",scope="user"}') == 2


def test_memory_backend_limits_each_api_key(serve_project: Callable[..., Served]) -> None:
    served = serve_project(_limits("  per_key: {requests_per_minute: 2}\n"))
    a, b = create_key(served.state.store, "invoke"), create_key(served.state.store, "invoke")
    served.state.keys.refresh()
    ca, cb = served.client(a["key"]), served.client(b["key"])
    assert _invoke(ca, "first").status_code == 200
    assert _invoke(ca, "second", user_id="u1").status_code == 200
    _refused(
        _invoke(ca, "third", user_id="u2"), f"API key {a['prefix']!r} has used its 2 requests per minute"
    )
    assert _invoke(cb, "first of b").status_code == 200
    assert served.client().post("/v1/agents/support/invoke", json={"input": "x"}).status_code == 401


def test_tokens_are_counted_after_the_interaction(serve_project: Callable[..., Served]) -> None:
    served = serve_project(_limits("  per_user: {requests_per_minute: 100, tokens_per_minute: 1}\n"))
    c = served.client()
    chat = {"model": "support", "messages": [{"role": "user", "content": "where is my order 1001?"}]}
    first = c.post("/v1/chat/completions", json={**chat, "user": "tok"})
    assert first.status_code == 200, first.text
    assert first.json()["usage"]["total_tokens"] > 1  # let in: tokens are counted after it ran
    _refused(c.post("/v1/chat/completions", json={**chat, "user": "tok"}), "1 tokens per minute")
    assert c.post("/v1/chat/completions", json={**chat, "user": "other"}).status_code == 200


@pytest.fixture
def two_replicas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[str]]]:
    """start(yaml) -> the URLs of two replicas: each the real app on uvicorn over loopback HTTP, with a
    project copy and a store of its own, and with only what `rate_limits:` (`yaml`) names in common. In
    this process rather than two `shipyard serve` processes: the limit is shared through Redis alone
    (the test reads it there), and a process start is seconds of CPU a loaded machine waits for."""
    for name in ("SHIPYARD_DATABASE_URL", "SHIPYARD_REDIS_URL", "REDIS_URL", "SHIPYARD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    running: list[tuple[Any, Any]] = []

    def start(yaml: str) -> list[str]:
        urls = []
        for name in ("a", "b"):
            project = fault_project(tmp_path / name, extra_yaml="\nrate_limits:\n" + yaml)
            app = create_app(load_config(project / "shipyard.yaml"), log_stream=io.StringIO())
            port = free_port()
            running.append(run_in_thread(app, port))
            urls.append(f"http://127.0.0.1:{port}")
        return urls

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=60)


def test_two_replicas_share_one_limit_in_redis(two_replicas: Callable[[str], list[str]], prefix: str) -> None:
    yaml = (
        f"  backend: redis\n  redis_url: {REDIS_DB7}\n  key_prefix: {prefix}\n"
        "  per_user: {requests_per_minute: 5}\n  per_key: {requests_per_minute: 1000}\n"
    )
    urls = two_replicas(yaml)
    codes = []
    for i in range(5):  # alternating replicas: five in all are let in
        r = HTTP.post(
            f"{urls[i % 2]}/v1/agents/support/invoke", json={"input": f"q{i}", "user_id": "kim"}, timeout=120
        )
        codes.append(r.status_code)
    assert codes == [200] * 5
    for url in urls:  # both replicas now refuse kim, and no other user
        r = HTTP.post(
            f"{url}/v1/agents/support/invoke", json={"input": "more", "user_id": "kim"}, timeout=120
        )
        _refused(r, "user 'kim' has used its 5 requests per minute")
        r = HTTP.post(f"{url}/v1/agents/support/invoke", json={"input": "hi", "user_id": "lee"}, timeout=120)
        assert r.status_code == 200, r.text
    held = redis.Redis.from_url(REDIS_DB7).hgetall(f"{{{prefix}}}:rl:user:kim")
    assert sum(int(v) for k, v in held.items() if k.endswith(b":r")) == 5  # refusals count nowhere


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
def test_redis_going_away_follows_the_policy(
    serve_project: Callable[..., Served], tmp_path: Path, policy: str
) -> None:
    with throwaway_redis(tmp_path) as r:
        served = serve_project(
            _limits(
                f"  backend: redis\n  redis_url: {r.url}\n  redis_timeout_s: 0.3\n"
                f"  on_unavailable: {policy}\n  per_user: {{requests_per_minute: 50}}\n"
            )
        )
        c = served.client()
        assert _invoke(c, "before", user_id="pat").status_code == 200
        r.stop()
        down = _invoke(c, "while down", user_id="pat")
        if policy == "fail_closed":
            assert down.status_code == 503, down.text
            assert down.headers["Retry-After"] == "5"
            assert "rate_limits.on_unavailable is fail_closed" in down.json()["error"]["message"]
        else:
            assert down.status_code == 200, down.text
        assert "rate_limits_unavailable" in served.logs.getvalue()
        scrape = c.get("/metrics").text
        assert _total(scrape, f'shipyard_rate_limits_unavailable_total{{policy="{policy}"}}') == 1
        r.start()  # Redis is back: checked and counted again, without a restart
        wait_until(
            lambda: _invoke(c, "after", user_id="pat").status_code == 200, "requests to be let in again"
        )
        held = redis.Redis.from_url(r.url).hgetall(f"{{{served.cfg.rate_limits.key_prefix}}}:rl:user:pat")
        assert sum(int(v) for k, v in held.items() if k.endswith(b":r")) >= 1


# /metrics with `shipyard serve --workers 2` (prometheus_client multiprocess mode) -------------------
def _served_by_pid(folder: Path) -> dict[int, float]:
    """Interactions each worker counted, from the metric files the workers keep in `folder`."""
    from prometheus_client.mmap_dict import MmapedDict

    counted: dict[int, float] = {}
    for f in folder.glob("counter_*.db"):
        pid = int(f.stem.split("_")[-1])
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(f)):
            if json.loads(key)[0] == "shipyard_interactions":
                counted[pid] = counted.get(pid, 0.0) + value
    return counted


def _total(text: str, name: str) -> float:
    """The sum of the series of `name` (a metric name, or a name with all its labels) in a scrape."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def test_metrics_of_two_workers_count_every_request(tmp_path: Path, prefix: str) -> None:
    project = fault_project(tmp_path / "p")
    config = project / "shipyard.yaml"
    text = config.read_text()
    assert "budgets:\n  limits:" in text  # the demo's budget: counted in Redis, as workers need
    # redis_timeout_s: a starved CI machine is not a Redis outage. At the default 0.5 s a worker whose
    # event loop is busy with its other requests can take its budget's Redis reply for a timeout; the
    # budget (fail_closed) then refuses the model call and the request answers 502, not 200.
    budgets = f"backend: redis\n  redis_url: {REDIS_DB7}\n  key_prefix: {prefix}\n  redis_timeout_s: 30"
    config.write_text(text.replace("budgets:\n  limits:", f"budgets:\n  {budgets}\n  limits:"))
    folder = tmp_path / "prom"  # a folder the user chose: used, and emptied of old files at start
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale")
    port = free_port()
    with open(tmp_path / "serve.out", "wb") as out, open(tmp_path / "serve.err", "wb") as err:
        proc = subprocess.Popen(
            [str(SHIPYARD), "serve", "--workers", "2", "--port", str(port), "--config", str(config)],
            cwd=project,
            stdout=out,
            stderr=err,
            env=env_with(PROMETHEUS_MULTIPROC_DIR=str(folder)),
        )
    url = f"http://127.0.0.1:{port}"
    sent = 0
    try:
        wait_until(lambda: _up(url, proc, tmp_path), "both workers to serve")

        def both_served() -> bool:
            nonlocal sent
            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(lambda i: _post(url, f"question {sent + i}"), range(8)))
            assert codes == [200] * 8, codes
            sent += 8
            return len([n for n in _served_by_pid(folder).values() if n > 0]) >= 2

        wait_until(both_served, "requests to reach both workers")
        assert not (folder / "counter_1.db").exists()
        wait_until(lambda: sum(_served_by_pid(folder).values()) == sent, "every interaction to be counted")
        for _ in range(10):  # whichever worker answers the scrape, it shows the server's total
            scrape = HTTP.get(f"{url}/metrics", timeout=60)
            assert scrape.status_code == 200
            assert _total(scrape.text, "shipyard_interactions_total") == sent
        # a worker killed: the supervisor replaces it and drops its live gauges; its counts stay
        victim = max(_served_by_pid(folder), key=lambda pid: _served_by_pid(folder)[pid])
        assert (folder / f"gauge_livemin_{victim}.db").exists()
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: not (folder / f"gauge_livemin_{victim}.db").exists(), "the dead worker's gauges to go"
        )
        wait_until(lambda: _up(url, proc, tmp_path), "the server to answer after the worker died")
        scrape = HTTP.get(f"{url}/metrics", timeout=60)
        assert _total(scrape.text, "shipyard_interactions_total") == sent
        assert _total(scrape.text, "shipyard_config_file_valid") == 1  # livemin: one series, not one per pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def test_workers_need_shared_rate_limit_counters(tmp_path: Path) -> None:
    project = fault_project(
        tmp_path / "p", extra_yaml="\nrate_limits:\n  per_user: {requests_per_minute: 5}\n"
    )
    config = project / "shipyard.yaml"
    config.write_text(
        config.read_text().replace("budgets:\n  limits:", "budgets:\n  backend: redis\n  limits:")
    )
    done = subprocess.run(
        [str(SHIPYARD), "serve", "--workers", "2", "--port", str(free_port()), "--config", str(config)],
        cwd=project,
        env=env_with(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2, done.stderr
    assert "rate_limits.backend memory counts in one process" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def _up(url: str, proc: subprocess.Popen[bytes], tmp_path: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(
            f"serve exited {proc.returncode}: {(tmp_path / 'serve.err').read_text()[-2000:]}"
        )
    try:
        return HTTP.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _post(url: str, text: str) -> int:
    return HTTP.post(f"{url}/v1/agents/support/invoke", json={"input": text}, timeout=120).status_code
