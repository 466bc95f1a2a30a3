"""Store round-trips on SQLite and PostgreSQL: interactions, spans, feedback, versions, evals, keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.config import ShipyardConfig
from shipyard.errors import NotFoundError, ShipyardError
from shipyard.evals._types import RepeatResult, ScoreResult
from shipyard.store import (
    InteractionRecord,
    SpanRecord,
    Store,
    StoreError,
    default_database_url,
    new_id,
    normalize_url,
)

Factory = Callable[..., InteractionRecord]


# interactions -------------------------------------------------------------------------------------
def test_interaction_round_trip_keeps_every_field(store: Store, record_factory: Factory) -> None:
    record = record_factory()
    store.write_interactions([record])
    got = store.get_interaction(record.id, spans=True)
    assert got is not None
    assert got.to_dict(spans=True) == record.to_dict(spans=True)
    assert got.tool_calls[0].result == {"status": "shipped", "items": [{"sku": "A-1", "qty": 2}]}
    assert [s.span_id for s in got.spans] == ["a1", "b2"]
    assert got.spans[0].end_ns == 9_000_000_000_000_000_000
    assert store.get_interaction(record.id).spans == []  # type: ignore[union-attr]  # spans only when asked


def test_values_json_cannot_hold_are_kept_as_text(store: Store, record_factory: Factory) -> None:
    record = record_factory(
        metadata={"when": datetime(2024, 5, 1, tzinfo=UTC), "tags": {"b"}, "obj": object()}
    )
    store.write_interactions([record])
    got = store.get_interaction(record.id)
    assert got is not None
    assert got.metadata["when"] == "2024-05-01T00:00:00+00:00"
    assert got.metadata["tags"] == ["b"]
    assert got.metadata["obj"].startswith("<object object")


def test_writing_the_same_records_twice_stores_them_once(store: Store, record_factory: Factory) -> None:
    records = [record_factory() for _ in range(3)]
    store.write_interactions(records)
    store.write_interactions(records)
    store.write_spans(records[0].spans)
    assert store.count_interactions() == 3
    assert len(store.get_trace(records[0].trace_id)) == 2


def test_find_by_id_or_trace_id(store: Store, record_factory: Factory) -> None:
    older = record_factory(trace_id="trace-x", created_at=1000.0)
    newer = record_factory(trace_id="trace-x", created_at=2000.0, spans=[])
    store.write_interactions([older, newer])
    assert store.find_interaction(older.id).id == older.id  # type: ignore[union-attr]
    found = store.find_interaction("trace-x", spans=True)
    assert found is not None and found.id == newer.id
    assert len(found.spans) == 2  # the trace's spans, whichever interaction brought them
    assert store.find_interaction("nope") is None
    assert store.get_interaction("nope") is None


def test_get_trace_orders_spans_by_start(store: Store) -> None:
    spans = [SpanRecord("t9", f"s{i}", None, f"step {i}", "internal", 100 - i, 200) for i in range(5)]
    assert store.write_spans(spans) == 5
    assert [s.name for s in store.get_trace("t9")] == [f"step {i}" for i in reversed(range(5))]
    assert store.get_trace("missing") == []


def test_list_filters(store: Store, record_factory: Factory) -> None:
    rows = [
        record_factory(agent="support", version="v1", session_id="s1", created_at=100.0),
        record_factory(agent="support", version="v2", session_id="s1", status="failed", created_at=200.0),
        record_factory(
            agent="support", version="v2", session_id="s2", traffic_source="eval", created_at=300.0
        ),
        record_factory(agent="billing", version="b1", session_id="s3", user_id="u9", created_at=400.0),
    ]
    store.write_interactions(rows)

    def ids(**kw: object) -> list[str]:
        return [r.id for r in store.list_interactions(**kw)]  # type: ignore[arg-type]

    assert ids() == [r.id for r in reversed(rows)]  # newest first
    assert ids(oldest_first=True) == [r.id for r in rows]
    assert ids(agent="support", version="v2") == [rows[2].id, rows[1].id]
    assert ids(session_id="s1") == [rows[1].id, rows[0].id]
    assert ids(status="failed") == [rows[1].id]
    assert ids(traffic_source="eval") == [rows[2].id]
    assert ids(user_id="u9") == [rows[3].id]
    assert ids(since=200.0, until=400.0) == [rows[2].id, rows[1].id]
    assert ids(since=datetime.fromtimestamp(300.0, UTC)) == [rows[3].id, rows[2].id]
    assert ids(limit=2) == [rows[3].id, rows[2].id]
    assert ids(agent="nobody") == []
    with_spans = store.list_interactions(agent="billing", spans=True)
    assert [s.span_id for s in with_spans[0].spans] == ["a1", "b2"]
    assert store.count_interactions(agent="support") == 3
    assert store.count_interactions(traffic_source="eval") == 1


# feedback ---------------------------------------------------------------------------------------------
def test_feedback_by_interaction_id_and_by_trace_id(store: Store, record_factory: Factory) -> None:
    a, b = record_factory(), record_factory()
    store.write_interactions([a, b])
    got = store.record_feedback(a.id, thumbs=-1, comment="wrong order")
    assert got.feedback is not None
    assert (got.feedback["thumbs"], got.feedback["comment"], got.feedback["score"]) == (
        -1,
        "wrong order",
        None,
    )
    assert got.feedback["at"] > 0
    # later feedback updates what it names and keeps the rest
    again = store.record_feedback(a.id, score=4.5)
    assert again.feedback is not None
    assert (again.feedback["thumbs"], again.feedback["score"], again.feedback["comment"]) == (
        -1,
        4.5,
        "wrong order",
    )

    by_trace = store.record_feedback(b.trace_id, thumbs=1)
    assert by_trace.id == b.id and by_trace.feedback is not None and by_trace.feedback["thumbs"] == 1
    assert store.get_interaction(b.id).feedback["thumbs"] == 1  # type: ignore[union-attr,index]
    untouched = record_factory()
    store.write_interactions([untouched])
    assert store.get_interaction(untouched.id).feedback is None  # type: ignore[union-attr]


def test_bad_feedback_is_refused_and_changes_nothing(store: Store, record_factory: Factory) -> None:
    r = record_factory()
    store.write_interactions([r])
    with pytest.raises(NotFoundError, match="no interaction with id or trace id 'missing'"):
        store.record_feedback("missing", thumbs=1)
    with pytest.raises(ShipyardError, match="thumbs must be 1"):
        store.record_feedback(r.id, thumbs=5)
    with pytest.raises(ShipyardError, match="at least one of"):
        store.record_feedback(r.id)
    with pytest.raises(ShipyardError, match="finite"):
        store.record_feedback(r.id, score=float("nan"))
    assert store.get_interaction(r.id).feedback is None  # type: ignore[union-attr]


# agent versions ----------------------------------------------------------------------------------------
def test_agent_versions_are_recorded_once_and_touched_after(store: Store) -> None:
    comps = {"code": "c" * 12, "prompts": "p" * 12, "model": "m" * 12}
    store.record_agent_version("support", "support@1.0.0+aaa", "1.0.0", "aaa", comps)
    first = store.list_agent_versions()[0]
    store.record_agent_version("support", "support@1.0.0+aaa", "1.0.0", "aaa", comps)
    store.record_agent_version("billing", "billing@2+bbb", "2", "bbb", {})
    rows = store.list_agent_versions("support")
    assert len(rows) == 1
    assert rows[0]["components"] == comps
    assert rows[0]["first_seen"] == first["first_seen"]
    assert rows[0]["last_seen"] >= first["last_seen"]
    assert rows[0]["first_seen"].tzinfo is not None
    assert {r["version"] for r in store.list_agent_versions()} == {"support@1.0.0+aaa", "billing@2+bbb"}


# eval runs ----------------------------------------------------------------------------------------------
def test_eval_run_results_and_approvals_round_trip(store: Store) -> None:
    baseline = store.create_eval_run("support", "v0", ["smoke"], stage="pre-merge")
    store.finish_eval_run(baseline, "finished", {"pass_rate": 0.9}, {"verdict": "PASS", "reasons": []})
    run_id = store.create_eval_run(
        "support",
        "v1",
        ["smoke", "broad"],
        stage="pre-merge",
        config={"repeats": 3},
        baseline_run_id=baseline,
    )
    running = store.get_eval_run(run_id)
    assert running is not None
    assert (running["status"], running["suites"], running["finished_at"]) == (
        "running",
        ["smoke", "broad"],
        None,
    )

    results = [
        RepeatResult(
            case_id="refund-1",
            category="functional",
            repeat=r,
            outcome="PASS" if r else "FAIL",
            scores=[
                ScoreResult(
                    scorer="contains", passed=bool(r), score=float(r), reason="ok" if r else "missing"
                )
            ],
            output="Refunded.",
            status="completed",
            latency_ms=12.5,
            cost_usd=0.001,
            judge_cost_usd=0.0002,
            tool_calls=[{"name": "refund", "arguments": {"order": "1"}, "status": "success"}],
            interaction_id=new_id(),
            trace_id=new_id(),
            tags=["refunds"],
            suite="smoke",
            judge_input_tokens=40,
        )
        for r in range(2)
    ]
    raw = {
        "case_id": "hello",
        "category": "safety",
        "repeat": 0,
        "outcome": "ERROR",
        "error": "judge timed out",
    }
    assert store.write_eval_results(run_id, [*results, raw]) == 3

    stored = store.eval_results(run_id)
    assert [r["case_id"] for r in stored] == ["refund-1", "refund-1", "hello"]
    assert stored[0]["scores"][0]["reason"] == "missing" and stored[0]["scores"][0]["passed"] is False
    assert stored[1]["tool_calls"][0]["arguments"] == {"order": "1"}
    assert stored[1]["tags"] == ["refunds"] and stored[1]["judge_cost_usd"] == pytest.approx(0.0002)
    assert (stored[0]["suite"], stored[0]["judge_input_tokens"], stored[2]["suite"]) == ("smoke", 40, "")
    assert stored[2]["error"] == "judge timed out" and stored[2]["scores"] == [] and stored[2]["output"] == ""
    # the stored dict rebuilds the evals type
    rebuilt = RepeatResult(**{k: v for k, v in stored[1].items() if k != "run_id"})
    assert rebuilt.outcome == "PASS" and rebuilt.latency_ms == 12.5 and rebuilt.suite == "smoke"

    decision = {"verdict": "MARGINAL", "reasons": ["functional pass rate 0.83 < 0.9"]}
    store.finish_eval_run(run_id, "finished", {"functional": {"pass_rate": 0.83}}, decision)
    run = store.get_eval_run(run_id)
    assert run is not None
    assert run["decision"] == decision and run["baseline_run_id"] == baseline
    assert run["config"] == {"repeats": 3} and run["finished_at"] >= run["started_at"]

    approval = store.add_approval(run_id, "alice", "known flaky case")
    assert [(a["by"], a["reason"]) for a in store.approvals(run_id)] == [("alice", "known flaky case")]
    assert approval["created_at"].tzinfo is not None
    assert store.approvals(baseline) == []


def test_listing_and_latest_eval_runs(store: Store) -> None:
    ids = []
    for version, stage in [
        ("v1", "pre-merge"),
        ("v1", "post-merge"),
        ("v2", "pre-merge"),
        ("v1", "pre-merge"),
    ]:
        ids.append(store.create_eval_run("support", version, ["smoke"], stage=stage))
    for run_id in ids[:3]:
        store.finish_eval_run(run_id, "finished")
    other = store.create_eval_run("billing", "b1", ["smoke"])
    store.finish_eval_run(other, "interrupted")

    assert [r["id"] for r in store.list_eval_runs("support", "v1", "pre-merge")] == [ids[3], ids[0]]
    assert len(store.list_eval_runs()) == 5
    assert len(store.list_eval_runs(limit=2)) == 2
    assert [r["id"] for r in store.list_eval_runs(status="interrupted")] == [other]
    latest = store.latest_eval_run("support", "v1", "pre-merge")
    assert latest is not None and latest["id"] == ids[0]  # ids[3] is still running
    running = store.latest_eval_run("support", "v1", "pre-merge", status=None)
    assert running is not None and running["id"] == ids[3]
    assert store.latest_eval_run("support", "v9") is None


def test_eval_mistakes_are_reported(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no eval run 'nope'"):
        store.finish_eval_run("nope", "finished")
    with pytest.raises(NotFoundError, match="no eval run 'nope'"):
        store.write_eval_results(
            "nope", [{"case_id": "a", "category": "functional", "repeat": 0, "outcome": "PASS"}]
        )
    with pytest.raises(NotFoundError, match="to approve"):
        store.add_approval("nope", "bob")
    run_id = store.create_eval_run("support", "v1", ["smoke"])
    with pytest.raises(ValueError, match="running, finished, interrupted, budget_exhausted"):
        store.finish_eval_run(run_id, "done")
    assert store.get_eval_run(run_id)["status"] == "running"  # type: ignore[index]


# API keys ---------------------------------------------------------------------------------------------
def test_api_keys(store: Store) -> None:
    admin = store.add_api_key("sy_adm1", "sha256:aaa", "admin", name="ops laptop")
    reader = store.add_api_key("sy_read", "sha256:bbb", "read")
    found = store.find_api_key_by_prefix("sy_adm1")
    assert found is not None and (found["hash"], found["role"], found["name"]) == (
        "sha256:aaa",
        "admin",
        "ops laptop",
    )
    assert store.find_api_key_by_prefix("sy_none") is None
    with pytest.raises(StoreError, match="already exists"):
        store.add_api_key("sy_adm1", "sha256:ccc", "admin")

    revoked = store.revoke_api_key(admin["id"])
    assert revoked["revoked_at"] is not None
    assert store.revoke_api_key("sy_adm1")["revoked_at"] == revoked["revoked_at"]  # by prefix, idempotent
    assert store.find_api_key_by_prefix("sy_adm1") is None
    assert store.find_api_key_by_prefix("sy_adm1", include_revoked=True) is not None
    assert [k["prefix"] for k in store.list_api_keys()] == ["sy_adm1", "sy_read"]
    assert [k["id"] for k in store.list_api_keys(include_revoked=False)] == [reader["id"]]
    with pytest.raises(NotFoundError):
        store.revoke_api_key("sy_none")


# opening -----------------------------------------------------------------------------------------------
def test_ping(store: Store) -> None:
    assert store.ping() is True


def test_default_is_sqlite_under_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    with Store(root=tmp_path) as store:
        assert store.dialect == "sqlite"
        assert store.url == default_database_url(tmp_path)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert (tmp_path / ".shipyard" / "shipyard.db").is_file()


def test_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ShipyardConfig.model_validate({"store": {"url": "sqlite:///data/records.db"}})
    cfg._root = tmp_path
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    with Store.from_config(cfg) as store:  # relative SQLite paths are relative to the project
        assert store.url == f"sqlite:///{tmp_path / 'data' / 'records.db'}"
    env_db = tmp_path / "env.db"
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", f"sqlite:///{env_db}")
    with Store.from_config(cfg) as store:
        assert store.url == f"sqlite:///{env_db}"
    explicit = tmp_path / "explicit.db"
    with Store(f"sqlite:///{explicit}") as store:  # an explicit URL beats the environment
        assert store.url == f"sqlite:///{explicit}"
    with Store() as store:
        assert store.url == f"sqlite:///{env_db}"


def test_normalize_url() -> None:
    assert normalize_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert normalize_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:///rel.db", Path("/proj")) == "sqlite:////proj/rel.db"
    assert normalize_url("sqlite:////abs.db", Path("/proj")) == "sqlite:////abs.db"
    assert normalize_url("sqlite://", Path("/proj")) == "sqlite://"


def test_bad_urls_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot parse the database URL"):
        Store("not a url", tmp_path)
    with pytest.raises(StoreError, match="unsupported database URL"):
        Store("nosuchdb://x/y", tmp_path)
    with pytest.raises(StoreError) as e:
        Store("postgresql://someone:secret@127.0.0.1:1/db", tmp_path)
    message = str(e.value)
    assert message.startswith("cannot open the database postgresql+psycopg://someone:***@127.0.0.1:1/db")
    assert "secret" not in message
    assert "SHIPYARD_DATABASE_URL" in (e.value.hint or "")
