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


#: Log id windows (in pages) tried before the whole table; ids grow with arrival.
_LOG_WINDOWS = (8, 256)


def newest_logs(
    cur: duckdb.DuckDBPyConnection,
    select: str,
    where: Where,
    *,
    limit: int,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """``{select} {where} ORDER BY l.id DESC LIMIT limit``, the newest ids read first.

    Log ids grow with arrival and DuckDB keeps each row group's smallest and largest id, so
    a bound on ``l.id`` skips every older row group: the newest page of 5M records takes
    7 ms instead of 26. A window is read only where no narrower one did, and skipped when
    the matches seen so far say it cannot fill the page. ``before_id`` (already in
    ``where``) is where a page scrolled back to starts.
    """
    order = "ORDER BY l.id DESC LIMIT $limit"
    joiner = "AND" if where.clauses else "WHERE"
    if before_id is not None:
        top: int | None = before_id - 1
    else:
        row = cur.execute("SELECT max(id) FROM logs").fetchone()
        top = row[0] if row else None
    found: list[dict[str, Any]] = []
    above: int | None = None  # every match with an id above this is in ``found``
    covered = 0
    for pages in _LOG_WINDOWS:
        if top is None:
            break  # no records at all
        span = pages * limit
        if found and len(found) * span / covered < limit:
            break
        lower = top - span
        slice_ = "l.id > $window" + ("" if above is None else " AND l.id <= $above")
        params = {**where.params, "limit": limit - len(found), "window": lower}
        if above is not None:
            params["above"] = above
        found += fetch_dicts(cur, f"{select} {where.sql()} {joiner} {slice_} {order}", params)
        if len(found) >= limit or lower <= 0:
            return found
        above, covered = lower, span
    params = {**where.params, "limit": limit - len(found)}
    rest = where.sql()
    if above is not None:
        rest += f" {joiner} l.id <= $above"
        params["above"] = above
    return found + fetch_dicts(cur, f"{select} {rest} {order}", params)
