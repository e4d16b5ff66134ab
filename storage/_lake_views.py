"""The read surface of a lake: views with the embedded tables' names, folded at query time.

Every process creates these views in its own in-memory catalog (they are not stored in the
lake, so collectors never race on them), and readers' cursors resolve ``jobs``, ``steps``,
``logs``, ... to them. So :mod:`jobtrail.storage.queries`, the live streams and ``POST
/api/sql`` run unchanged on a lake.

``jobs`` and ``steps`` fold the facts every collector appended (see
:mod:`jobtrail.storage._lake_schema`). The fold is the order-independent reading of the
writer's merge rules (:mod:`jobtrail.storage.derive`): every fact is ranked by
``(attempt, tier, ranked_at, row id)``; each field takes the highest-ranked non-NULL value,
so a job's span overrides its lifecycle records, a lifecycle record after the span only
fills gaps, and a later attempt supersedes an earlier one; ``status``, ``ended_at`` and the
error fields count only when they come from the current attempt; ``started_at`` is the
earliest, ``last_seen`` the latest; attribute maps are merged in rank order;
``logs_dropped`` sums the job's ``log_caps`` rows. Because it is a
function of the set of facts, it gives the same rows whichever collector stored which fact,
in whatever order. The folds of jobs and steps as of the last fold pass are stored
(``jobs_folded``, ``steps_folded``; :mod:`jobtrail.storage._lake_fold`), so the views fold
only the jobs and steps with a fact newer than the pass's marks and read the rest as stored.

``logs.id`` is the record's DuckLake row id. DuckLake assigns row ids when a transaction
commits, in commit order, so ids are unique across collectors and a record committed after
a reader's snapshot always gets a larger id than every record in it: ``after_id`` paging
never skips a record. Row ids survive compaction and deletes. Row 0 is a marker written
when the lake is created, so ids start at 1 as in the embedded file.
"""

from __future__ import annotations

import duckdb

from jobtrail.storage.derive import JOB_COLUMNS, STEP_COLUMNS  # the tables' column order
from jobtrail.storage.schema import JOB_SEARCH_TEXT

_TS = "'%Y-%m-%dT%H:%M:%S.%fZ'"


def _rank(*high: str) -> str:
    """One HUGEINT that sorts facts like ``(*high, ranked_at, row id)``.

    Aggregates compare a scalar key much faster than a struct. ``ranked_at`` takes 52 bits
    (microseconds to the year 2112), the row id the low 40; ``high`` are small integers
    above them (attempt from bit 100, tier from bit 96).
    """
    shifts = {"coalesce(attempt, 1)": 100, "tier": 96}
    parts = [f"({c}::HUGEINT << {shifts[c]})" for c in high]
    parts.append("(epoch_us(coalesce(ranked_at, TIMESTAMP '1970-01-01'))::HUGEINT << 40)")
    parts.append("(rowid % 1099511627776)")
    return " + ".join(parts)


_LATEST = (
    "trace_id", "span_id", "parent_span_id", "parent_job_id", "type", "name", "operation",
    "owner", "service", "progress", "current_step", "total_steps", "result", "cancel_reason",
    "duration_ms",
)  # fmt: skip
#: Fields a new attempt starts without (they describe one attempt's end).
_CURRENT_ATTEMPT = ("status", "ended_at", "error", "error_type", "stack_trace")


#: Attribute maps are merged in rank order. Most groups have at most one non-empty map, so
#: they are gathered unordered (an ordered aggregate would sort every group) and only the
#: rare groups with several are sorted and merged.
_ATTRS_LIST = (
    "list({'k': k, 'v': attributes}) FILTER (WHERE attributes IS NOT NULL "
    "AND attributes::VARCHAR <> '{}') AS attrs_"
)
_ATTRS_MERGED = (
    "CASE WHEN attrs_ IS NULL OR len(attrs_) = 0 THEN '{}'::JSON "
    "WHEN len(attrs_) = 1 THEN attrs_[1].v "
    "ELSE list_reduce(list_transform(list_sort(attrs_), lambda e: e.v), "
    "lambda x, y: json_merge_patch(x, y)) END AS attributes"
)


def _latest(column: str) -> str:
    return f"arg_max({column}, k) FILTER (WHERE {column} IS NOT NULL) AS {column}"


def _current(column: str) -> str:
    """The latest value of ``column`` if it comes from the current (highest) attempt."""
    return (
        f"CASE WHEN max(k) FILTER (WHERE {column} IS NOT NULL) >> 100 = max(a) "
        f"THEN arg_max({column}, k) FILTER (WHERE {column} IS NOT NULL) END AS {column}_"
    )


def job_fold_sql(lake: str, where: str = "", *, ids: str = "") -> str:
    """The folded row (:data:`JOB_COLUMNS`) of every job with a fact matching ``where``.

    ``where`` (SQL on ``job_facts``, or empty for all) selects facts; every job they name is
    folded from *all* its facts, so the rows are the same whichever facts selected them.
    ``ids`` instead names a relation with the ids to fold (column ``id``).
    """
    latest = ",\n        ".join(_latest(c) for c in _LATEST)
    scoped = ",\n        ".join(_current(c) for c in _CURRENT_ATTEMPT)
    rank = _rank("coalesce(attempt, 1)", "tier")
    attempt_entry = (
        "{'attempt': a, 'status': CASE WHEN status = 'retrying' THEN 'failed' ELSE status END, "
        "'error': error, 'error_type': error_type, "
        f"'started_at': strftime(started_at, {_TS}), 'ended_at': strftime(ended_at, {_TS}), "
        "'duration_ms': duration_ms, 'span_id': span_id}"
    )
    chosen = f"WHERE id IN (SELECT id FROM {lake}.job_facts WHERE {where})" if where else ""
    if ids:
        chosen = f"WHERE id IN (SELECT id FROM {ids})"
    facts = f"(SELECT *, coalesce(attempt, 1) AS a, {rank} AS k FROM {lake}.job_facts {chosen})"
    return f"""
SELECT id, trace_id, span_id, parent_job_id, parent_span_id, type, name, operation, owner,
    service, coalesce(status_, 'pending') AS status,
    CASE WHEN span_attempt_ = top_ AND status = 'completed' AND span_progress_null_
         THEN 100.0 ELSE progress END AS progress,
    current_step, total_steps, attempt, started_at, ended_at_ AS ended_at,
    CASE WHEN span_attempt_ = top_ AND started_at IS NOT NULL AND ended_at IS NOT NULL
         -- seconds, then milliseconds: the embedded writer's float arithmetic, to the bit
         THEN date_diff('microsecond', started_at, ended_at) / 1000000.0 * 1000
         ELSE duration_ms END AS duration_ms,
    error_ AS error, error_type_ AS error_type, stack_trace_ AS stack_trace,
    result, cancel_reason, {_ATTRS_MERGED}, last_seen,
    coalesce(span_attempt_ = top_, false) AS span_received,
    to_json(coalesce(attempts_, []))::JSON AS attempts
FROM (
    SELECT id,
        max(a) AS top_,
        max(a) FILTER (WHERE tier = 1) AS span_attempt_,
        arg_max(progress IS NULL, k) FILTER (WHERE tier = 1) AS span_progress_null_,
        {latest},
        {scoped},
        max(attempt) AS attempt,
        min(started_at) AS started_at,
        max(seen_at) AS last_seen,
        {_ATTRS_LIST}
    FROM {facts} GROUP BY id
) g LEFT JOIN (  -- one entry per attempt: its latest span
    SELECT id, list(entry ORDER BY a) AS attempts_ FROM (
        SELECT id, a, arg_max({attempt_entry}, k) AS entry
        FROM {facts} WHERE tier = 1 GROUP BY id, a
    ) GROUP BY id
) att USING (id)"""


def step_fold_sql(lake: str, where: str = "", *, keys: str = "") -> str:
    """The folded row (:data:`STEP_COLUMNS`) of every step with a fact matching ``where``
    (or whose ``(trace_id, span_id)`` is in the relation ``keys``)."""
    head = ", ".join(_latest(c) for c in ("parent_span_id", "job_id", "seq", "name"))
    tail = ", ".join(_latest(c) for c in ("ended_at", "duration_ms", "error"))
    chosen = (
        f"WHERE (trace_id, span_id) IN (SELECT (trace_id, span_id) FROM {lake}.step_facts "
        f"WHERE {where})"
        if where
        else ""
    )
    if keys:
        chosen = f"WHERE (trace_id, span_id) IN (SELECT (trace_id, span_id) FROM {keys})"
    return f"""
SELECT trace_id, span_id, parent_span_id, job_id, seq, name, status, started_at, ended_at,
    duration_ms, error, {_ATTRS_MERGED}, span_received
FROM (
    SELECT trace_id, span_id, {head},
        coalesce(arg_max(status, k) FILTER (WHERE status IS NOT NULL), 'running') AS status,
        min(started_at) AS started_at, {tail},
        {_ATTRS_LIST},
        bool_or(tier = 1) AS span_received
    FROM (SELECT *, {_rank("tier")} AS k FROM {lake}.step_facts {chosen}) f
    GROUP BY trace_id, span_id
)"""


def _jobs_sql(lake: str, upto: int) -> str:
    """``jobs``: folded rows for jobs with no fact after ``upto``, the others folded now."""
    columns = ", ".join(JOB_COLUMNS)
    late = ""
    if upto < 0:
        rows = job_fold_sql(lake)
    else:
        # The ids with a fact after the marks, read once (a constant bound on rowid skips
        # every older file) and used by both parts.
        late = (
            f"WITH late_ AS MATERIALIZED (SELECT DISTINCT id FROM {lake}.job_facts "
            f"WHERE rowid > {int(upto)} AND id IS NOT NULL)"
        )
        rows = f"""
SELECT {columns} FROM {lake}.jobs_folded f
WHERE f.id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM late_ n WHERE n.id = f.id)
UNION ALL {job_fold_sql(lake, ids="late_")}"""
    return f"""
CREATE OR REPLACE VIEW jobs AS {late}
SELECT {columns}, coalesce(caps.dropped_, 0)::BIGINT AS logs_dropped,
    {JOB_SEARCH_TEXT} AS search_text, queue.queued_at
FROM ({rows}) j LEFT JOIN (  -- what the per-job log cap dropped
    SELECT job_id AS id, sum(dropped) AS dropped_ FROM {lake}.log_caps GROUP BY job_id
) caps USING (id) LEFT JOIN (  -- when the job was put in a queue
    SELECT id, min(queued_at) AS queued_at FROM {lake}.job_queue
    WHERE id IS NOT NULL GROUP BY id
) queue USING (id)"""


def _steps_sql(lake: str, upto: int) -> str:
    """``steps``: folded rows for steps with no fact after ``upto``, the others folded now."""
    if upto < 0:
        return f"CREATE OR REPLACE VIEW steps AS {step_fold_sql(lake)}"
    return f"""
CREATE OR REPLACE VIEW steps AS
WITH late_ AS MATERIALIZED (
    SELECT DISTINCT trace_id, span_id FROM {lake}.step_facts WHERE rowid > {int(upto)})
SELECT {", ".join(STEP_COLUMNS)} FROM {lake}.steps_folded f
WHERE f.span_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM late_ n WHERE n.trace_id = f.trace_id AND n.span_id = f.span_id)
UNION ALL {step_fold_sql(lake, keys="late_")}"""


_LOG_COLUMNS = (
    "time", "observed_time", "trace_id", "span_id", "severity_number", "severity_text",
    "level", "body", "attributes", "event_name",
)  # fmt: skip
_LOG_TAIL = (
    "category", "iostream", "exception_type", "exception_message", "stack_trace", "service",
    "resource", "scope_name", "received_at",
)  # fmt: skip


def _logs_sql(lake: str) -> str:
    head = ", ".join(f"l.{c}" for c in _LOG_COLUMNS)
    tail = ", ".join(f"l.{c}" for c in _LOG_TAIL)
    unlinked = "l.job_id IS NULL AND l.trace_id IS NOT NULL AND l.span_id IS NOT NULL"
    links = f"""(
    SELECT trace_id, span_id, any_value(job_id) AS job_id, any_value(step) AS step,
           any_value(step_span_id) AS step_span_id
    FROM {lake}.log_links GROUP BY trace_id, span_id
) k"""
    # Three parts, so that a filter on job_id reaches a scan in each: records that named
    # their job (or can name none); records linked later (an inner join whose small side,
    # log_links, takes the filter); and records no link names, whose job_id is a constant
    # NULL (a filter on it removes that part when the query is planned).
    return f"""
CREATE OR REPLACE VIEW logs AS
SELECT l.rowid AS id, {head}, l.job_id, l.step, l.step_span_id, {tail}
FROM {lake}.log_records l
WHERE l.rowid > 0 AND (l.job_id IS NOT NULL OR l.trace_id IS NULL OR l.span_id IS NULL)
UNION ALL
SELECT l.rowid AS id, {head}, k.job_id, k.step, k.step_span_id, {tail}
FROM {lake}.log_records l JOIN {links} ON k.trace_id = l.trace_id AND k.span_id = l.span_id
WHERE {unlinked}
UNION ALL
SELECT l.rowid AS id, {head}, NULL::VARCHAR AS job_id, NULL::VARCHAR AS step,
    NULL::VARCHAR AS step_span_id, {tail}
FROM {lake}.log_records l
WHERE {unlinked} AND NOT EXISTS (
    SELECT 1 FROM {lake}.log_links k WHERE k.trace_id = l.trace_id AND k.span_id = l.span_id)"""


def fold_marks(con: duckdb.DuckDBPyConnection, lake: str) -> tuple[int, int]:
    """The fact row ids the folded tables cover: ``(job_facts, step_facts)``; -1 for none."""
    row = con.execute(
        f"SELECT max(job_facts_upto), max(step_facts_upto) FROM {lake}.fold_marks"  # noqa: S608
    ).fetchone()
    if not row or row[0] is None:
        return (-1, -1)
    return (int(row[0]), int(row[1]))


def create_fold_views(con: duckdb.DuckDBPyConnection, lake: str, marks: tuple[int, int]) -> None:
    """(Re)create ``jobs`` and ``steps`` for the folded tables as of ``marks``.

    The marks are written into the views as constants, so the filter ``rowid > mark``
    reaches the scan and skips every file and row group below it. Older marks than the
    lake's are always correct (more facts are folded when read); newer ones never occur,
    because a process learns marks only from a committed pass.
    """
    con.execute(_jobs_sql(lake, marks[0]))
    con.execute(_steps_sql(lake, marks[1]))


def create_read_views(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    """Create the read surface in the connection's in-memory catalog (idempotent)."""
    from jobtrail.storage.schema import VIEWS_DDL

    for name in ("spans", "metrics", "jobtrail_schema", "ingested_requests"):
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {lake}.{name}")  # noqa: S608
    create_fold_views(con, lake, fold_marks(con, lake))
    con.execute(_logs_sql(lake))
    # Embedded files narrow one job's logs by an id range; on a lake every job's range is
    # open (the filter on job_id does the work), which keeps the same queries valid.
    con.execute(
        "CREATE OR REPLACE VIEW job_log_ranges AS SELECT DISTINCT id AS job_id, "  # noqa: S608
        f"0::BIGINT AS lo, 9223372036854775807::BIGINT AS hi FROM {lake}.job_facts"
    )
    # Hourly counts are kept by the embedded writer; here they are counted when asked.
    con.execute(
        "CREATE OR REPLACE VIEW log_counts AS "
        "SELECT coalesce(date_trunc('hour', time), TIMESTAMP '0001-01-01') AS hour, "
        "coalesce(level, 'unknown') AS level, coalesce(category, '') AS category, "
        "count(*) AS n FROM logs WHERE event_name IS NULL GROUP BY ALL"
    )
    for ddl in VIEWS_DDL:
        con.execute(ddl)
