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
in whatever order.

``logs.id`` is the record's DuckLake row id. DuckLake assigns row ids when a transaction
commits, in commit order, so ids are unique across collectors and a record committed after
a reader's snapshot always gets a larger id than every record in it: ``after_id`` paging
never skips a record. Row ids survive compaction and deletes. Row 0 is a marker written
when the lake is created, so ids start at 1 as in the embedded file.
"""

from __future__ import annotations

import duckdb

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


def _jobs_sql(lake: str) -> str:
    latest = ",\n        ".join(_latest(c) for c in _LATEST)
    scoped = ",\n        ".join(_current(c) for c in _CURRENT_ATTEMPT)
    rank = _rank("coalesce(attempt, 1)", "tier")
    attempt_entry = (
        "{'attempt': a, 'status': CASE WHEN status = 'retrying' THEN 'failed' ELSE status END, "
        "'error': error, 'error_type': error_type, "
        f"'started_at': strftime(started_at, {_TS}), 'ended_at': strftime(ended_at, {_TS}), "
        "'duration_ms': duration_ms, 'span_id': span_id}"
    )
    facts = f"(SELECT *, coalesce(attempt, 1) AS a, {rank} AS k FROM {lake}.job_facts)"
    return f"""
CREATE OR REPLACE VIEW jobs AS
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
    to_json(coalesce(attempts_, []))::JSON AS attempts,
    coalesce(caps.dropped_, 0)::BIGINT AS logs_dropped
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
) att USING (id) LEFT JOIN (  -- what the per-job log cap dropped
    SELECT job_id AS id, sum(dropped) AS dropped_ FROM {lake}.log_caps GROUP BY job_id
) caps USING (id)"""


def _steps_sql(lake: str) -> str:
    head = ", ".join(_latest(c) for c in ("parent_span_id", "job_id", "seq", "name"))
    tail = ", ".join(_latest(c) for c in ("ended_at", "duration_ms", "error"))
    return f"""
CREATE OR REPLACE VIEW steps AS
SELECT trace_id, span_id, parent_span_id, job_id, seq, name, status, started_at, ended_at,
    duration_ms, error, {_ATTRS_MERGED}, span_received
FROM (
    SELECT trace_id, span_id, {head},
        coalesce(arg_max(status, k) FILTER (WHERE status IS NOT NULL), 'running') AS status,
        min(started_at) AS started_at, {tail},
        {_ATTRS_LIST},
        bool_or(tier = 1) AS span_received
    FROM (SELECT *, {_rank("tier")} AS k FROM {lake}.step_facts) f
    GROUP BY trace_id, span_id
)"""


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
    # Records that named their job (or can name none) need no join; only the others are
    # looked up in log_links, so a filter on job_id still reaches the scan of the first part.
    return f"""
CREATE OR REPLACE VIEW logs AS
SELECT l.rowid AS id, {head}, l.job_id, l.step, l.step_span_id, {tail}
FROM {lake}.log_records l
WHERE l.rowid > 0 AND (l.job_id IS NOT NULL OR l.trace_id IS NULL OR l.span_id IS NULL)
UNION ALL
SELECT l.rowid AS id, {head}, k.job_id, k.step, k.step_span_id, {tail}
FROM {lake}.log_records l
LEFT JOIN (
    SELECT trace_id, span_id, any_value(job_id) AS job_id, any_value(step) AS step,
           any_value(step_span_id) AS step_span_id
    FROM {lake}.log_links GROUP BY trace_id, span_id
) k ON k.trace_id = l.trace_id AND k.span_id = l.span_id
WHERE l.job_id IS NULL AND l.trace_id IS NOT NULL AND l.span_id IS NOT NULL"""


def create_read_views(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    """Create the read surface in the connection's in-memory catalog (idempotent)."""
    from jobtrail.storage.schema import VIEWS_DDL

    for name in ("spans", "metrics", "jobtrail_schema", "ingested_requests"):
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {lake}.{name}")  # noqa: S608
    con.execute(_jobs_sql(lake))
    con.execute(_steps_sql(lake))
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
