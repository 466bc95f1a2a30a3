"""A record the store refuses for a NUL byte or a lone surrogate the agent produced is stored sanitized
(U+FFFD, `metadata.sanitized` names the fields), by `isolate` itself, so the journal's mover and the
BatchWriter both do it; only a record refused still becomes a dead letter. On SQLite and PostgreSQL.

SQLite keeps NUL bytes but refuses a lone surrogate (in a text column, and orjson in a JSON one);
PostgreSQL refuses both."""

from __future__ import annotations

from collections.abc import Callable

from shipyard.store import (
    BatchWriter,
    InteractionRecord,
    Store,
    ToolCallRecord,
    dead_letter_for,
    isolate,
    store_safe,
    store_text,
)

Factory = Callable[..., InteractionRecord]


def agent_made(make: Factory) -> InteractionRecord:
    """What an agent can return: a half emoji in its answer, a NUL byte in a tool result (key and
    value) and in its metadata."""
    return make(
        output="Your refund is done \ud83d",
        tool_calls=[
            ToolCallRecord(
                "process_refund", {"order_id": "10002"}, "success", 3.0, result={"ok\x00": "a\x00b"}
            )
        ],
        metadata={"channel": "web", "agent_note": "x\x00y"},
    )


def test_store_text_replaces_nul_and_lone_surrogates_only() -> None:
    assert store_text("a\x00b\ud800c\udfff") == "a\ufffdb\ufffdc\ufffd"
    assert store_text("pair \ud83d\ude00") == "pair \U0001f600"  # a surrogate pair is the character
    plain = "nothing to do ✓"
    assert store_text(plain) is plain


def test_store_safe_lists_the_fields_it_changed(record_factory: Factory) -> None:
    original = agent_made(record_factory)
    safe, fields = store_safe(original)
    assert fields == ["output", "tool_calls", "metadata"]
    assert safe.output == "Your refund is done \ufffd"
    assert safe.tool_calls[0].result == {"ok\ufffd": "a\ufffdb"}
    assert safe.metadata == {"channel": "web", "agent_note": "x\ufffdy", "sanitized": fields}
    assert (safe.id, safe.trace_id, safe.spans) == (original.id, original.trace_id, original.spans)
    assert original.output.endswith("\ud83d")  # the original is left as it was
    clean = record_factory()
    assert store_safe(clean) == (clean, [])


def test_a_record_refused_for_one_character_is_stored_sanitized(
    store: Store, record_factory: Factory
) -> None:
    bad = agent_made(record_factory)
    good = [record_factory() for _ in range(20)]
    assert isolate(store.write_interactions, [*good[:10], bad, *good[10:]]) == []
    assert store.count_interactions() == 21 and store.count_dead_letters() == 0
    stored = store.get_interaction(bad.id)
    assert stored is not None
    assert stored.output == "Your refund is done \ufffd"
    assert stored.tool_calls[0].result == {"ok\ufffd": "a\ufffdb"}
    assert stored.metadata["agent_note"] == "x\ufffdy"
    assert stored.metadata["sanitized"] == ["output", "tool_calls", "metadata"]
    assert all("sanitized" not in store.get_interaction(r.id).metadata for r in good)  # type: ignore[union-attr]


def test_a_record_the_store_takes_is_never_sanitized(store: Store, record_factory: Factory) -> None:
    nul = record_factory(output="a\x00b")
    assert isolate(store.write_interactions, [nul]) == []
    stored = store.get_interaction(nul.id)
    assert stored is not None
    if store.dialect == "sqlite":  # SQLite holds NUL bytes: the record is stored as it was
        assert stored.output == "a\x00b" and "sanitized" not in stored.metadata
    else:
        assert stored.output == "a\ufffdb" and stored.metadata["sanitized"] == ["output"]


def test_the_batch_writer_stores_it_sanitized(store: Store, record_factory: Factory) -> None:
    bad = agent_made(record_factory)
    with BatchWriter(store, batch_size=8, flush_interval_ms=10) as writer:
        for r in [record_factory() for _ in range(5)] + [bad] + [record_factory() for _ in range(5)]:
            writer.submit(r)
    assert writer.stats()["written"] == 11 and writer.stats()["failed"] == 0
    assert store.count_dead_letters() == 0
    assert store.get_interaction(bad.id).metadata["sanitized"] == ["output", "tool_calls", "metadata"]  # type: ignore[union-attr]


def test_a_record_refused_still_is_a_dead_letter_kept_as_it_was(
    store: Store, record_factory: Factory
) -> None:
    bad = record_factory(output="a\x00b \ud800", input_tokens=2**63)  # no sanitizing fixes the number
    ((record, error),) = isolate(store.write_interactions, [bad, record_factory()])
    # the error is the one that still refuses it (the number), not the one sanitizing fixed
    assert record is bad and "int" in str(error).lower() and "surrogate" not in str(error)
    assert store.count_interactions() == 1 and store.get_interaction(bad.id) is None
    letter = dead_letter_for(record, error)
    # orjson cannot write the lone surrogate: the dead letter keeps the whole record, sanitized
    kept = letter.record()
    assert kept.output == "a\ufffdb \ufffd" and kept.input_tokens == 2**63
    assert kept.metadata["sanitized"] == ["output"]


def test_retrying_a_dead_letter_stores_it_sanitized(store: Store, record_factory: Factory) -> None:
    bad = record_factory(input="refund order 10002\x00")  # a dead letter kept before sanitizing existed
    letter = dead_letter_for(bad, ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))
    store.add_dead_letter(letter)
    assert store.retry_dead_letter(letter) is None and store.count_dead_letters() == 0
    stored = store.get_interaction(bad.id)
    assert stored is not None
    assert stored.input == (
        "refund order 10002\x00" if store.dialect == "sqlite" else "refund order 10002\ufffd"
    )
