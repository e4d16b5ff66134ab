"""Realistic rows for read-side tests, written with plain SQL INSERTs.

Shared by the storage, API and client tests (like ``otlp_build``), so all three check the
same data. Times are fixed around :data:`BASE`; only ``report-live`` is placed relative to
the real clock (it is the job that goes ``lost``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from jobtrail.storage import Database
from jobtrail.storage.schema import fill_search_text, rebuild_log_summaries

BASE = datetime(2026, 11, 23, 12, 0, 0)
TRACE_IMPORT = "0af7651916cd43dd8448eb211c80319c"
TRACE_EXPORT = "4bf92f3577b34da6a3ce929d0e0e4736"
BULK = 30  # "email" jobs, for paging


def _job(**row: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "trace_id": None, "span_id": None, "parent_job_id": None, "parent_span_id": None,
        "operation": None, "owner": None, "service": "worker-a", "progress": None,
        "current_step": None, "total_steps": None, "attempt": 1, "started_at": None,
        "ended_at": None, "duration_ms": None, "error": None, "error_type": None,
        "stack_trace": None, "result": None, "cancel_reason": None, "attributes": {},
        "last_seen": None, "span_received": True,
    }  # fmt: skip
    base.update(row)
    base["attributes"] = json.dumps(base["attributes"])
    if base["last_seen"] is None:
        base["last_seen"] = base["ended_at"] or base["started_at"]
    return base


def _jobs(now: datetime) -> list[dict[str, Any]]:
    t0 = BASE - timedelta(hours=3)
    jobs = [
        _job(id="import-1", trace_id=TRACE_IMPORT, span_id="a1a1a1a1a1a1a1a1", type="import",
             name="nightly import", operation="users", owner="ann", status="completed",
             progress=100.0, total_steps=3, started_at=t0, ended_at=t0 + timedelta(seconds=90),
             duration_ms=90_000.0, result='{"rows": 300}',
             attributes={"source": "s3://bucket/users.csv"}),
        _job(id="index-1", trace_id=TRACE_IMPORT, span_id="b2b2b2b2b2b2b2b2",
             parent_job_id="import-1", parent_span_id="a1a1a1a1a1a1a1a1", type="index",
             name="rebuild index", owner="ann", status="completed", progress=100.0,
             started_at=t0 + timedelta(seconds=60), ended_at=t0 + timedelta(seconds=80),
             duration_ms=20_000.0),
        _job(id="export-1", trace_id=TRACE_EXPORT, span_id="c3c3c3c3c3c3c3c3", type="export",
             name="broken export", owner="bob", service="worker-b", status="failed",
             started_at=BASE - timedelta(hours=2), ended_at=BASE - timedelta(hours=2, seconds=-5),
             duration_ms=5_000.0, error="ValueError: disk full", error_type="ValueError",
             stack_trace='Traceback (most recent call last):\n  raise ValueError("disk full")',
             attempt=2),
        _job(id="cancel-1", type="import", name="weekly import", owner="ann", status="cancelled",
             started_at=BASE - timedelta(days=1), ended_at=BASE - timedelta(days=1, seconds=-3),
             duration_ms=3_000.0, cancel_reason="user asked"),
        _job(id="report-live", type="report", name="quarterly report", status="running",
             progress=40.0, current_step="render", total_steps=5, started_at=now - timedelta(hours=1),
             last_seen=now - timedelta(minutes=10), span_received=False),
        _job(id="pending-1", type="report", name="queued report", status="pending",
             last_seen=now - timedelta(seconds=5), span_received=False),
    ]  # fmt: skip
    for i in range(BULK):
        start = BASE - timedelta(days=2) + timedelta(minutes=i // 2)  # pairs share started_at
        failed = i % 5 == 0
        jobs.append(
            _job(id=f"email-{i:02d}", type="email", name=f"send digest {i}", owner="mailer",
                 service="worker-b", status="failed" if failed else "completed",
                 started_at=start, ended_at=start + timedelta(seconds=i + 1),
                 duration_ms=float((i + 1) * 1000), error="SMTP timeout" if failed else None,
                 error_type="TimeoutError" if failed else None)
        )  # fmt: skip
    return jobs


def _steps() -> list[tuple[Any, ...]]:
    t0 = BASE - timedelta(hours=3)
    rows = []
    for seq, name, status, start, secs in (
        (3, "load", "skipped", 85, 0),
        (1, "download", "completed", 0, 30),
        (2, "transform", "completed", 30, 50),
    ):
        started = t0 + timedelta(seconds=start)
        rows.append(
            (TRACE_IMPORT, f"d{seq}d{seq}d{seq}d{seq}d{seq}d{seq}d{seq}d{seq}", "a1a1a1a1a1a1a1a1",
             "import-1", seq, name, status, started, started + timedelta(seconds=secs),
             secs * 1000.0, None, json.dumps({"job.step": name}), True)
        )  # fmt: skip
    return rows


def _log(i: int, **row: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": i, "time": BASE - timedelta(hours=3) + timedelta(seconds=i), "trace_id": None,
        "span_id": None, "severity_number": 9, "severity_text": "INFO", "level": "info",
        "body": None, "attributes": {}, "event_name": None, "job_id": None, "step": None,
        "category": None, "iostream": None, "exception_type": None, "exception_message": None,
        "stack_trace": None, "service": "worker-a",
    }  # fmt: skip
    base.update(row)
    base["attributes"] = json.dumps(base["attributes"])
    return base


_SEVERITY = {"debug": 5, "info": 9, "success": 10, "warn": 13, "error": 17, "fatal": 21}


def _logs() -> list[dict[str, Any]]:
    logs = [
        _log(1, body="scheduler woke up", category="scheduler", service="cron"),
        _log(2, body=None, event_name="job.started", job_id="import-1", trace_id=TRACE_IMPORT,
             attributes={"event.name": "job.started", "job.id": "import-1", "job.type": "import"}),
        _log(3, body="import starting", job_id="import-1", trace_id=TRACE_IMPORT,
             attributes={"job.id": "import-1", "source": "s3://bucket/users.csv"}),
    ]  # fmt: skip
    i = 4
    for n in range(10):
        logs.append(_log(i, body=f"download line {n}", job_id="import-1", step="download",
                         trace_id=TRACE_IMPORT, attributes={"job.id": "import-1", "line": n}))  # fmt: skip
        i += 1
    for n in range(6):
        level = "warn" if n % 3 == 2 else "debug"
        logs.append(_log(i, body=f"transform line {n}", job_id="import-1", step="transform",
                         level=level, severity_number=_SEVERITY[level],
                         severity_text=level.upper(), trace_id=TRACE_IMPORT,
                         attributes={"job.id": "import-1", "job.step": "transform", "row": n}))  # fmt: skip
        i += 1
    logs += [
        _log(i, body="Progress: 100%", job_id="import-1", step="load", iostream="stdout",
             attributes={"log.iostream": "stdout"}),
        _log(i + 1, body="import done", job_id="import-1", level="success", severity_number=10,
             severity_text="SUCCESS", attributes={"rows": 300}),
        _log(i + 2, body="exporting to /mnt/out", job_id="export-1", service="worker-b",
             trace_id=TRACE_EXPORT, category="exporter", attributes={"log.category": "exporter",
             "path": "/mnt/out"}),
        _log(i + 3, body="export failed", job_id="export-1", level="error", severity_number=17,
             severity_text="ERROR", service="worker-b", exception_type="ValueError",
             exception_message="disk full", category="exporter",
             stack_trace='Traceback (most recent call last):\n  raise ValueError("disk full")',
             attributes={"exception.type": "ValueError", "exception.message": "disk full",
                         "log.category": "exporter", "Disk": "SDA1"}),
        _log(i + 4, body="disk almost full", level="warn", severity_number=13,
             severity_text="WARN", category="monitor", service="cron"),
    ]  # fmt: skip
    return logs


def _spans() -> list[tuple[Any, ...]]:
    t0 = BASE - timedelta(hours=3)
    received = BASE

    def span(span_id: str, parent: str | None, name: str, start: int, secs: int,
             attrs: dict[str, Any], status: int = 0, received_at: datetime = received,
             trace: str = TRACE_IMPORT) -> tuple[Any, ...]:  # fmt: skip
        started = t0 + timedelta(seconds=start)
        return (trace, span_id, parent, name, 1, started, started + timedelta(seconds=secs),
                secs * 1000.0, status, None, "worker-a", json.dumps(attrs), "[]", "[]", "{}",
                "jobtrail", "0.1", received_at)  # fmt: skip

    return [
        span("a1a1a1a1a1a1a1a1", None, "nightly import", 0, 90, {"job.type": "import"}),
        span("d1d1d1d1d1d1d1d1", "a1a1a1a1a1a1a1a1", "download", 0, 30, {"job.step": "download"}),
        span("d2d2d2d2d2d2d2d2", "a1a1a1a1a1a1a1a1", "transform", 30, 50, {"job.step": "transform"}),
        # the same span again (a client retry): the newer copy wins
        span("d2d2d2d2d2d2d2d2", "a1a1a1a1a1a1a1a1", "transform", 30, 50,
             {"job.step": "transform", "copy": 2}, received_at=received + timedelta(seconds=1)),
        span("b2b2b2b2b2b2b2b2", "d2d2d2d2d2d2d2d2", "rebuild index", 60, 20, {"job.type": "index"}),
        span("e5e5e5e5e5e5e5e5", "a1a1a1a1a1a1a1a1", "GET /users.csv", 1, 2, {"http.method": "GET"}),
    ]  # fmt: skip


def fill_db(db: Database, *, now: datetime | None = None) -> None:
    """Insert the sample jobs, steps, logs and spans into a fresh database."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    con = db.cursor()
    con.execute("BEGIN TRANSACTION")  # one commit: much faster than one per row
    try:
        for row in _jobs(now):
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            con.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", list(row.values()))  # noqa: S608
        con.executemany(
            "INSERT INTO steps (trace_id, span_id, parent_span_id, job_id, seq, name, status, "
            "started_at, ended_at, duration_ms, error, attributes, span_received) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _steps(),
        )
        for row in _logs():
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            con.execute(f"INSERT INTO logs ({cols}) VALUES ({marks})", list(row.values()))  # noqa: S608
        con.executemany(
            "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_time, "
            "end_time, duration_ms, status_code, status_message, service, attributes, events, "
            "links, resource, scope_name, scope_version, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _spans(),
        )
        rebuild_log_summaries(con)  # what the writer keeps as logs arrive
        fill_search_text(con)
        con.execute("COMMIT")
    finally:
        con.close()


#: Log ids by what they are, for assertions.
JOB_IMPORT_LOG_IDS = list(range(3, 22))  # import-1's records but the lifecycle one (2)
LOG_COUNT = 24
