"""A fast bulk generator: a jobtrail database of N jobs filled by DuckDB SQL, not the agent.

``INSERT ... SELECT ... FROM range(...)`` writes rows shaped like the agent's (same
columns, ids, attribute JSON, levels, lifecycle records excluded) straight into the tables
of :mod:`jobtrail.storage.schema`, after the schema is created by the product's own
``Database``. Per job: 10 steps, 11 spans (job + steps) and ``logs_per_job`` log records;
1% more log records are system logs (no job). Jobs start over the last 30 days, newest
last, so log ids follow time as they do when ingested. Values come from ``hash()`` of the
row number, so a size always produces the same database.

``python -m bench.bulkgen FILE --jobs 1000000`` makes the full-size database
(1M jobs, 10M steps, 11M spans, 50M logs).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import duckdb

from jobtrail.storage import Database
from jobtrail.storage.schema import JOB_SEARCH_TEXT, rebuild_log_summaries

#: Bump when the generated data changes (cached databases are keyed by it).
VERSION = 4
_MEMORY_LIMIT = os.environ.get("BENCH_BULKGEN_MEMORY", "12GB")
STEPS = 10
TYPES = ["import", "export", "sync", "report", "email", "billing", "index", "backup"]
SERVICES = ["worker-a", "worker-b", "billing", "reports", "etl"]
SPAN_DAYS = 30

# Status by hash bucket (per mille): completed 850, failed 80, running 30, cancelled 20,
# lost 10, pending 10.
_STATUS = """CASE
    WHEN h % 1000 < 850 THEN 'completed' WHEN h % 1000 < 930 THEN 'failed'
    WHEN h % 1000 < 960 THEN 'running' WHEN h % 1000 < 980 THEN 'cancelled'
    WHEN h % 1000 < 990 THEN 'lost' ELSE 'pending' END"""


def _jobs_sql(n: int, now: str) -> str:
    types = "[" + ",".join(f"'{t}'" for t in TYPES) + "]"
    services = "[" + ",".join(f"'{s}'" for s in SERVICES) + "]"
    step_us = SPAN_DAYS * 86_400 * 1_000_000 // n
    return f"""
    INSERT INTO jobs BY NAME
    SELECT *, {JOB_SEARCH_TEXT} AS search_text FROM (
    WITH base AS (
        SELECT i, (hash(i) >> 1)::BIGINT AS h, (hash(i * 7 + 3) >> 1)::BIGINT AS h2,
               TIMESTAMP '{now}' - to_microseconds({(n - 1)}::BIGINT * {step_us} - i * {step_us})
                   AS started_at
        FROM range({n}) t(i)
    ), b AS (
        SELECT *, {_STATUS} AS status, 1000 + h2 % 600000 AS dur_ms FROM base
    )
    SELECT
        printf('%016x', h) AS id,
        printf('%016x%016x', h, h2) AS trace_id,
        printf('%016x', h) AS span_id,
        CASE WHEN i % 20 = 19 THEN printf('%016x', (hash(i - 1) >> 1)::BIGINT) END AS parent_job_id,
        CASE WHEN i % 20 = 19 THEN printf('%016x', (hash(i - 1) >> 1)::BIGINT) END
            AS parent_span_id,
        {types}[1 + h % {len(TYPES)}] AS type,
        {types}[1 + h % {len(TYPES)}] || ' batch ' || (i % 1000) AS name,
        NULL AS operation,
        'user' || (h2 % 20) AS owner,
        {services}[1 + h2 % {len(SERVICES)}] AS service,
        status,
        CASE WHEN status = 'completed' THEN 100.0
             WHEN status = 'pending' THEN 0.0 ELSE (h2 % 10) * 10.0 END AS progress,
        CASE WHEN status IN ('running', 'lost', 'failed')
             THEN 'step-' || (h2 % {STEPS}) END AS current_step,
        {STEPS} AS total_steps,
        1 AS attempt,
        started_at,
        CASE WHEN status IN ('completed', 'failed', 'cancelled')
             THEN started_at + to_milliseconds(dur_ms) END AS ended_at,
        CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN dur_ms::DOUBLE END
            AS duration_ms,
        CASE WHEN status = 'failed' THEN 'ValueError: row ' || (h2 % 100000) || ' is invalid'
             END AS error,
        CASE WHEN status = 'failed' THEN 'ValueError' END AS error_type,
        CASE WHEN status = 'failed' THEN 'Traceback (most recent call last):\\n  File "job.py"'
             END AS stack_trace,
        CASE WHEN status = 'completed' THEN '{{"rows": ' || (h2 % 100000) || '}}' END AS result,
        CASE WHEN status = 'cancelled' THEN 'cancelled by user' END AS cancel_reason,
        '{{"source": "s3://bucket/' || (h2 % 1000) || '.csv", "batch": ' || (i % 1000) || '}}'
            AS attributes,
        coalesce(started_at + to_milliseconds(dur_ms), started_at) AS last_seen,
        status IN ('completed', 'failed', 'cancelled') AS span_received,
        '[]' AS attempts
    FROM b
    ORDER BY i
    )
    """


def _steps_sql() -> str:
    return f"""
    INSERT INTO steps BY NAME
    SELECT
        j.trace_id,
        printf('%016x', hash(j.id || s.k)) AS span_id,
        j.span_id AS parent_span_id,
        j.id AS job_id,
        s.k + 1 AS seq,
        'step-' || s.k AS name,
        CASE WHEN j.status = 'failed' AND s.k = {STEPS - 1} THEN 'failed'
             WHEN j.status IN ('running', 'lost') AND s.k = {STEPS - 1} THEN 'running'
             ELSE 'completed' END AS status,
        j.started_at + to_microseconds(coalesce(j.duration_ms, 60000)::BIGINT * 100 * s.k)
            AS started_at,
        j.started_at + to_microseconds(coalesce(j.duration_ms, 60000)::BIGINT * 100 * (s.k + 1))
            AS ended_at,
        coalesce(j.duration_ms, 60000) / {STEPS} AS duration_ms,
        CASE WHEN j.status = 'failed' AND s.k = {STEPS - 1} THEN j.error END AS error,
        '{{"rows": 5000, "table": "users"}}' AS attributes,
        true AS span_received
    FROM jobs j, range({STEPS}) s(k)
    WHERE j.status <> 'pending'
    ORDER BY j.started_at, s.k
    """


def _spans_sql() -> str:
    resource = (
        '{"service.name": "\' || service || \'", "telemetry.sdk.language": "python", '
        '"telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.38.0"}'
    )
    return f"""
    INSERT INTO spans BY NAME
    SELECT trace_id, span_id, parent_span_id, name, 1 AS kind, start_time, end_time,
           duration_ms, status_code, NULL AS status_message, service, attributes,
           NULL AS events, NULL AS links, '{resource}' AS resource,
           'jobtrail.agent' AS scope_name, '0.1.0' AS scope_version, end_time AS received_at
    FROM (
        SELECT j.trace_id, j.span_id, NULL AS parent_span_id, j.name, j.started_at AS start_time,
               j.ended_at AS end_time, j.duration_ms,
               CASE WHEN j.status = 'failed' THEN 2 ELSE 0 END AS status_code, j.service,
               '{{"job.type": "' || j.type || '", "job.name": "' || j.name
                 || '", "job.attempt": 1, "job.owner": "' || j.owner
                 || '", "job.total_steps": {STEPS}, "job.id": "' || j.id
                 || '", "job.status": "' || j.status || '", "job.progress": 100.0}}'
                 AS attributes,
               j.started_at AS o1, 0 AS o2
        FROM jobs j WHERE j.span_received
        UNION ALL
        SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.started_at, s.ended_at,
               s.duration_ms, CASE WHEN s.status = 'failed' THEN 2 ELSE 0 END, j.service,
               '{{"job.step": "' || s.name || '", "job.step.seq": ' || s.seq
                 || ', "job.id": "' || s.job_id || '", "job.step.status": "' || s.status
                 || '", "rows": 5000, "table": "users", "source": "s3://bucket/users.csv", '
                 || '"bytes": 1048576}}',
               j.started_at, s.seq
        FROM steps s JOIN jobs j ON j.id = s.job_id WHERE s.status <> 'running'
    )
    ORDER BY o1, o2
    """


def _logs_sql(n_jobs: int, per_job: int, first_id: int) -> str:
    per_step = max(1, per_job // STEPS)
    return f"""
    INSERT INTO logs BY NAME
    WITH j AS (
        SELECT row_number() OVER (ORDER BY started_at, id) - 1 AS ji, id, trace_id, service,
               started_at, coalesce(duration_ms, 60000) AS dur
        FROM jobs
    ), r AS (
        SELECT i, i // {per_job} AS ji, (i % {per_job}) // {per_step} AS k, i % {per_step} AS n,
               (hash(i) >> 1)::BIGINT AS h
        FROM range({n_jobs * per_job}) t(i)
    )
    SELECT
        {first_id} + r.i AS id,
        j.started_at + to_microseconds((j.dur * 1000 * (r.i % {per_job}) / {per_job})::BIGINT)
            AS time,
        j.started_at + to_microseconds((j.dur * 1000 * (r.i % {per_job}) / {per_job})::BIGINT)
            AS observed_time,
        j.trace_id,
        printf('%016x', hash(j.id || least(r.k, {STEPS - 1}))) AS span_id,
        CASE WHEN r.h % 100 < 10 THEN 5 WHEN r.h % 100 < 85 THEN 9
             WHEN r.h % 100 < 95 THEN 13 ELSE 17 END AS severity_number,
        CASE WHEN r.h % 100 < 10 THEN 'DEBUG' WHEN r.h % 100 < 85 THEN 'INFO'
             WHEN r.h % 100 < 95 THEN 'WARN' ELSE 'ERROR' END AS severity_text,
        CASE WHEN r.h % 100 < 10 THEN 'debug' WHEN r.h % 100 < 85 THEN 'info'
             WHEN r.h % 100 < 95 THEN 'warn' ELSE 'error' END AS level,
        CASE WHEN r.h % 100 >= 95
             THEN 'failed to write row ' || (r.h % 100000) || ': connection reset by peer'
             ELSE 'processed batch ' || r.n || ' of step-' || least(r.k, {STEPS - 1}) || ': '
                  || (r.h % 5000) || ' rows ok, cursor=' || printf('%08x', r.h % 4294967296)
        END AS body,
        '{{"row": ' || (r.h % 100000) || ', "table": "users", "job.id": "' || j.id
            || '", "job.step": "step-' || least(r.k, {STEPS - 1}) || '"}}' AS attributes,
        NULL AS event_name,
        j.id AS job_id,
        'step-' || least(r.k, {STEPS - 1}) AS step,
        printf('%016x', hash(j.id || least(r.k, {STEPS - 1}))) AS step_span_id,
        NULL AS category, NULL AS iostream,
        CASE WHEN r.h % 100 >= 95 THEN 'ConnectionResetError' END AS exception_type,
        CASE WHEN r.h % 100 >= 95 THEN 'connection reset by peer' END AS exception_message,
        NULL AS stack_trace,
        j.service,
        '{{"service.name": "' || j.service || '"}}' AS resource,
        'jobtrail.agent' AS scope_name,
        j.started_at AS received_at
    FROM r JOIN j USING (ji)
    ORDER BY r.i
    """


def _system_logs_sql(n: int, first_id: int, now: str) -> str:
    step_us = SPAN_DAYS * 86_400 * 1_000_000 // max(1, n)
    return f"""
    INSERT INTO logs BY NAME
    SELECT {first_id} + i AS id,
           TIMESTAMP '{now}' - to_microseconds(({n} - i)::BIGINT * {step_us}) AS time,
           TIMESTAMP '{now}' - to_microseconds(({n} - i)::BIGINT * {step_us}) AS observed_time,
           9 AS severity_number, 'INFO' AS severity_text, 'info' AS level,
           'worker heartbeat: queue depth ' || (hash(i) % 100) AS body,
           '{{"queue": "default"}}' AS attributes,
           'worker-a' AS service, '{{"service.name": "worker-a"}}' AS resource,
           'celery.worker' AS scope_name,
           TIMESTAMP '{now}' - to_microseconds(({n} - i)::BIGINT * {step_us}) AS received_at
    FROM range({n}) t(i)
    """


def generate(path: Path, *, jobs: int, logs_per_job: int = 50) -> dict[str, Any]:
    """Create ``path`` (must not exist) and fill it; return row counts, bytes and seconds."""
    if path.exists():
        raise FileExistsError(path)
    Database(path).close()  # the product's own schema and migrations
    con = duckdb.connect(str(path))
    con.execute("SET enable_progress_bar = false")
    # Bounded so building the 1M-job file (about 20 GB of RAM unbounded) spills to disk
    # instead of crowding out everything else on the machine.
    con.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
    now = con.execute("SELECT strftime(now()::TIMESTAMP, '%Y-%m-%d %H:%M:%S')").fetchone()[0]  # type: ignore[index]
    con.execute("CHECKPOINT")
    sizes: dict[str, int] = {}
    seconds: dict[str, float] = {}
    last = path.stat().st_size
    n_logs = jobs * logs_per_job
    n_system = max(1, n_logs // 100)
    steps = [
        ("jobs", _jobs_sql(jobs, now)),
        ("steps", _steps_sql()),
        ("spans", _spans_sql()),
        ("logs", _logs_sql(jobs, logs_per_job, 1)),
        ("system_logs", _system_logs_sql(n_system, 1 + n_logs, now)),
        ("log_summaries", ""),
    ]
    for name, sql in steps:
        t0 = time.perf_counter()
        if name == "log_summaries":
            rebuild_log_summaries(con)  # what the writer keeps as logs arrive
        else:
            con.execute(sql)
        con.execute("CHECKPOINT")
        seconds[name] = time.perf_counter() - t0
        print(f"bulkgen: {name} in {seconds[name]:.0f} s", flush=True)
        size = path.stat().st_size
        sizes[name] = size - last
        last = size
    counts = {
        t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
        for t in ("jobs", "steps", "spans", "logs")
    }
    con.close()
    return {
        "jobs": jobs,
        "logs_per_job": logs_per_job,
        "rows": counts,
        "table_bytes": sizes,
        "file_bytes": path.stat().st_size,
        "seconds": seconds,
        "bytes_per_span": sizes["spans"] / max(1, counts["spans"]),
        "bytes_per_log": (sizes["logs"] + sizes["system_logs"]) / max(1, counts["logs"]),
        "bytes_per_job": sizes["jobs"] / max(1, counts["jobs"]),
        "bytes_per_step": sizes["steps"] / max(1, counts["steps"]),
    }


def main() -> None:
    """``python -m bench.bulkgen FILE --jobs N``."""
    ap = argparse.ArgumentParser(prog="python -m bench.bulkgen")
    ap.add_argument("file", type=Path)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--logs-per-job", type=int, default=50)
    args = ap.parse_args()
    import json

    print(json.dumps(generate(args.file, jobs=args.jobs, logs_per_job=args.logs_per_job), indent=2))


if __name__ == "__main__":
    main()
