"""Reads for live streams: what one commit stored, and the filters applied in memory.

The broker reads each commit once (:func:`logs_in_range`, :func:`jobs_by_ids`) and checks
every subscriber's filter against the rows in Python (:func:`log_matches`), with the same
meaning as the SQL filters of :mod:`jobtrail.storage.queries`.
"""

from __future__ import annotations

from typing import Any, cast

import duckdb

from jobtrail.storage._log_pages import _LOG_COLUMNS, _fetch_logs, _log_where
from jobtrail.storage._query_model import JobRow, LogFilter, LogRow
from jobtrail.storage._sql import fetch_dicts, log_data, snapshot, ts
from jobtrail.storage.queries import _JOB_COLUMNS, _job_rows

Cursor = duckdb.DuckDBPyConnection

_MAX_RANGE = 200_000


def logs_in_range(cur: Cursor, first_id: int, last_id: int) -> list[LogRow]:
    """Every log record with ``first_id <= id <= last_id`` (lifecycle records included)."""
    last_id = min(last_id, first_id + _MAX_RANGE - 1)
    rows = fetch_dicts(
        cur,
        f"SELECT {_LOG_COLUMNS} FROM logs l WHERE l.id BETWEEN $first AND $last ORDER BY l.id",  # noqa: S608
        {"first": first_id, "last": last_id},
    )
    for row in rows:
        row["data"] = log_data(row.pop("attributes"))
    return cast(list[LogRow], rows)


def logs_after(cur: Cursor, after_id: int, flt: LogFilter, *, limit: int) -> list[LogRow]:
    """Replay for a reconnecting client: matching records after ``after_id``, oldest first."""

    where = _log_where(flt)
    where.add("l.id > $after_id", after_id=after_id)
    with snapshot(cur):
        return _fetch_logs(cur, where, limit=limit, newest=False)


def jobs_by_ids(cur: Cursor, ids: list[str]) -> list[JobRow]:
    """The current rows of these jobs, each with its ``steps`` (so step changes show live)."""
    if not ids:
        return []
    rows = fetch_dicts(
        cur,
        f"SELECT {_JOB_COLUMNS} FROM jobs j WHERE j.id IN (SELECT unnest($ids))",  # noqa: S608
        {"ids": ids},
    )
    _job_rows(rows)
    steps = fetch_dicts(
        cur,
        f"SELECT job_id, span_id, seq, name, status, {ts('started_at')}, {ts('ended_at')}, "  # noqa: S608
        "duration_ms, error FROM steps WHERE job_id IN (SELECT unnest($ids)) "
        "ORDER BY job_id, seq NULLS LAST, started_at",
        {"ids": ids},
    )
    by_job: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_job.setdefault(step.pop("job_id"), []).append(step)
    for row in rows:
        row["steps"] = by_job.get(row["id"], [])
    return cast(list[JobRow], rows)


def log_matches(flt: LogFilter, row: LogRow | dict[str, Any]) -> bool:
    """Whether a log row passes a filter (the in-memory twin of the SQL filter)."""
    if row.get("event_name") and not flt.include_events:
        return False
    if flt.levels and row.get("level") not in flt.levels:
        return False
    if flt.job_id is not None and row.get("job_id") != flt.job_id:
        return False
    if flt.step is not None and row.get("step") != flt.step:
        return False
    if flt.span_id is not None and flt.span_id not in (row.get("step_span_id"), row.get("span_id")):
        return False
    if flt.service is not None and row.get("service") != flt.service:
        return False
    if flt.categories and row.get("category") not in flt.categories:
        return False
    if flt.kinds:
        kind = "system" if row.get("job_id") is None else ("step" if row.get("step") else "job")
        if kind not in flt.kinds:
            return False
    if flt.q:
        needle = flt.q.lower()
        text = f"{row.get('message') or ''} {row.get('data') or ''}".lower()
        if needle not in text:
            return False
    return True
