"""A running server takes config changes without a restart (issue 9, "Config changes without a restart").

The finding: a server started before a version was added to shipyard.yaml gave that version's canary
0% of the traffic while the CLI said 10%. Here a served demo project gets a new version in its file,
reloads (file change, SIGHUP on a real `shipyard serve`, the admin endpoint, a Redis notice from
another replica), and the canary of that version serves exactly the sessions the assigner puts in its
bucket. An invalid edit keeps the running config serving and says what is wrong, where.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from server_helpers import HTTP, Served, free_port, run_in_thread
from waiting import wait_until
from yaml_sections import add_yaml

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.rollout import Deployment, assign
from shipyard.server import create_app
from shipyard.server._malloc import MALLOC_ARENAS, MMAP_THRESHOLD
from shipyard.store import Store

REDIS_URL = "redis://127.0.0.1:6379/0"
NO_WATCH = "server:\n  reload: {watch: false}\n"  # so that the trigger under test is the one that reloads


def no_watch(text: str) -> str:
    """`text` with its server section's watcher off (a second `server:` block is a config error)."""
    if "\nserver:\n" in text:
        return text.replace("\nserver:\n", "\n" + NO_WATCH, 1)
    return text + NO_WATCH


def fast_watch(text: str) -> str:
    """The demo's server section with its watcher looking every 0.2 s rather than every 2 s: the tests
    of the watcher wait for its looks."""
    assert "\nserver:\n" in text
    return text.replace("\nserver:\n", "\nserver:\n  reload: {watch: true, interval_s: 0.2}\n", 1)


def _rewrite(root: Path, text: str) -> str:
    """Replace shipyard.yaml at once, as editors and config management do; returns its sha256."""
    path = root / "shipyard.yaml"
    tmp = path.with_name("shipyard.yaml.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return hashlib.sha256(text.encode()).hexdigest()


def edit(root: Path, change: Callable[[str], str]) -> str:
    return _rewrite(root, change((root / "shipyard.yaml").read_text()))


def add_version(root: Path, base: str | None = None) -> str:
    """A new version of `support`, 1.9.0: a copy of the 1.2 prompt bundle with its own version.txt,
    added to the agent's `versions:` of the file (or of `base`, a text of it). Returns the new
    file's sha256."""
    bundle = root / "prompts" / "support" / "v1.9"
    if not bundle.exists():
        shutil.copytree(root / "prompts" / "support" / "v1.2", bundle)
        (bundle / "version.txt").write_text("1.9.0\n")
    line = "      - prompts: prompts/support/v1.2\n"
    text = base if base is not None else (root / "shipyard.yaml").read_text()
    return _rewrite(root, text.replace(line, f"{line}      - prompts: prompts/support/v1.9\n", 1))


def config_of(c: httpx.Client) -> dict[str, Any]:
    r = c.get("/admin/config")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def wait_reload(c: httpx.Client, config_hash: str) -> dict[str, Any]:
    """The result of the reload that read the file with this hash (waited for, not timed)."""
    found: dict[str, Any] = {}

    def read() -> bool:
        last = config_of(c)["last_reload"]
        if last and last["config_hash"] == config_hash:
            found.update(last)
            return True
        return False

    wait_until(read, f"a reload of the file with hash {config_hash[:12]}")
    return found


def version_ids(c: httpx.Client) -> dict[str, str]:
    versions = c.get("/admin/versions").json()["agents"]["support"]["versions"]
    return {v["label"]: v["id"] for v in versions}


def invoke(c: httpx.Client, session: str) -> dict[str, Any]:
    r = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "session_id": session})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def passed_gate(store: Store, version: str) -> None:
    """A production gate run of `version` that passed (a canary needs one)."""
    run = store.create_eval_run("support", version, ["evals/support/broad.yaml"], stage="production")
    store.finish_eval_run(run, "finished", {"counts": {}}, {"verdict": "PASS", "reasons": [], "rules": 2})


def serving_a_deployment(c: httpx.Client, store: Store) -> None:
    """Deploy 1.0.0 as the stable version and serve a request: the server is in production before
    the new version exists (so its assigner has looked at the versions it can run)."""
    passed_gate(store, version_ids(c)["1.0.0"])
    r = c.post("/admin/rollouts/support/deploy", json={"version": "1.0.0"})
    assert r.status_code == 200, r.text
    wait_until(lambda: invoke(c, "before")["version"] == version_ids(c)["1.0.0"], "the deployment to serve")


def canary_takes_its_share(c: httpx.Client, store: Store, label: str = "1.9.0") -> None:
    """Start a 10% canary of `label` through the admin API; the sessions the assigner buckets into
    the canary are served by it, and the others by the stable version."""
    new = version_ids(c)[label]
    passed_gate(store, new)
    r = c.post(
        "/admin/rollouts/support/canary",
        json={
            "version": label,
            "steps": [10, 50, 100],
            "min_interactions": 100_000,
            "min_duration_s": 86_400,
        },
    )
    assert r.status_code == 200, r.text
    dep = Deployment.from_row(r.json()["deployment"])
    assert dep.candidate_version == new and dep.weight == 10
    sessions = [f"reload-{i}" for i in range(60)]
    expected = {s: assign(dep, s) for s in sessions}
    in_canary = [s for s in sessions if expected[s] == new]
    assert 0 < len(in_canary) < len(sessions)
    # the assigner reads deployments in the background: wait until it serves this one
    wait_until(lambda: invoke(c, in_canary[0])["version"] == new, "the canary to take its traffic")
    served = {s: invoke(c, s)["version"] for s in sessions}
    assert served == expected


@pytest.fixture
def project(demo_project: Callable[..., Any]) -> Callable[..., Path]:
    def make(edit: Callable[[str], str] | None = None) -> Path:
        cfg = demo_project(edit)
        root: Path = cfg.root
        return root

    return make


# the three triggers ------------------------------------------------------------------------------------
def test_a_version_added_to_the_file_gets_its_canary_share_once_the_watcher_reloads(
    serve_project: Callable[..., Served],
) -> None:
    s = serve_project(fast_watch)
    with s.client() as c:
        before = config_of(c)
        assert before["path"] == str(s.cfg.path) and before["watch"]["enabled"]
        assert before["hash"] == hashlib.sha256(s.cfg.path.read_bytes()).hexdigest()  # type: ignore[union-attr]
        assert "1.9.0" not in version_ids(c)
        serving_a_deployment(c, s.state.store)
        new_hash = add_version(s.cfg.root)
        result = wait_reload(c, new_hash)
        assert result["trigger"] == "file" and result["outcome"] == "applied", result
        added = result["changes"]["versions"]["support"]["added"]
        assert [v.split("+")[0] for v in added] == ["support@1.9.0"]
        now = config_of(c)
        assert now["hash"] == new_hash and now["loaded_at"] > before["loaded_at"]
        assert any(f.endswith("v1.9") for f in now["watch"]["files"])  # the new bundle is watched too
        canary_takes_its_share(c, s.state.store)
    assert '"event":"config_reloaded"' in s.logs.getvalue().replace(" ", "")


def test_the_admin_endpoint_reloads_and_says_what_changed(serve_project: Callable[..., Served]) -> None:
    s = serve_project(no_watch)
    with s.client() as c:
        serving_a_deployment(c, s.state.store)
        new_hash = add_version(s.cfg.root)
        r = c.post("/admin/config/reload")
        assert r.status_code == 200, r.text
        result = r.json()["reload"]
        assert result["trigger"] == "api" and result["outcome"] == "applied"
        assert result["config_hash"] == new_hash and result["changes"]["fields"] == [
            "agents.support.versions"
        ]
        assert result["needs_restart"] == [] and result["code_changed"] == []
        assert r.json()["replicas_notified"] is None  # no Redis configured
        assert config_of(c)["last_reload"] == result
        canary_takes_its_share(c, s.state.store)
        again = c.post("/admin/config/reload").json()["reload"]
        assert again["outcome"] == "unchanged" and again["changes"] == {}
        metrics = c.get("/metrics").text
        assert 'shipyard_config_reloads_total{outcome="applied",trigger="api"} 1.0' in metrics
        assert 'shipyard_config_reloads_total{outcome="unchanged",trigger="api"} 1.0' in metrics


def test_a_reload_that_drops_the_deployed_version_says_so(serve_project: Callable[..., Served]) -> None:
    """An edited prompt bundle makes its version a new id: the deployment's stable version is gone
    from the reloaded config, and the server says which, and what this replica serves instead."""
    s = serve_project(no_watch)
    with s.client() as c:
        serving_a_deployment(c, s.state.store)
        deployed = version_ids(c)["1.0.0"]
        prompt = s.cfg.root / "prompts" / "support" / "v1.0" / "system_prompt.txt"
        prompt.write_text(prompt.read_text() + "\nAlways greet the customer by name.\n")
        r = c.post("/admin/config/reload")
        assert r.status_code == 200, r.text
        changes = r.json()["reload"]["changes"]["versions"]["support"]
        assert changes["removed"] == [deployed] and version_ids(c)["1.0.0"] != deployed
    lines = [
        json.loads(line) for line in s.logs.getvalue().splitlines() if "deployed_version_removed" in line
    ]
    assert [(e["agent"], e["stable"], e["level"]) for e in lines] == [("support", deployed, "warning")]
    assert "candidate" not in lines[0] and "answers 503" in lines[0]["message"]


def test_reload_needs_an_admin_key(serve_project: Callable[..., Served]) -> None:
    s = serve_project(no_watch)
    with s.client() as c:  # open until the first key exists, which this request makes
        read = c.post("/admin/keys", json={"role": "read"}).json()["key"]
    with s.client(read) as c:
        assert c.get("/admin/config").status_code == 200
        r = c.post("/admin/config/reload")
        assert r.status_code == 403 and config_of(c)["last_reload"] is None


# SIGHUP on a real `shipyard serve` ---------------------------------------------------------------------
@pytest.fixture
def shipyard_serve(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str, Path]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(root: Path, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
        port = free_port()
        log = root / "serve.log"
        shipyard = Path(sys.executable).with_name("shipyard")
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(shipyard), "serve", "--port", str(port), "--config", str(root / "shipyard.yaml"), *args],
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return HTTP.get(url + "/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, "shipyard serve to answer /readyz")
        return proc, url, log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def test_sighup_reloads_a_running_shipyard_serve_and_sigterm_still_stops_it_gracefully(
    project: Callable[..., Path], shipyard_serve: Callable[..., Any]
) -> None:
    root = project(no_watch)
    proc, url, log = shipyard_serve(root)
    new_hash = add_version(root)
    proc.send_signal(signal.SIGHUP)
    with httpx.Client(base_url=url, timeout=60) as c:
        result = wait_reload(c, new_hash)
        assert result["trigger"] == "signal" and result["outcome"] == "applied", result
        with Store.from_config(load_config(root / "shipyard.yaml")) as store:
            canary_takes_its_share(c, store)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) in (0, -signal.SIGTERM)  # uvicorn re-raises it once shut down
    assert _events(log, "server_stopped"), log.read_text()[-3000:]


def test_sighup_to_the_parent_reloads_every_worker(
    project: Callable[..., Path], shipyard_serve: Callable[..., Any]
) -> None:
    root = project(no_watch)
    # the demo's session budget keeps its counters in one process, which `serve` refuses to split
    # over workers: this test is about reloads, so it runs without budgets
    edit(root, lambda t: re.sub(r"^budgets:\n(?:[ #].*\n|\n)*?(?=^\S)", "", t, flags=re.M))
    proc, url, log = shipyard_serve(root, "--workers", "2")
    wait_until(lambda: len(_events(log, "server_started")) == 2, "both workers to start")
    add_version(root)
    proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: len({e["pid"] for e in _events(log, "config_reloaded") if e["trigger"] == "signal"}) == 2,
        "both workers to reload",
    )
    assert proc.poll() is None  # the workers reloaded in place: uvicorn did not restart them
    assert len(_events(log, "server_started")) == 2
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(6):  # whichever worker answers knows the new version
            assert "1.9.0" in version_ids(c)
    # the supervisor killed outright: its workers notice and stop too, rather than serve on as orphans
    workers = {e["pid"] for e in _events(log, "config_reloaded") if e["trigger"] == "signal"}
    assert len(workers) == 2
    if platform.libc_ver()[0] == "glibc":  # each worker started with the parent's malloc settings
        arenas = os.environ.get("MALLOC_ARENA_MAX") or str(MALLOC_ARENAS)
        threshold = os.environ.get("MALLOC_MMAP_THRESHOLD_") or str(MMAP_THRESHOLD)
        for pid in workers:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"MALLOC_ARENA_MAX={arenas}".encode() in environ
            assert f"MALLOC_MMAP_THRESHOLD_={threshold}".encode() in environ
    proc.kill()
    proc.wait()

    def gone(pid: int) -> bool:  # exited: no such process, or a zombie its new parent has not reaped
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (FileNotFoundError, ProcessLookupError):
            return True

    wait_until(lambda: all(gone(pid) for pid in workers), "the orphaned workers to stop")


# a Redis notice reaches the other replicas --------------------------------------------------------------
def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis at 127.0.0.1:6379")
def test_a_reload_through_one_replica_reaches_the_other_through_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_REDIS_URL", REDIS_URL)
    running = []
    replicas = []
    try:
        for name in ("a", "b"):  # each replica has its own copy of the project, as on its own machine
            root = tmp_path / name
            copy_project(root)
            _rewrite(root, no_watch((root / "shipyard.yaml").read_text()))
            app = create_app(load_config(root / "shipyard.yaml"), log_stream=io.StringIO())
            port = free_port()
            running.append(run_in_thread(app, port))
            replicas.append((root, f"http://127.0.0.1:{port}"))
        (a_root, a_url), (b_root, b_url) = replicas
        with httpx.Client(base_url=a_url, timeout=60) as a, httpx.Client(base_url=b_url, timeout=60) as b:
            wait_until(lambda: config_of(b)["notices"]["subscribed"], "replica b to listen for notices")
            add_version(a_root)
            b_hash = add_version(b_root)
            r = a.post("/admin/config/reload")
            assert r.status_code == 200 and r.json()["reload"]["outcome"] == "applied", r.text
            assert r.json()["replicas_notified"] >= 1
            result = wait_reload(b, b_hash)
            assert result["trigger"] == "notice" and result["outcome"] == "applied", result
            assert version_ids(a)["1.9.0"] == version_ids(b)["1.9.0"]
    finally:
        for server, thread in running:
            server.should_exit = True
            thread.join(timeout=60)


# invalid edits keep the running config --------------------------------------------------------------------
BROKEN_MODULE = 'raise RuntimeError("cannot connect to the vector store")\n'


def _yaml_error(root: Path) -> tuple[str, int, str | None]:
    text = (root / "shipyard.yaml").read_text()
    line = text.splitlines().index("agents:") + 2
    return text.replace("agents:\n", "agents:\n  bad: value: here\n", 1), line, None


def _unknown_key(root: Path) -> tuple[str, int, str | None]:
    text = (root / "shipyard.yaml").read_text()
    line = text.splitlines().index("    model: {name: scripted-small}") + 2
    new = text.replace(
        "    model: {name: scripted-small}\n", "    model: {name: scripted-small}\n    timeout: 5\n", 1
    )
    return new, line, "agents.support.timeout"


def _missing_prompts(root: Path) -> tuple[str, int, str | None]:
    text = (root / "shipyard.yaml").read_text()
    anchor = "      - prompts: prompts/support/v1.2\n"
    new = text.replace(anchor, anchor + "      - prompts: prompts/support/v9.9\n", 1)
    return (
        new,
        new.splitlines().index("      - prompts: prompts/support/v9.9") + 1,
        "agents.support.versions.2.prompts",
    )


def _failing_import(root: Path) -> tuple[str, int, str | None]:
    (root / "vector_agent.py").write_text(BROKEN_MODULE)
    text = (root / "shipyard.yaml").read_text()
    agent = "  search:\n    entry: vector_agent:search\n    model: {name: scripted-small}\n"
    new = text.replace("agents:\n", "agents:\n" + agent, 1)
    return new, new.splitlines().index("    entry: vector_agent:search") + 1, "agents.search.entry"


@pytest.mark.parametrize(
    ("bad_edit", "says"),
    [
        (_yaml_error, "malformed YAML"),
        (_unknown_key, "unknown key"),
        (_missing_prompts, "v9.9"),
        (_failing_import, "cannot connect to the vector store"),
    ],
    ids=["yaml-error", "unknown-key", "missing-prompt-folder", "entry-fails-to-import"],
)
def test_an_invalid_edit_keeps_the_running_config_and_says_where(
    serve_project: Callable[..., Served],
    bad_edit: Callable[[Path], tuple[str, int, str | None]],
    says: str,
) -> None:
    s = serve_project(no_watch)
    root = s.cfg.root
    with s.client() as c:
        before, ids = config_of(c), version_ids(c)
        text, line, field = bad_edit(root)
        bad_hash = _rewrite(root, text)
        r = c.post("/admin/config/reload")
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["type"] == "config_error" and "the previous one still serves" in error["message"]
        result = error["reload"]
        assert result["outcome"] == "failed" and result["config_hash"] == bad_hash
        problem = result["error"]
        assert says in problem["message"], problem
        assert problem["file"] == str(root / "shipyard.yaml") and problem["line"] == line, problem
        if field is not None:
            assert problem["field"] == field
        # the old config still serves, and says what is wrong with the new one
        now = config_of(c)
        assert now["hash"] == before["hash"] and now["loaded_at"] == before["loaded_at"]
        assert now["file_valid"] is False and now["last_reload"] == result
        assert version_ids(c) == ids and invoke(c, "still-serving")["version"] == ids["1.0.0"]
        assert c.get("/readyz").status_code == 200
        metrics = c.get("/metrics").text
        assert 'shipyard_config_reloads_total{outcome="failed",trigger="api"} 1.0' in metrics
        assert "shipyard_config_file_valid 0.0" in metrics
    failed = [json.loads(x) for x in s.logs.getvalue().splitlines() if '"config_reload_failed"' in x]
    assert failed and failed[-1]["line"] == line and failed[-1]["file"] == str(root / "shipyard.yaml")


def test_the_watcher_reports_an_invalid_file_then_takes_the_fixed_one(
    serve_project: Callable[..., Served],
) -> None:
    s = serve_project(fast_watch)
    root = s.cfg.root
    good = (root / "shipyard.yaml").read_text()
    with s.client() as c:
        bad_hash = _rewrite(root, good.replace("agents:\n", "agents:\n  oops: [\n", 1))
        result = wait_reload(c, bad_hash)
        assert result["trigger"] == "file" and result["outcome"] == "failed"
        assert "malformed YAML" in result["error"]["message"] and result["error"]["line"]
        assert config_of(c)["file_valid"] is False
        fixed_hash = add_version(root, good)  # the edit that was meant, on the good file
        assert fixed_hash != bad_hash
        result = wait_reload(c, fixed_hash)
        assert result["outcome"] == "applied" and config_of(c)["file_valid"] is True
        assert "shipyard_config_file_valid 1.0" in c.get("/metrics").text
        assert "1.9.0" in version_ids(c)


# what a reload applies, and what waits for a restart ---------------------------------------------------------
COMPLETION_RULE = "    - {name: completion, metric: completion_rate, window: 15m, warn: 0.9, alert: 0.85}\n"
RULES = "alerts:\n  rules:\n" + COMPLETION_RULE


def test_settings_read_at_start_wait_for_a_restart_and_the_rest_applies(
    serve_project: Callable[..., Served],
) -> None:
    s = serve_project(lambda t: add_yaml(no_watch(t), RULES))
    st = s.state
    with s.client() as c:
        builtin = [r["name"] for r in c.get("/admin/alerts").json()["rules"]][1:]  # dead letters, ...
        kept = st.alerts.states()[0]  # the `completion` rule's state: the reload leaves it as it is
        port, batch = st.cfg.server.port, st.cfg.store.batch_size
        new_rule = "    - {name: slow, metric: p95_latency_s, window: 2d, warn: 8, alert: 10}\n"
        edit(
            s.cfg.root,
            lambda t: (
                t.replace(NO_WATCH, NO_WATCH + "  port: 8123\n  trace_sample_rate: 0.25\n", 1).replace(
                    COMPLETION_RULE, COMPLETION_RULE + new_rule, 1
                )
                + "store:\n  batch_size: 17\n"
            ),
        )
        result = c.post("/admin/config/reload").json()["reload"]
        assert result["outcome"] == "applied", result
        waiting = result["needs_restart"]
        assert [w["field"] for w in waiting] == ["server.port", "store"]
        assert waiting[0] == {"field": "server.port", "at_start": port, "in_file": 8123}
        assert waiting[1]["at_start"]["batch_size"] == batch and waiting[1]["in_file"]["batch_size"] == 17
        assert result["changes"]["fields"] == ["alerts.rules", "server.trace_sample_rate"]
        # applied: the alert rules, the KPI horizon, the sample rate; waiting: the port and the store
        rules = [r["name"] for r in c.get("/admin/alerts").json()["rules"]]
        assert rules == ["completion", "slow", *builtin] and st.alerts.states()[0] is kept
        assert st.window.horizon_s == 4 * 86400 and st.rt.sampler.rate == 0.25
        assert st.cfg.server.port == port and st.cfg.store.batch_size == batch
        assert st.cfg.path == s.cfg.path and st.cfg.root == s.cfg.root  # the config still knows its file
        assert config_of(c)["needs_restart"] == waiting
        assert "shipyard_config_restart_pending 2.0" in c.get("/metrics").text


AGENT_CODE = """from shipyard import agent


@agent("echo")
async def echo(user_input, ctx):
    return "echo: " + user_input
"""


@pytest.fixture
def echo_served(demo_project: Callable[..., Any], tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "echo_agent_reload.py").write_text(AGENT_CODE)

    def with_echo(t: str) -> str:
        agent = "  echo:\n    entry: echo_agent_reload:echo\n    model: {name: scripted-small}\n"
        return no_watch(t.replace("agents:\n", "agents:\n" + agent, 1))

    cfg = demo_project(with_echo)
    logs = io.StringIO()
    app = create_app(cfg, log_stream=logs)
    port = free_port()
    server, thread = run_in_thread(app, port)
    yield Served(f"http://127.0.0.1:{port}", app.state.shipyard, logs, cfg)
    server.should_exit = True
    thread.join(timeout=60)


def test_agent_code_changed_on_disk_is_reported_and_needs_a_restart(echo_served: Served) -> None:
    s = echo_served
    with s.client() as c:
        first = c.post("/admin/config/reload").json()["reload"]
        assert first["outcome"] == "unchanged" and first["code_changed"] == []  # no false alarm
        echo_id = c.get("/admin/versions").json()["agents"]["echo"]["versions"][0]["id"]
        (s.cfg.root / "echo_agent_reload.py").write_text(AGENT_CODE.replace('"echo: "', '"ECHO: "'))
        result = c.post("/admin/config/reload").json()["reload"]
        assert result["outcome"] == "unchanged"
        (changed,) = result["code_changed"]
        assert changed["agent"] == "echo" and changed["module"] == "echo_agent_reload"
        assert "restart to load it" in changed["message"]
        assert str(s.cfg.root / "echo_agent_reload.py") in changed["files"]
        # the running code, and its version id, are still what was loaded
        r = c.post("/v1/agents/echo/invoke", json={"input": "hi"})
        assert r.json()["output"] == "echo: hi" and r.json()["version"] == echo_id
        assert config_of(c)["code_changed"] == result["code_changed"]


# requests in flight finish on the runtime they started on ------------------------------------------------------
SLOW_AGENT = """import asyncio
from pathlib import Path

from shipyard import agent

HERE = Path(__file__).parent


@agent("slow")
async def slow(user_input, ctx):
    (HERE / "slow.started").write_text("1")
    while not (HERE / "slow.release").exists():
        await asyncio.sleep(0.01)
    return "done: " + user_input
"""


def test_a_request_in_flight_finishes_on_the_old_runtime_which_is_closed_after(
    demo_project: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "slow_agent_reload.py").write_text(SLOW_AGENT)
    agent = "  slow:\n    entry: slow_agent_reload:slow\n    model: {name: scripted-small}\n"
    cfg = demo_project(lambda t: no_watch(t.replace("agents:\n", "agents:\n" + agent, 1)))
    app = create_app(cfg, log_stream=io.StringIO())
    port = free_port()
    server, thread = run_in_thread(app, port)
    state = app.state.shipyard
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            old_rt = state.rt
            answer: dict[str, Any] = {}

            def call() -> None:
                answer["r"] = c.post("/v1/agents/slow/invoke", json={"input": "x"})

            caller = threading.Thread(target=call)
            caller.start()
            wait_until((tmp_path / "slow.started").exists, "the slow agent to start")
            add_version(tmp_path)
            result = c.post("/admin/config/reload").json()["reload"]
            assert result["outcome"] == "applied"
            assert state.rt is not old_rt and config_of(c)["draining_runtimes"] == 1
            (tmp_path / "slow.release").write_text("1")
            caller.join(timeout=120)
            assert answer["r"].status_code == 200 and answer["r"].json()["output"] == "done: x"
            wait_until(lambda: config_of(c)["draining_runtimes"] == 0, "the old runtime to be closed")
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def test_a_touch_is_not_a_reload(serve_project: Callable[..., Served]) -> None:
    s = serve_project(fast_watch)
    path = s.cfg.path
    assert path is not None
    with s.client() as c:
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # same content
        looks = config_of(c)["watch"]["looks"]
        wait_until(lambda: config_of(c)["watch"]["looks"] >= looks + 2, "the watcher to look twice")
        assert config_of(c)["last_reload"] is None
