"""Retention on a real DuckDB file with a fake clock: what goes, what stays, and ingest meanwhile.

Small cases go through the real pipeline (OTLP requests -> decode -> writer); the fake clock
is a ``now`` callable set relative to a boundary taken between two ingests, so "old" and
"recent" are real arrival order. Large cases are bulk-loaded with SQL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bulk_jobs import BASE, bulk_load
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage import Database, queries
from jobtrail.storage.retention import (
    RetentionPolicy,
    RetentionStats,
    direct_runner,
    plan,
    prune,
    run_periodically,
    utc_now,
)
from jobtrail.storage.writer import BatchWriter

DAY = 86400.0
POLICY = RetentionPolicy(max_age_s=30 * DAY, system_logs_max_age_s=7 * DAY)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[Database, BatchWriter]]:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    try:
        yield db, writer
    finally:
        await asyncio.to_thread(writer.close)
        db.close()


def at(t: datetime) -> Callable[[], datetime]:
    return lambda: t


async def send_spans(writer: BatchWriter, *spans: object) -> None:
    await writer.write(decode_traces(traces_request(list(spans))).batch)  # type: ignore[arg-type]


async def send_logs(writer: BatchWriter, *records: object) -> None:
    await writer.write(decode_logs(logs_request(list(records))).batch)  # type: ignore[arg-type]


def count(db: Database, sql: str, *params: object) -> int:
    row = db.cursor().execute(sql, list(params)).fetchone()
    assert row is not None
    return int(row[0])


async def job_tree(writer: BatchWriter, name: str) -> tuple[bytes, dict[str, bytes]]:
    """A plain-client job: span, step, an HTTP span under the step, a child job, logs."""
    t = new_trace_id()
    ids = {k: new_span_id() for k in ("root", "job", "step", "http", "child", "child_step")}
    await send_spans(
        writer,
        span(t, ids["root"], "POST /enqueue", {"http.method": "POST"}),  # above the job: no job
        span(t, ids["job"], name, {"job.type": "import", "job.id": name}, parent=ids["root"]),
        span(t, ids["step"], "download", {"job.step": "download"}, parent=ids["job"]),
        span(t, ids["http"], "GET /file", {"http.method": "GET"}, parent=ids["step"]),
        span(t, ids["child"], "index", {"job.type": "index"}, parent=ids["http"]),
        span(t, ids["child_step"], "write", {"job.step": "write"}, parent=ids["child"]),
    )
    await send_logs(
        writer,
        log(t, ids["job"], f"{name} starting"),
        log(t, ids["step"], f"{name} downloading", severity=13),
        log(t, ids["child"], f"{name} child"),
        log(t, ids["child_step"], f"{name} child step", severity=17),
        log(t, ids["job"], "started", {"event.name": "job.started", "job.id": name}),
    )
    return t, ids


async def test_old_finished_jobs_go_with_all_their_rows_running_and_recent_stay(
    store: tuple[Database, BatchWriter],
) -> None:
    db, writer = store
    old_trace, _ = await job_tree(writer, "old")
    # An old job still running (no span yet) and an old parent whose child still runs.
    rt, rs = new_trace_id(), new_span_id()
    await send_logs(writer, log(rt, rs, "go", {"event.name": "job.started", "job.id": "run"}))
    await send_logs(writer, log(rt, rs, "working", {"job.id": "run"}))
    pt, ps, cs = new_trace_id(), new_span_id(), new_span_id()
    await send_spans(writer, span(pt, ps, "parent", {"job.type": "batch", "job.id": "parent"}))
    await send_logs(
        writer,
        log(
            pt,
            cs,
            "child go",
            {"event.name": "job.started", "job.id": "kid", "job.parent_id": "parent"},
        ),
    )
    await send_logs(writer, log(None, None, "old system record", {"log.category": "system"}))
    plain = new_trace_id()
    await send_spans(writer, span(plain, new_span_id(), "GET /health", {}))

    boundary = utc_now()
    await asyncio.sleep(0.002)
    recent_trace, _ = await job_tree(writer, "recent")
    await send_logs(writer, log(None, None, "recent system record"))
    assert count(db, "SELECT count(*) FROM jobs WHERE parent_job_id = 'parent'") == 1

    # A week on, logs of no job have had their age; jobs have not.
    week = await prune(writer.run, POLICY, now=at(boundary + timedelta(days=7)))
    assert week.expired.rows == 0 and week.unowned.logs == 1
    assert count(db, "SELECT count(*) FROM jobs") == 7
    assert count(db, "SELECT count(*) FROM logs WHERE job_id IS NULL") == 1, "the recent one"

    later = at(boundary + timedelta(days=30))
    expected = plan(db.cursor(), POLICY, now=later)
    report = await prune(writer.run, POLICY, now=later)
    assert report.expired == expected.expired and report.unowned == expected.unowned

    ids = {r[0] for r in db.cursor().execute("SELECT id FROM jobs").fetchall()}
    recent = {r[0] for r in db.cursor().execute(
        "SELECT id FROM jobs WHERE trace_id = ?", [recent_trace.hex()]).fetchall()}  # fmt: skip
    assert ids == {"run", "parent", "kid"} | recent and len(recent) == 2
    old = old_trace.hex()
    assert count(db, "SELECT count(*) FROM spans WHERE trace_id IN (?, ?)", old, plain.hex()) == 0
    assert count(db, "SELECT count(*) FROM steps WHERE trace_id = ?", old) == 0
    assert count(db, "SELECT count(*) FROM logs WHERE trace_id = ?", old) == 0
    assert count(db, "SELECT count(*) FROM logs WHERE body LIKE 'recent %'") == 4
    assert report.expired.jobs == 2 and report.expired.steps == 2 and report.expired.logs == 5
    assert report.expired.spans == 5, "job, step, HTTP call, child job and its step"
    # The span above the job belonged to no job: jobless once the job went, it goes by age
    # in the same pass, as does the plain trace and the (now 30 days old) system record.
    assert report.unowned.spans == 2 and report.unowned.logs == 1
    assert (await prune(writer.run, POLICY, now=later)).total.rows == 0
    assert count(db, "SELECT count(*) FROM logs WHERE job_id = 'run'") == 2
    # Summaries the writer keeps about logs stay true.
    assert count(db, "SELECT count(*) FROM job_log_ranges WHERE job_id = 'old'") == 0
    assert count(db, "SELECT coalesce(sum(n), 0) FROM log_counts") == count(
        db, "SELECT count(*) FROM logs WHERE event_name IS NULL"
    )


async def test_lost_jobs_count_as_finished_and_their_age_is_the_last_sign_of_life(
    store: tuple[Database, BatchWriter],
) -> None:
    db, writer = store
    t, s = new_trace_id(), new_span_id()
    await send_logs(writer, log(t, s, "go", {"event.name": "job.started", "job.id": "gone"}))
    await writer.run(lambda con: con.execute("UPDATE jobs SET status = 'lost'"))
    boundary = utc_now()
    report = await prune(writer.run, POLICY, now=at(boundary + timedelta(days=31)))
    assert report.expired.jobs == 1 and count(db, "SELECT count(*) FROM jobs") == 0


async def test_log_cap_keeps_first_and_last_records_and_counts_the_dropped(
    store: tuple[Database, BatchWriter],
) -> None:
    db, writer = store
    t, s = new_trace_id(), new_span_id()
    attrs = {"job.id": "chatty"}
    await send_logs(writer, log(t, s, "go", {"event.name": "job.started", **attrs}))
    await send_logs(writer, *(log(t, s, f"line {i}", attrs) for i in range(50)))
    policy = RetentionPolicy(max_logs_per_job=10, chunk_rows=7)  # several chunks per job
    report = await prune(writer.run, policy)
    assert (report.capped.jobs, report.capped.logs) == (1, 40)

    def bodies() -> list[str]:
        rows = (
            db.cursor()
            .execute(
                "SELECT body FROM logs WHERE job_id = 'chatty' AND event_name IS NULL ORDER BY id"
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    assert bodies() == [f"line {i}" for i in (*range(5), *range(45, 50))]
    assert count(db, "SELECT count(*) FROM logs WHERE event_name = 'job.started'") == 1
    detail = queries.get_job(db.cursor(), "chatty")
    assert detail["logs_dropped"] == 40

    # The job keeps running and logging: the first records stay, the cap moves the end.
    await send_logs(writer, *(log(t, s, f"more {i}", attrs) for i in range(8)))
    report = await prune(writer.run, policy)
    assert report.capped.logs == 8
    assert bodies() == [f"line {i}" for i in range(5)] + [f"more {i}" for i in range(3, 8)]
    assert queries.get_job(db.cursor(), "chatty")["logs_dropped"] == 48
    assert count(db, "SELECT coalesce(sum(n), 0) FROM log_counts") == count(
        db, "SELECT count(*) FROM logs WHERE event_name IS NULL"
    )
    assert (await prune(writer.run, policy)).capped.logs == 0


# --- bulk data ---------------------------------------------------------------------------


def used(db: Database) -> int:
    db.con.execute("CHECKPOINT")
    row = db.con.execute(
        "SELECT block_size * used_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchone()
    assert row is not None
    return int(row[0])


async def test_size_cap_prunes_oldest_finished_jobs_first(tmp_path: Path) -> None:
    """The cap is met part-way, the oldest gone first.

    DuckDB gives space back a row group (122,880 rows) at a time, and its block count for the
    same data moves by a few 256 KiB blocks between runs. Long log bodies make the logs, not
    the fixed indexes and metadata, most of the file, and the cap sits between "one row group
    freed" (~0.67 of the file here) and "half the jobs gone" (~0.45), not at an edge.
    """
    db = Database(tmp_path / "db.duckdb")
    bulk_load(
        db.con, prefix="f", jobs=1200, first_end=BASE, every_s=60, logs_per_job=250, body_md5s=4
    )
    bulk_load(db.con, prefix="r", jobs=5, first_end=BASE, every_s=1, status="running")
    before = used(db)
    cap = int(before * 0.6)
    now = at(BASE + timedelta(days=3))  # everything is younger than max_age
    policy = RetentionPolicy(max_size_bytes=cap, chunk_jobs=100)
    report = await prune(direct_runner(db.con), policy, now=now)
    assert report.size_cap_met and report.used_bytes_before == before
    assert report.used_bytes_after is not None and report.used_bytes_after <= cap
    assert used(db) <= cap
    kept = count(db, "SELECT count(*) FROM jobs WHERE status = 'completed'")
    assert 0 < kept < 1200 and report.oversize.jobs == 1200 - kept
    newest_gone = BASE + timedelta(seconds=60 * (1200 - kept - 1))
    gone_kept = count(
        db, "SELECT count(*) FROM jobs WHERE ended_at <= ? AND status = 'completed'", newest_gone
    )
    assert gone_kept == 0, "the oldest went first"
    assert count(db, "SELECT count(*) FROM jobs WHERE status = 'running'") == 5
    assert count(db, "SELECT count(*) FROM logs WHERE job_id NOT IN (SELECT id FROM jobs)") == 0
    assert report.expired.rows == 0
    db.close()


async def test_size_cap_that_cannot_be_met_spares_running_jobs_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "db.duckdb")
    bulk_load(db.con, prefix="f", jobs=20, first_end=BASE, every_s=60)
    bulk_load(db.con, prefix="r", jobs=5, first_end=BASE, every_s=1, status="running")
    now = at(BASE + timedelta(days=3))
    with caplog.at_level(logging.WARNING, "jobtrail.storage.retention"):
        report = await prune(direct_runner(db.con), RetentionPolicy(max_size_bytes=1024), now=now)
    assert report.size_cap_met is False and "over max_size" in caplog.text
    assert report.oversize.jobs == 20
    assert count(db, "SELECT count(*) FROM jobs WHERE status = 'completed'") == 0
    assert count(db, "SELECT count(*) FROM jobs WHERE status = 'running'") == 5
    assert count(db, "SELECT count(*) FROM logs") == 5 * 20
    db.close()


async def test_ingest_continues_during_a_large_prune(tmp_path: Path) -> None:
    """Chunks of the prune and ingest commits interleave on the one writer."""
    db = Database(tmp_path / "db.duckdb")
    bulk_load(db.con, prefix="o", jobs=4000, first_end=BASE, every_s=1, logs_per_job=25)
    db.con.execute("CHECKPOINT")
    writer = BatchWriter(db)
    commits: list[float] = []
    writer.add_listener(lambda info: commits.append(time.perf_counter()))
    writer.start()
    stop = asyncio.Event()
    fed = 0

    async def feed() -> None:
        nonlocal fed
        while not stop.is_set():
            await send_logs(writer, *(log(None, None, f"tick {fed} {i}") for i in range(20)))
            fed += 1
            await asyncio.sleep(0.002)

    feeder = asyncio.create_task(feed())
    await asyncio.sleep(0.1)
    policy = RetentionPolicy(chunk_jobs=200)
    t0 = time.perf_counter()
    report = await prune(writer.run, policy, now=at(BASE + timedelta(days=60)))
    t1 = time.perf_counter()
    stop.set()
    await feeder
    during = [t0, *(c for c in commits if t0 < c < t1), t1]
    max_gap = max(b - a for a, b in zip(during, during[1:], strict=False))
    print(
        f"prune {t1 - t0:.2f} s, {len(during) - 2} ingest commits meanwhile, max gap {max_gap:.3f} s"
    )
    assert report.expired.jobs == 4000 and count(db, "SELECT count(*) FROM jobs") == 0
    assert report.expired.logs == 100_000
    assert len(during) - 2 >= 4000 // 200, "at least one ingest commit per chunk"
    # The gap is one chunk of the prune: 0.4-0.7 s measured on 2 heavily shared cores.
    assert max_gap < 1.5 and max_gap < (t1 - t0) / 4
    assert count(db, "SELECT count(*) FROM logs WHERE body LIKE 'tick %'") == fed * 20
    await asyncio.to_thread(writer.close)
    db.close()


async def test_periodic_passes_run_at_start_and_then_on_the_interval(
    store: tuple[Database, BatchWriter],
) -> None:
    db, writer = store
    await send_logs(writer, log(None, None, "old"))
    clock = [utc_now()]
    stats = RetentionStats()
    policy = RetentionPolicy(max_age_s=DAY, interval_s=0.05)
    task = asyncio.create_task(
        run_periodically(writer.run, policy, stats=stats, now=lambda: clock[0])
    )
    for _ in range(200):
        if stats.passes >= 1:
            break
        await asyncio.sleep(0.01)
    assert stats.passes >= 1 and count(db, "SELECT count(*) FROM logs") == 1
    clock[0] += timedelta(days=2)
    for _ in range(200):
        if stats.removed["logs"]:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert stats.removed["logs"] == 1 and stats.failures == 0
    assert count(db, "SELECT count(*) FROM logs") == 0


async def test_checkpoint_succeeds_after_updates_on_a_reopened_file(tmp_path: Path) -> None:
    """Opening a file leaves no transaction behind: one would make CHECKPOINT refuse after
    the log cap's UPDATEs, and the size cap could never measure."""
    path = tmp_path / "db.duckdb"
    db = Database(path)
    bulk_load(db.con, prefix="r", jobs=3, first_end=BASE, every_s=1, status="running")
    db.close()
    db = Database(path)
    writer = BatchWriter(db)
    writer.start()
    try:
        policy = RetentionPolicy(max_logs_per_job=10, max_size_bytes=1024**3)
        report = await prune(writer.run, policy, now=at(BASE))
        assert report.capped.logs == 30 and report.size_cap_met is True
        assert report.used_bytes_after is not None
    finally:
        await asyncio.to_thread(writer.close)
        db.close()
