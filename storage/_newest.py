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
started earlier. A wider window reads only what the narrower ones did not (the matches
found so far are kept), so a rare match costs one pass over the table, not one per window;
and a window that would, at the rate of matches seen so far, still not fill the page is
skipped for the rest of the table.
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
    joiner = "AND" if where.clauses else "WHERE"
    found: list[dict[str, Any]] = []
    newer_than: datetime | None = None  # every match at or after this is in ``found``
    top = before or utcnow()
    covered = timedelta(0)
    for window in _WINDOWS if windowed else ():
        lower = top - window
        if since is not None and lower <= since:
            break  # the filter's own range is narrower than the window
        if found and len(found) * (window / covered) < limit:
            break  # at the density seen so far this window would not fill the page
        slice_ = "j.started_at >= $window"
        if newer_than is not None:
            slice_ += " AND j.started_at < $newer_than"
        params = {**where.params, "limit": limit - len(found), "window": lower}
        if newer_than is not None:
            params["newer_than"] = newer_than
        found += fetch_dicts(cur, f"{select} {where.sql()} {joiner} {slice_} {order}", params)
        if len(found) >= limit:
            return found
        newer_than, covered = lower, window
    params = {**where.params, "limit": limit - len(found)}
    rest = where.sql()
    if newer_than is not None:  # only what the windows did not cover: each row is read once
        rest += f" {joiner} (j.started_at < $newer_than OR j.started_at IS NULL)"
        params["newer_than"] = newer_than
    return found + fetch_dicts(cur, f"{select} {rest} {order}", params)
