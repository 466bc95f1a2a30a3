"""The OTLP/JSON trace file (`server.otlp_file`) is rotated by size, as the OpenTelemetry Collector's
file exporter does (`rotation: max_megabytes, max_backups`): real files, every line read back into
opentelemetry-proto's `TracesData`."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest
from google.protobuf.json_format import Parse
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shipyard.config import ShipyardConfig, load_config
from shipyard.errors import ConfigError
from shipyard.observe import configure_otlp_file, export_spans, flush_export
from shipyard.observe._otlp_file import OtlpJsonFileExporter, backup_path, otlp_json_line


def batch(n: int, *, spans: int = 2) -> list[ReadableSpan]:
    """`spans` finished spans, each carrying `batch=n` (so a line tells which batch it was)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shipyard.test")
    for i in range(spans):
        with tracer.start_as_current_span(f"step {i}", attributes={"batch": n, "i": i}):
            pass
    return list(memory.get_finished_spans())


def batches_in(path: Path) -> list[int]:
    """The `batch` of every line of `path`, each line checked to be one complete `TracesData`."""
    out = []
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    for line in raw.split(b"\n")[:-1]:
        orjson.loads(line)  # valid JSON, whole
        data = Parse(line.decode(), TracesData())
        found = {
            kv.value.int_value
            for rs in data.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
            for kv in s.attributes
            if kv.key == "batch"
        }
        assert len(found) == 1  # one line is one batch, never part of one
        out.append(found.pop())
    return out


def files_oldest_first(path: Path, backups: int) -> list[Path]:
    olds = [backup_path(path, n) for n in range(backups, 0, -1)]
    return [p for p in olds if p.exists()] + ([path] if path.exists() else [])


def test_writes_past_the_limit_rotate_and_backups_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    line_size = len(otlp_json_line(batch(0)))
    limit = line_size * 3 + line_size // 2  # three lines fit, a fourth does not
    exporter = OtlpJsonFileExporter(path, max_bytes=limit, backups=2)
    for n in range(20):
        assert exporter.export(batch(n)) is SpanExportResult.SUCCESS
    assert path.exists() and backup_path(path, 1).exists() and backup_path(path, 2).exists()
    assert not backup_path(path, 3).exists()  # the oldest were removed
    files = files_oldest_first(path, 2)
    for f in files:
        assert f.stat().st_size <= limit
        assert f.stat().st_mode & 0o777 == 0o600
    seen = [n for f in files for n in batches_in(f)]
    # 20 batches, 3 a file: the current file holds 18-19, .1 15-17, .2 12-14; nothing in between lost
    assert seen == list(range(12, 20))


def test_backups_a_larger_setting_left_are_removed_at_the_next_rotation(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    line_size = len(otlp_json_line(batch(0)))
    before = OtlpJsonFileExporter(path, max_bytes=line_size, backups=5)
    for n in range(7):
        before.export(batch(n))
    assert [backup_path(path, k).exists() for k in range(1, 7)] == [True] * 5 + [False]
    after = OtlpJsonFileExporter(path, max_bytes=line_size, backups=2)  # restarted with fewer backups
    after.export(batch(7))
    assert [backup_path(path, k).exists() for k in range(1, 6)] == [True, True, False, False, False]
    assert [n for f in files_oldest_first(path, 2) for n in batches_in(f)] == [5, 6, 7]


def test_nothing_is_lost_below_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "traces.jsonl"  # missing folders are made
    line_size = len(otlp_json_line(batch(0)))
    # two lines a file (batch numbers vary in digits, hence the slack)
    exporter = OtlpJsonFileExporter(path, max_bytes=line_size * 2 + 16, backups=50)
    for n in range(30):
        assert exporter.export(batch(n)) is SpanExportResult.SUCCESS
    files = files_oldest_first(path, 50)
    assert len(files) == 15  # two lines a file
    assert [n for f in files for n in batches_in(f)] == list(range(30))


def test_a_line_larger_than_the_limit_gets_a_file_of_its_own_unsplit(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    exporter = OtlpJsonFileExporter(path, max_bytes=10, backups=3)
    for n in range(5):
        assert exporter.export(batch(n, spans=5)) is SpanExportResult.SUCCESS
    files = files_oldest_first(path, 3)
    assert [batches_in(f) for f in files] == [[1], [2], [3], [4]]


def test_an_existing_file_counts_towards_the_limit(tmp_path: Path) -> None:
    """A server restarted over yesterday's file does not start counting from zero."""
    path = tmp_path / "traces.jsonl"
    earlier = otlp_json_line(batch(-1))
    path.write_bytes(earlier)
    exporter = OtlpJsonFileExporter(path, max_bytes=len(earlier) + 10, backups=1)
    assert exporter.export(batch(0)) is SpanExportResult.SUCCESS
    assert batches_in(backup_path(path, 1)) == [-1]
    assert batches_in(path) == [0]


def test_lines_written_from_many_threads_stay_whole_and_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    line_size = len(otlp_json_line(batch(0)))
    exporter = OtlpJsonFileExporter(path, max_bytes=line_size * 5, backups=100)
    ready = [batch(n) for n in range(80)]

    def write(part: int) -> None:
        for n in range(part, 80, 4):
            assert exporter.export(ready[n]) is SpanExportResult.SUCCESS

    threads = [threading.Thread(target=write, args=(part,)) for part in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = files_oldest_first(path, 100)
    for f in files:
        assert f.stat().st_size <= line_size * 5 + 16  # lines differ in size by a few digits
    assert sorted(n for f in files for n in batches_in(f)) == list(range(80))


def test_nonsense_limits_are_refused_by_the_exporter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        OtlpJsonFileExporter(tmp_path / "t.jsonl", max_bytes=0)
    with pytest.raises(ValueError, match="backups"):
        OtlpJsonFileExporter(tmp_path / "t.jsonl", backups=0)


def test_configure_otlp_file_rotates_what_the_background_export_writes(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    line_size = len(otlp_json_line(batch(0)))
    configure_otlp_file(path, max_mb=line_size * 1.5 / (1024 * 1024), backups=2)
    try:
        for n in range(4):
            export_spans(batch(n))
            assert flush_export()  # one batch a line
    finally:
        configure_otlp_file(None)
    assert [batches_in(f) for f in files_oldest_first(path, 2)] == [[1], [2], [3]]


# --- config ------------------------------------------------------------------------------------------

BASE = "project: shop\nserver:\n  otlp_file: .shipyard/traces.jsonl\n"


def load(tmp_path: Path, extra: str = "") -> ShipyardConfig:
    p = tmp_path / "shipyard.yaml"
    p.write_text(BASE + extra)
    return load_config(p)


def test_rotation_settings_default_and_load(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg.server.otlp_file_max_mb == 100 and cfg.server.otlp_file_backups == 3
    cfg = load(tmp_path, "  otlp_file_max_mb: 0.5\n  otlp_file_backups: 7\n")
    assert cfg.server.otlp_file_max_mb == 0.5 and cfg.server.otlp_file_backups == 7


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("otlp_file_max_mb: 0", "server.otlp_file_max_mb"),
        ("otlp_file_max_mb: -5", "server.otlp_file_max_mb"),
        ("otlp_file_max_mb: 100MB", "server.otlp_file_max_mb"),
        ("otlp_file_max_mb: true", "server.otlp_file_max_mb"),
        ("otlp_file_max_mb: .inf", "server.otlp_file_max_mb"),
        ("otlp_file_backups: 0", "server.otlp_file_backups"),
        ("otlp_file_backups: 2.5", "server.otlp_file_backups"),
        ("otlp_file_backups: many", "server.otlp_file_backups"),
        ("otlp_file_backups: 100000", "server.otlp_file_backups"),
    ],
)
def test_nonsense_rotation_settings_are_refused_with_the_field_and_line(
    tmp_path: Path, line: str, field: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, f"  {line}\n")
    [msg] = e.value.problems
    assert field in msg and "line 4" in msg
