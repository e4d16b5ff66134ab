"""Hourly log counts by level and category, so stats over a long range do not scan every log.

The stats page wants, for a time range, how many log records there are of each level and
category. Scanning ``logs`` for that grows with the table (50 million records: most of a
second). The writer keeps ``log_counts`` — one row per hour, level and category — in the
same transaction that stores the records, and :func:`count_logs` answers whole hours from it
and only the partial hours at the ends of a range from ``logs`` itself.

Lifecycle records (``event_name`` set) are not counted, as in the stats. A record without a
timestamp counts in a sentinel hour that only unbounded ranges include, as the scan does.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import duckdb

#: The hour under which records with no timestamp are counted.
NO_TIME_HOUR = datetime(1, 1, 1)
_HOUR = timedelta(hours=1)

LOG_COUNTS_DDL = """
CREATE TABLE log_counts (
    hour      TIMESTAMP NOT NULL,
    level     VARCHAR NOT NULL,
    category  VARCHAR NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (hour, level, category)
)"""

# '' stands for "no category" and 'unknown' for "no level": key columns cannot be NULL.
_GROUPED = """
    SELECT coalesce(date_trunc('hour', time), TIMESTAMP '0001-01-01') AS hour,
           coalesce(level, 'unknown') AS level, coalesce(category, '') AS category,
           count(*) AS n
    FROM {source} WHERE event_name IS NULL GROUP BY ALL"""


def record_log_counts(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Add the records of table or view ``source`` (just inserted into ``logs``) to the counts."""
    con.execute(
        "INSERT INTO log_counts " + _GROUPED.format(source=source) + " "
        "ON CONFLICT (hour, level, category) DO UPDATE SET n = n + excluded.n"
    )


def rebuild_log_counts(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every count from ``logs`` (after records were deleted or bulk-loaded)."""
    con.execute("DELETE FROM log_counts")
    con.execute("INSERT INTO log_counts " + _GROUPED.format(source="logs"))


def _ceil_hour(t: datetime) -> datetime:
    floor = t.replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else floor + _HOUR


def _floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def count_logs(
    cur: duckdb.DuckDBPyConnection, since: datetime | None, until: datetime | None
) -> tuple[Counter[str], Counter[str]]:
    """Records with ``since <= time < until`` (either open) by level and by category.

    Categories are keyed ``''`` for records without one.
    """
    levels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    inner_from = _ceil_hour(since) if since is not None else None
    inner_to = _floor_hour(until) if until is not None else None
    if inner_from is not None and inner_to is not None and inner_from >= inner_to:
        _scan(cur, since, until, levels, categories)  # inside one hour: the scan is small
        return levels, categories
    clauses, params = [], []
    if inner_from is not None:
        clauses.append("hour >= ?")
        params.append(inner_from)
    if inner_to is not None:
        clauses.append("hour < ?")
        params.append(inner_to)
    if since is None and until is not None:
        clauses.append("hour > ?")  # the scan's "time < until" excludes records with no time
        params.append(NO_TIME_HOUR)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = cur.execute(
        f"SELECT level, category, sum(n) FROM log_counts {where} GROUP BY ALL",  # noqa: S608
        params,
    ).fetchall()
    for level, category, n in rows:
        levels[level] += int(n)
        categories[category] += int(n)
    if since is not None and inner_from is not None and since < inner_from:
        _scan(cur, since, inner_from, levels, categories)
    if until is not None and inner_to is not None and inner_to < until:
        _scan(cur, inner_to, until, levels, categories)
    return levels, categories


def _scan(
    cur: duckdb.DuckDBPyConnection,
    since: datetime | None,
    until: datetime | None,
    levels: Counter[str],
    categories: Counter[str],
) -> None:
    rows = cur.execute(
        "SELECT coalesce(level, 'unknown'), coalesce(category, ''), count(*) FROM logs "
        "WHERE event_name IS NULL AND time >= ? AND time < ? GROUP BY ALL",
        [since, until],
    ).fetchall()
    for level, category, n in rows:
        levels[level] += int(n)
        categories[category] += int(n)
