"""Newest-first pages of jobs that read recent row groups first.

A page of the jobs list is the newest ``limit`` matches. DuckDB finds them by checking
every row against the filter, so a text search or a common status costs a scan of the
whole table even though the answer lies in the last hour. Jobs are stored roughly in the
order they start, and DuckDB keeps each row group's smallest and largest ``started_at``:
a bound on ``started_at`` skips every older row group. So the page is first looked for
in a recent window; only when that window holds fewer than a page of matches is it
widened, finally to everything (jobs without a start time sort last and are found there).

The answer is the same as the plain query's: if the window holds at least ``limit``
matches, the newest ``limit`` of all matches are in it, because everything outside it
started earlier.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb

from jobtrail.storage._sql import Where, fetch_dicts, utcnow

#: Windows tried before the whole table; together a small fraction of a month's scan.
_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7))


def newest_jobs(
    cur: duckdb.DuckDBPyConnection,
    select: str,
    where: Where,
    *,
    limit: int,
    before: datetime | None,
    since: datetime | None,
    windowed: bool = True,
) -> list[dict[str, Any]]:
    """``{select} {where} ORDER BY started_at DESC NULLS LAST, id DESC LIMIT limit``.

    Args:
        cur: A read cursor.
        select: ``SELECT ... FROM jobs j`` (constant SQL).
        where: The page's filter (already holding any cursor condition).
        limit: Rows wanted.
        before: The cursor's ``started_at`` (where the page continues), if any.
        since: The filter's own lower bound on ``started_at``, if any.
        windowed: ``False`` when the page lies among jobs without a start time.
    """
    order = "ORDER BY j.started_at DESC NULLS LAST, j.id DESC LIMIT $limit"
    params = {**where.params, "limit": limit}
    top = before or utcnow()
    for window in _WINDOWS if windowed else ():
        lower = top - window
        if since is not None and lower <= since:
            break  # the filter's own range is narrower than the window
        clause = f"{where.sql()} {'AND' if where.clauses else 'WHERE'} j.started_at >= $window"
        rows = fetch_dicts(cur, f"{select} {clause} {order}", {**params, "window": lower})
        if len(rows) >= limit:
            return rows
    return fetch_dicts(cur, f"{select} {where.sql()} {order}", params)
