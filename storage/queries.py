"""Every query the API serves, as functions of a DuckDB cursor returning JSON-ready dicts.

Each function filters first and ends in ``LIMIT`` so its cost follows the page size, not
the table size, as far as the schema allows (see the index notes in the API report).
Values from requests are always bound parameters. Functions that run several statements
do so in one read transaction, so a job and its steps come from the same commit.

Example:
    >>> from jobtrail.storage import Database
    >>> from jobtrail.storage.queries import JobFilter, list_jobs
    >>> db = Database(":memory:")
    >>> list_jobs(db.cursor(), JobFilter(statuses=("failed",)), limit=10)
    {'jobs': [], 'next_cursor': None}
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import duckdb

from jobtrail.storage._log_pages import (
    _fetch_logs,
    _log_range,
    _log_where,
    _next_after,
)
from jobtrail.storage._newest import newest_jobs
from jobtrail.storage._query_model import (
    Bucket,
    ChildRow,
    DurationStats,
    InvalidParameter,
    JobDetail,
    JobFilter,
    JobLogsPage,
    JobNotFound,
    JobPage,
    JobRow,
    JobStats,
    LogFilter,
    LogRow,
    LogsPage,
    LogStats,
    NotFound,
    QueryError,
    RecentError,
    SpanRow,
    Stats,
    StatsFilter,
    StepRow,
    Trace,
    TraceNotFound,
)
from jobtrail.storage._sql import (
    Where,
    by_level,
    decode_cursor,
    encode_cursor,
    fetch_dicts,
    parse_json,
    snapshot,
    sql_strings,
    ts,
)
from jobtrail.storage._stats import get_stats
from jobtrail.storage._traces import get_trace

__all__ = [
    "Bucket",
    "ChildRow",
    "DurationStats",
    "InvalidParameter",
    "JobDetail",
    "JobFilter",
    "JobLogsPage",
    "JobNotFound",
    "JobPage",
    "JobRow",
    "JobStats",
    "LogFilter",
    "LogRow",
    "LogStats",
    "LogsPage",
    "NotFound",
    "QueryError",
    "RecentError",
    "SpanRow",
    "Stats",
    "StatsFilter",
    "StepRow",
    "Trace",
    "TraceNotFound",
    "get_job",
    "get_stats",
    "get_trace",
    "job_logs",
    "list_jobs",
    "list_logs",
    "ping",
]

Cursor = duckdb.DuckDBPyConnection

_MAX_CHILDREN = 1000

_JOB_COLUMNS = (
    "j.id, j.trace_id, j.span_id, j.parent_job_id, j.type, j.name, j.operation, j.owner, "
    "j.service, j.status, j.progress, j.current_step, j.total_steps, j.attempt, "
    f"{ts('j.started_at')}, {ts('j.ended_at')}, j.duration_ms, j.error, j.result, "
    f"j.attributes, {ts('j.last_seen')}, {ts('j.queued_at')}"
)
_DETAIL_COLUMNS = (
    "j.parent_span_id, j.error_type, j.stack_trace, j.cancel_reason, j.attempts, "
    "coalesce(j.logs_dropped, 0) AS logs_dropped"
)


def ping(cur: Cursor) -> None:
    """Fail unless the database answers a query (readiness checks)."""
    cur.execute("SELECT count(*) FROM jobtrail_schema").fetchall()


# --- jobs ---------------------------------------------------------------------------------


def _job_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        row["result"] = parse_json(row["result"])
        row["attributes"] = parse_json(row["attributes"], {})
        if "attempts" in row:
            row["attempts"] = parse_json(row["attempts"], [])


def _child_counts(cur: Cursor, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    # A literal list goes through the ``parent_job_id`` index; ``unnest`` would scan.
    listed = sql_strings(ids)
    if listed is not None:
        rows = cur.execute(
            f"SELECT parent_job_id, count(*) FROM jobs WHERE parent_job_id IN ({listed}) "  # noqa: S608
            "GROUP BY parent_job_id"
        ).fetchall()
    else:
        rows = cur.execute(
            "SELECT parent_job_id, count(*) FROM jobs "
            "WHERE parent_job_id IN (SELECT unnest($ids)) GROUP BY parent_job_id",
            {"ids": ids},
        ).fetchall()
    return {parent: int(n) for parent, n in rows}


def list_jobs(
    cur: Cursor,
    flt: JobFilter | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> JobPage:
    """Jobs newest first by ``(started_at DESC, id DESC)``, one page at a time.

    Keyset paging (``cursor``) rather than ``OFFSET`` keeps deep pages as cheap as the
    first and stable while new jobs arrive. Jobs not yet started sort last.

    Args:
        cur: A read cursor.
        flt: Which jobs; all when ``None``.
        limit: Page size.
        cursor: ``next_cursor`` of the previous page.

    Raises:
        InvalidParameter: ``cursor`` was not made by this function.
    """
    flt = flt or JobFilter()
    where = Where()
    if flt.type is not None:
        where.add("j.type = $type", type=flt.type)
    if flt.statuses:
        where.add("list_contains($statuses, j.status)", statuses=list(flt.statuses))
    if flt.owner is not None:
        where.add("j.owner = $owner", owner=flt.owner)
    if flt.service is not None:
        where.add("j.service = $service", service=flt.service)
    if flt.since is not None:
        where.add("j.started_at >= $since", since=flt.since)
    if flt.until is not None:
        where.add("j.started_at < $until", until=flt.until)
    if flt.q:
        where.add("contains(j.search_text, $q)", q=flt.q.lower())  # name, id, type, error
    if flt.top_level_only:
        where.add("j.parent_job_id IS NULL")
    elif flt.parent is not None:
        where.add("j.parent_job_id = $parent", parent=flt.parent)
    after_started, windowed = None, True
    if cursor:
        after_started, after_id = decode_cursor(cursor)
        windowed = after_started is not None
        if after_started is None:
            where.add("(j.started_at IS NULL AND j.id < $cursor_id)", cursor_id=after_id)
        else:
            where.add(
                "(j.started_at < $cursor_ts OR (j.started_at = $cursor_ts AND j.id < $cursor_id)"
                " OR j.started_at IS NULL)",
                cursor_ts=after_started,
                cursor_id=after_id,
            )
    rows = newest_jobs(
        cur,
        f"SELECT {_JOB_COLUMNS} FROM jobs j",
        where,
        limit=limit + 1,
        before=after_started,
        since=flt.since,
        windowed=windowed,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    _job_rows(rows)
    counts = _child_counts(cur, [r["id"] for r in rows])
    for row in rows:
        row["child_count"] = counts.get(row["id"], 0)
    last = rows[-1] if more else None
    return {
        "jobs": cast(list[JobRow], rows),
        "next_cursor": encode_cursor(last["started_at"], last["id"]) if last else None,
    }


def _one_job(cur: Cursor, job_id: str, *, detail: bool) -> dict[str, Any]:
    columns = _JOB_COLUMNS + (f", {_DETAIL_COLUMNS}" if detail else "")
    rows = fetch_dicts(cur, f"SELECT {columns} FROM jobs j WHERE j.id = $id", {"id": job_id})  # noqa: S608
    if not rows:
        raise JobNotFound(job_id=job_id)
    _job_rows(rows)
    return rows[0]


def get_job(
    cur: Cursor,
    job_id: str,
    *,
    max_children: int = _MAX_CHILDREN,
) -> JobDetail:
    """One job with its ordered steps, child jobs and log counts by level.

    Steps are ordered by ``seq`` (clients that number them) then ``started_at`` (those that
    do not). At most ``max_children`` children are listed; ``child_count`` has them all.

    Raises:
        JobNotFound: No job has this id.
    """
    with snapshot(cur):
        job = _one_job(cur, job_id, detail=True)
        steps = fetch_dicts(
            cur,
            f"SELECT s.span_id, s.seq, s.name, s.status, {ts('s.started_at')}, "
            f"{ts('s.ended_at')}, s.duration_ms, s.error, s.attributes FROM steps s "
            "WHERE s.job_id = $id "
            "ORDER BY s.seq NULLS LAST, s.started_at NULLS LAST, s.span_id",
            {"id": job_id},
        )
        children = fetch_dicts(
            cur,
            f"SELECT j.id, j.name, j.type, j.status, {ts('j.started_at')}, j.duration_ms "
            "FROM jobs j WHERE j.parent_job_id = $id "
            "ORDER BY j.started_at NULLS LAST, j.id LIMIT $limit",
            {"id": job_id, "limit": max_children},
        )
        child_count = _child_counts(cur, [job_id]).get(job_id, 0)
        lo, hi = _log_range(cur, job_id)
        counts = cur.execute(
            "SELECT level, count(*) FROM logs WHERE id BETWEEN $lo AND $hi AND job_id = $id "
            "AND event_name IS NULL GROUP BY level",
            {"id": job_id, "lo": lo, "hi": hi},
        ).fetchall()
    for step in steps:
        step["attributes"] = parse_json(step["attributes"], {})
    job.update(
        child_count=child_count,
        steps=steps,
        children=children,
        log_counts=by_level({str(level): int(n) for level, n in counts}),
    )
    return cast(JobDetail, job)


# --- logs ---------------------------------------------------------------------------------


def job_logs(
    cur: Cursor,
    job_id: str,
    flt: LogFilter | None = None,
    *,
    after_id: int | None = None,
    limit: int = 1000,
) -> JobLogsPage:
    """A job and its log records in id order, from the start or after ``after_id``.

    ``next_after_id`` is the last id returned (or ``after_id`` when nothing new), so a
    poller can always pass it back. ``flt.job_id`` is ignored: ``job_id`` decides.

    Raises:
        JobNotFound: No job has this id.
    """
    flt = flt or LogFilter()
    with snapshot(cur):
        job = _one_job(cur, job_id, detail=False)
        job["child_count"] = _child_counts(cur, [job_id]).get(job_id, 0)
        where = _log_where(replace(flt, job_id=job_id))
        lo, hi = _log_range(cur, job_id)
        where.add("l.id BETWEEN $lo AND $hi", lo=lo, hi=hi)
        if after_id is not None:
            where.add("l.id > $after_id", after_id=after_id)
        logs = _fetch_logs(cur, where, limit=limit, newest=False, span=hi - lo)
    return {
        "job": cast(JobRow, job),
        "logs": logs,
        "next_after_id": _next_after(logs, after_id),
    }


def list_logs(
    cur: Cursor,
    flt: LogFilter | None = None,
    *,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int = 1000,
) -> LogsPage:
    """Log records of every job and none, always in ascending id order.

    With ``after_id`` the page is the records right after it (tailing); otherwise it is
    the newest ``limit`` records (before ``before_id`` if given, for scrolling back).
    """
    where = _log_where(flt or LogFilter())
    if after_id is not None:
        where.add("l.id > $after_id", after_id=after_id)
    if before_id is not None:
        where.add("l.id < $before_id", before_id=before_id)
    with snapshot(cur):  # the page's ids and its rows from the same state
        logs = _fetch_logs(cur, where, limit=limit, newest=after_id is None)
    return {"logs": logs, "next_after_id": _next_after(logs, after_id)}
