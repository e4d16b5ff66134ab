"""The read queries on their own: paging edges, literal text search, stats arithmetic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sample_jobs import BASE, JOB_IMPORT_LOG_IDS, LOG_COUNT, TRACE_IMPORT, fill_db
from step_runs import step_runs, store_all

from jobtrail.storage import Database
from jobtrail.storage import queries as q
from jobtrail.storage._sql import decode_cursor, encode_cursor
from jobtrail.storage.live import jobs_by_ids, log_matches, logs_in_range


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "db.duckdb")
    fill_db(database)
    yield database
    database.close()


@pytest.fixture
def cur(db: Database) -> Iterator[duckdb.DuckDBPyConnection]:
    cursor = db.cursor()
    yield cursor
    cursor.close()


def test_results_are_plain_json(cur: duckdb.DuckDBPyConnection) -> None:
    for result in (
        q.list_jobs(cur),
        q.get_job(cur, "import-1"),
        q.job_logs(cur, "export-1"),
        q.list_logs(cur),
        q.get_stats(cur),
        q.get_trace(cur, TRACE_IMPORT),
    ):
        assert json.loads(json.dumps(result)) == result


def test_paging_across_jobs_not_yet_started(cur: duckdb.DuckDBPyConnection) -> None:
    everything = [j["id"] for j in q.list_jobs(cur, limit=1000)["jobs"]]
    assert everything[-1] == "pending-1"
    seen, cursor = [], None
    while True:
        page = q.list_jobs(cur, limit=35 if cursor is None else 1, cursor=cursor)
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor("2026-11-23T09:00:00.000001Z", "a")) == (
        datetime(2026, 11, 23, 9, 0, 0, 1),
        "a",
    )
    assert decode_cursor(encode_cursor(None, "b")) == (None, "b")
    for bad in ("", "!!!", encode_cursor("not a time", "x"), "WzEsMl0"):
        with pytest.raises(q.InvalidParameter) as info:
            decode_cursor(bad)
        assert info.value.name == "cursor"


def test_text_search_is_literal(cur: duckdb.DuckDBPyConnection) -> None:
    # '_' and '%' are LIKE wildcards; a search must treat them as plain characters.
    assert q.list_jobs(cur, q.JobFilter(q="digest_1"))["jobs"] == []
    assert {j["id"] for j in q.list_jobs(cur, q.JobFilter(q="DIGEST 1"))["jobs"]} == {
        "email-01",
        *(f"email-{i}" for i in range(10, 20)),
    }
    logs = q.list_logs(cur, q.LogFilter(q="100%"))["logs"]
    assert [e["message"] for e in logs] == ["Progress: 100%"]
    assert q.list_logs(cur, q.LogFilter(q="%"))["logs"] == logs


def test_values_are_bound_not_spliced(cur: duckdb.DuckDBPyConnection) -> None:
    sneaky = "x' OR '1'='1"
    assert q.list_jobs(cur, q.JobFilter(type=sneaky, q=sneaky))["jobs"] == []
    assert q.list_logs(cur, q.LogFilter(categories=(sneaky,), step=sneaky))["logs"] == []


def test_job_not_found_carries_the_id(cur: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(q.JobNotFound) as info:
        q.get_job(cur, "missing")
    assert info.value.job_id == "missing" and isinstance(info.value, q.NotFound)


def test_job_children_are_capped_but_counted(cur: duckdb.DuckDBPyConnection) -> None:
    job = q.get_job(cur, "import-1", max_children=0)
    assert job["children"] == [] and job["child_count"] == 1


def test_job_logs_ignores_a_filter_job_id(cur: duckdb.DuckDBPyConnection) -> None:
    page = q.job_logs(cur, "import-1", q.LogFilter(job_id="export-1"))
    assert [e["id"] for e in page["logs"]] == JOB_IMPORT_LOG_IDS


def test_list_logs_windows(cur: duckdb.DuckDBPyConnection) -> None:
    newest = q.list_logs(cur, limit=2)
    assert [e["id"] for e in newest["logs"]] == [LOG_COUNT - 1, LOG_COUNT]
    back = q.list_logs(cur, before_id=3, limit=10, flt=q.LogFilter(include_events=True))
    assert [e["id"] for e in back["logs"]] == [1, 2]
    forward = q.list_logs(cur, after_id=0, limit=2)
    assert [e["id"] for e in forward["logs"]] == [1, 3] and forward["next_after_id"] == 3
    assert q.list_logs(cur, after_id=LOG_COUNT)["next_after_id"] == LOG_COUNT
    assert q.list_logs(cur, q.LogFilter(levels=("fatal",)))["next_after_id"] is None


def test_stats_of_an_empty_database(tmp_path: Path) -> None:
    db = Database(tmp_path / "empty.duckdb")
    try:
        stats = q.get_stats(db.cursor())
    finally:
        db.close()
    assert stats["jobs"] == {
        "total": 0,
        "by_status": {},
        "by_type": {},
        "success_rate": None,
        "duration_ms": {"avg": None, "p50": None, "p95": None},
    }
    assert stats["logs"] == {"total": 0, "by_level": {}, "by_category": {}}
    assert stats["recent_errors"] == [] and stats["buckets"] == []


def test_stats_buckets_are_aligned_and_zero_filled(cur: duckdb.DuckDBPyConnection) -> None:
    flt = q.StatsFilter(since=datetime(2026, 11, 23, 8, 30), until=datetime(2026, 11, 23, 11, 0))
    stats = q.get_stats(cur, flt, bucket_s=3600, now=BASE)
    assert stats["bucket"] == "1h"
    assert [
        (b["start"][11:16], b["total"], b["completed"], b["failed"]) for b in stats["buckets"]
    ] == [
        ("08:00", 0, 0, 0),
        ("09:00", 2, 2, 0),
        ("10:00", 1, 0, 1),
    ]
    assert stats["jobs"]["success_rate"] == pytest.approx(2 / 3)
    assert stats["jobs"]["duration_ms"]["p50"] == 20_000.0
    # without a bucket size, one is chosen for the range: 2.5 hours -> 5 minutes
    assert q.get_stats(cur, flt, now=BASE)["bucket"] == "5m"


def test_stats_refuse_too_many_buckets(cur: duckdb.DuckDBPyConnection) -> None:
    flt = q.StatsFilter(since=datetime(2026, 1, 1), until=datetime(2026, 2, 1))
    with pytest.raises(q.InvalidParameter) as info:
        q.get_stats(cur, flt, bucket_s=60)
    assert info.value.name == "bucket"


def test_stats_logs_follow_the_type_filter(cur: duckdb.DuckDBPyConnection) -> None:
    stats = q.get_stats(cur, q.StatsFilter(type="export"))
    assert stats["logs"]["by_level"] == {"info": 1, "error": 1}
    assert [e["id"] for e in stats["recent_errors"]] == ["export-1"]


_IMPORT_LEVELS = {"debug": 4, "info": 12, "success": 1, "warn": 2}


@pytest.mark.parametrize(
    ("flt", "statuses", "levels"),
    [
        (q.StatsFilter(owner="bob"), {"failed": 1}, {"info": 1, "error": 1}),
        (q.StatsFilter(owner="ann"), {"cancelled": 1, "completed": 2}, _IMPORT_LEVELS),
        (q.StatsFilter(type="import", owner="bob"), {}, {}),
        (q.StatsFilter(service="worker-a", until=BASE), {"cancelled": 1, "completed": 2},
         _IMPORT_LEVELS),
        (q.StatsFilter(owner="nobody"), {}, {}),
    ],
)  # fmt: skip
def test_stats_owner_and_service_narrow_jobs_and_their_logs(
    cur: duckdb.DuckDBPyConnection,
    flt: q.StatsFilter,
    statuses: dict[str, int],
    levels: dict[str, int],
) -> None:
    stats = q.get_stats(cur, flt, now=BASE)
    assert stats["jobs"]["by_status"] == statuses
    assert stats["logs"]["by_level"] == levels
    assert stats["logs"]["total"] == sum(levels.values())


async def test_live_filter_matches_the_sql_filter_on_span_id(tmp_path: Path) -> None:
    """Live streams check rows in Python: the same records as the SQL, for every span."""
    runs = step_runs()
    db = Database(tmp_path / "runs.duckdb")
    await store_all(db, runs.requests)
    try:
        cur = db.cursor()
        rows = logs_in_range(cur, 1, 1000)
        for span_id in (runs.run1, runs.run2, runs.http, runs.job_span, "0" * 16):
            for events in (False, True):
                flt = q.LogFilter(span_id=span_id, include_events=events)
                in_sql = q.list_logs(cur, flt)["logs"]
                assert in_sql == [r for r in rows if log_matches(flt, r)], (span_id, events)
        assert len(q.list_logs(cur, q.LogFilter(span_id=runs.run2))["logs"]) == 2
        job: dict[str, Any] = dict(jobs_by_ids(cur, [runs.job_id])[0])  # with its steps
        assert [s["span_id"] for s in job["steps"]] == [runs.run1, runs.run2]
    finally:
        db.close()


def test_trace_truncation_and_validation(cur: duckdb.DuckDBPyConnection) -> None:
    trace = q.get_trace(cur, TRACE_IMPORT, max_spans=2)
    assert trace["truncated"] is True and len(trace["spans"]) == 2
    with pytest.raises(q.InvalidParameter):
        q.get_trace(cur, "abc")
    with pytest.raises(q.TraceNotFound):
        q.get_trace(cur, "f" * 32)


def test_ping(cur: duckdb.DuckDBPyConnection) -> None:
    q.ping(cur)
