"""Pages of log records: the filter, and fetching a page without reading every row id.

Shared by the API's job-log and log pages and the live streams' replay.
"""

from __future__ import annotations

from typing import cast

import duckdb

from jobtrail.storage._query_model import LogFilter, LogRow
from jobtrail.storage._sql import Where, fetch_dicts, log_data, text_match, ts

Cursor = duckdb.DuckDBPyConnection

_LOG_COLUMNS = (
    f"l.id, {ts('l.time')}, l.level, l.severity_number, l.severity_text, l.body AS message, "
    "l.attributes, l.job_id, l.step, l.step_span_id, l.category, l.iostream, l.exception_type, "
    "l.exception_message, l.stack_trace, l.trace_id, l.span_id, l.event_name, l.service"
)
_LOG_KIND_SQL = {
    "job": "(l.job_id IS NOT NULL AND l.step IS NULL)",
    "step": "l.step IS NOT NULL",
    "system": "l.job_id IS NULL",
}


def _log_range(cur: Cursor, job_id: str) -> tuple[int, int]:
    """The smallest and largest log id of a job (an empty range when it has no logs).

    A filter on this range lets DuckDB skip the row groups of ``logs`` outside it, so one
    job's logs cost the same at 50 thousand or 50 million records.
    """
    row = cur.execute(
        "SELECT lo, hi FROM job_log_ranges WHERE job_id = $id", {"id": job_id}
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (1, 0)


def _log_where(flt: LogFilter) -> Where:
    where = Where()
    if flt.job_id is not None:
        where.add("l.job_id = $job_id", job_id=flt.job_id)
    if flt.levels:
        where.add("list_contains($levels, l.level)", levels=list(flt.levels))
    if flt.kinds:
        where.add("(" + " OR ".join(_LOG_KIND_SQL[k] for k in flt.kinds) + ")")
    if flt.categories:
        where.add("list_contains($categories, l.category)", categories=list(flt.categories))
    if flt.step is not None:
        where.add("l.step = $step", step=flt.step)
    if flt.span_id is not None:
        # The step run's records (nested spans too), or those logged right in this span.
        where.add("(l.step_span_id = $span_id OR l.span_id = $span_id)", span_id=flt.span_id)
    if flt.service is not None:
        where.add("l.service = $service", service=flt.service)
    if flt.since is not None:
        where.add("l.time >= $since", since=flt.since)
    if flt.until is not None:
        where.add("l.time < $until", until=flt.until)
    if flt.q:
        text_match(where, ("l.body", "CAST(l.attributes AS VARCHAR)"), flt.q)
    if not flt.include_events:
        where.add("l.event_name IS NULL")
    return where


#: A job whose log ids span at most this many (a few row groups) has its page's ids found by
#: an aggregate over that range; a wider one (a long job) by ``ORDER BY id LIMIT``, which
#: stops reading row groups once it has a page.
_AGGREGATE_SPAN = 4 * 122_880


def _page_ids(
    cur: Cursor, where: Where, *, limit: int, newest: bool, span: int | None
) -> list[int]:
    """The ids of the first (or newest) ``limit`` matching records, in no particular order.

    ``ORDER BY id LIMIT n`` makes DuckDB (1.5) materialise late when filter columns are
    read: it joins the page's row ids back through a scan of every row id in ``logs``, 30-50
    ms at 50M records whatever the page. Over a job's narrow id range ``min(id, n)`` reads
    only that range (3 ms at 50M records).
    """
    params = {**where.params, "limit": limit}
    if span is not None and span <= _AGGREGATE_SPAN:
        pick = "max" if newest else "min"
        row = cur.execute(
            f"SELECT {pick}(l.id, $limit) FROM logs l {where.sql()}", params
        ).fetchone()  # noqa: S608
        return list(row[0]) if row and row[0] else []
    order = "DESC" if newest else "ASC"
    rows = cur.execute(
        f"SELECT l.id FROM logs l {where.sql()} ORDER BY l.id {order} LIMIT $limit",  # noqa: S608
        params,
    ).fetchall()
    return [r[0] for r in rows]


def _fetch_logs(
    cur: Cursor, where: Where, *, limit: int, newest: bool, span: int | None = None
) -> list[LogRow]:
    """The first (or newest) ``limit`` matching records, in id order.

    Two statements, both in the caller's snapshot: the page's ids (:func:`_page_ids`), then
    its rows by the range from the first to the last, which lets DuckDB skip every other
    row group. Every matching id in that range is on the page, so the rows are exactly the
    page's. ``span`` is the width of the id range ``where`` is bounded to, if any.
    """
    ids = _page_ids(cur, where, limit=limit, newest=newest, span=span)
    if not ids:
        return []
    page = where.copy()
    page.add("l.id BETWEEN $lo_id AND $hi_id", lo_id=min(ids), hi_id=max(ids))
    rows = fetch_dicts(
        cur,
        f"SELECT {_LOG_COLUMNS} FROM logs l {page.sql()} ORDER BY l.id",  # noqa: S608
        page.params,
    )
    for row in rows:
        row["data"] = log_data(row.pop("attributes"))
    return cast(list[LogRow], rows)


def _next_after(logs: list[LogRow], after_id: int | None) -> int | None:
    return logs[-1]["id"] if logs else after_id
