"""``get_stats``: the numbers behind the stats page, in a handful of aggregate scans.

Kept apart from :mod:`jobtrail.storage.queries` because it is the one query whose cost
grows with the time range rather than the page size; callers should pass ``since``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from jobtrail.storage._query_model import (
    Bucket,
    InvalidParameter,
    JobStats,
    LogStats,
    RecentError,
    Stats,
    StatsFilter,
)
from jobtrail.storage._sql import Where, by_level, fetch_dicts, format_ts, snapshot, ts, utcnow
from jobtrail.storage.log_counts import count_logs

#: Buckets are aligned to this instant (a midnight UTC), like DuckDB's ``time_bucket``.
_ORIGIN = datetime(2000, 1, 1)
#: Bucket sizes tried, smallest first, when the caller leaves the choice to us.
_BUCKET_LADDER_S = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
_TARGET_BUCKETS = 120
MAX_BUCKETS = 2000
_RECENT_ERRORS = 10
_TOP_CATEGORIES = 100


def format_bucket(seconds: int) -> str:
    """``3600`` -> ``'1h'``: the largest unit that divides the size."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _choose_bucket(span: timedelta) -> int:
    for size in _BUCKET_LADDER_S:
        if span / timedelta(seconds=size) <= _TARGET_BUCKETS:
            return size
    return _BUCKET_LADDER_S[-1]


def _matching_jobs(flt: StatsFilter) -> Where:
    """The slice's conditions on a job ``j`` other than time (logs are sliced by their own)."""
    where = Where()
    if flt.type is not None:
        where.add("j.type = $type", type=flt.type)
    if flt.owner is not None:
        where.add("j.owner = $owner", owner=flt.owner)
    if flt.service is not None:
        where.add("j.service = $service", service=flt.service)
    return where


def _job_where(flt: StatsFilter) -> Where:
    where = _matching_jobs(flt)
    if flt.since is not None:
        where.add("j.started_at >= $since", since=flt.since)
    if flt.until is not None:
        where.add("j.started_at < $until", until=flt.until)
    return where


def _job_stats(
    cur: duckdb.DuckDBPyConnection, where: Where
) -> tuple[JobStats, datetime | None, datetime | None]:
    rows = cur.execute(
        f"SELECT j.type, j.status, count(*) FROM jobs j {where.sql()} GROUP BY ALL",  # noqa: S608
        where.params,
    ).fetchall()
    by_status: dict[str, int] = {}
    by_type: dict[str, dict[str, int]] = {}
    for job_type, job_status, n in rows:
        by_status[job_status] = by_status.get(job_status, 0) + n
        counts = by_type.setdefault(job_type or "", {"total": 0})
        counts["total"] += n
        counts[job_status] = counts.get(job_status, 0) + n
    agg = cur.execute(
        "SELECT avg(j.duration_ms), quantile_cont(j.duration_ms, 0.5), "  # noqa: S608
        "quantile_cont(j.duration_ms, 0.95), min(j.started_at), max(j.started_at) "
        f"FROM jobs j {where.sql()}",
        where.params,
    ).fetchone()
    avg, p50, p95, first, last = agg if agg else (None,) * 5
    completed, failed = by_status.get("completed", 0), by_status.get("failed", 0)
    stats: JobStats = {
        "total": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "by_type": dict(sorted(by_type.items())),
        "success_rate": completed / (completed + failed) if completed + failed else None,
        # Microseconds are the stored precision: rounding there also makes the average
        # independent of the order rows were summed in (two lake collectors may differ).
        "duration_ms": {"avg": None if avg is None else round(avg, 3), "p50": p50, "p95": p95},
    }
    return stats, first, last


def _log_stats(cur: duckdb.DuckDBPyConnection, flt: StatsFilter) -> LogStats:
    jobs = _matching_jobs(flt)
    if not jobs.clauses:  # the hourly counts answer it; a job filter needs each record's job
        levels, categories = count_logs(cur, flt.since, flt.until)
        top = sorted(((c, n) for c, n in categories.items() if c and n), key=lambda cn: -cn[1])
        return {
            "total": sum(levels.values()),
            "by_level": by_level({level: n for level, n in levels.items() if n}),
            "by_category": dict(top[:_TOP_CATEGORIES]),
        }
    where = Where()
    where.add("l.event_name IS NULL")
    if flt.since is not None:
        where.add("l.time >= $since", since=flt.since)
    if flt.until is not None:
        where.add("l.time < $until", until=flt.until)
    where.add(f"l.job_id IN (SELECT j.id FROM jobs j {jobs.sql()})", **jobs.params)
    rows = cur.execute(
        "SELECT grouping(l.level), l.level, l.category, count(*) AS n "  # noqa: S608
        f"FROM logs l {where.sql()} "
        "GROUP BY GROUPING SETS ((l.level), (l.category)) ORDER BY n DESC",
        where.params,
    ).fetchall()
    levels = {}
    categories = {}
    for level_grouped, level, category, n in rows:
        if not level_grouped:
            levels[level or "unknown"] = n
        elif category is not None and len(categories) < _TOP_CATEGORIES:
            categories[category] = n
    return {"total": sum(levels.values()), "by_level": by_level(levels), "by_category": categories}


def _buckets(
    cur: duckdb.DuckDBPyConnection,
    where: Where,
    start: datetime,
    end: datetime,
    bucket_s: int,
) -> list[Bucket]:
    size = timedelta(seconds=bucket_s)
    first = _ORIGIN + ((start - _ORIGIN) // size) * size
    count = max(1, -((first - end) // size))
    if count > MAX_BUCKETS:
        raise InvalidParameter(
            f"{format_bucket(bucket_s)} makes {count} buckets over the range (at most "
            f"{MAX_BUCKETS}); use a larger bucket or a narrower since/until",
            name="bucket",
        )
    params = {**where.params, "bucket_s": bucket_s}
    clause = f"{where.sql()} {'AND' if where.clauses else 'WHERE'} j.started_at IS NOT NULL"
    rows = cur.execute(
        "SELECT time_bucket(to_seconds($bucket_s), j.started_at, TIMESTAMP '2000-01-01') AS b, "  # noqa: S608
        "count(*), count(*) FILTER (WHERE j.status = 'completed'), "
        f"count(*) FILTER (WHERE j.status = 'failed') FROM jobs j {clause} GROUP BY b",
        params,
    ).fetchall()
    found = {b: (total, ok, bad) for b, total, ok, bad in rows}
    out: list[Bucket] = []
    for i in range(count):
        at = first + i * size
        total, ok, bad = found.get(at, (0, 0, 0))
        out.append({"start": format_ts(at), "total": total, "completed": ok, "failed": bad})
    return out


def get_stats(
    cur: duckdb.DuckDBPyConnection,
    flt: StatsFilter | None = None,
    *,
    bucket_s: int | None = None,
    now: datetime | None = None,
) -> Stats:
    """Counts by status, type, level and category; success rate; durations; time buckets.

    A job filter (type, owner, service) narrows the log counts to its jobs' records.
    Buckets cover ``since`` (or the first job) to ``until`` (or now), zero-filled so a chart
    shows quiet periods. Without ``bucket_s`` a size giving at most ~120 buckets is chosen.

    Args:
        cur: A read cursor.
        flt: The slice to summarise; everything when ``None``.
        bucket_s: Bucket size in seconds.
        now: End of an open range (naive UTC); tests pin it.

    Raises:
        InvalidParameter: ``bucket_s`` would make more than :data:`MAX_BUCKETS` buckets.
    """
    flt = flt or StatsFilter()
    now = now or utcnow()
    where = _job_where(flt)
    with snapshot(cur):
        jobs, first, last = _job_stats(cur, where)
        logs = _log_stats(cur, flt)
        errors = fetch_dicts(
            cur,
            f"SELECT j.id, j.name, j.type, j.error, j.error_type, {ts('j.ended_at')} "  # noqa: S608
            f"FROM jobs j {where.sql()} {'AND' if where.clauses else 'WHERE'} "
            "j.status = 'failed' ORDER BY j.ended_at DESC NULLS LAST, j.id DESC LIMIT $n",
            {**where.params, "n": _RECENT_ERRORS},
        )
        start = flt.since or first
        # Exclusive end: one microsecond past the newest job so its bucket is included.
        end = flt.until or max(now, last or now) + timedelta(microseconds=1)
        if bucket_s is None:
            bucket_s = _choose_bucket(end - start if start and end > start else timedelta(0))
        buckets: list[Bucket] = []
        if start is not None and end > start:
            buckets = _buckets(cur, where, start, end, bucket_s)
    recent: list[RecentError] = errors  # type: ignore[assignment]
    return {
        "jobs": jobs,
        "logs": logs,
        "recent_errors": recent,
        "bucket": format_bucket(bucket_s),
        "buckets": buckets,
    }
