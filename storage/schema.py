"""DuckDB schema of jobtrail, versioned and migrated on open.

Raw tables (``spans``, ``logs``, ``metrics``) keep every record as received; derived tables
(``jobs``, ``steps``) are kept current by the writer so the API never has to reassemble a
job from raw spans. Timestamps are ``TIMESTAMP`` in UTC (microseconds); ids are lower-case
hex strings so users can paste them into SQL. Attribute maps are ``JSON``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import duckdb

from jobtrail.storage.log_counts import LOG_COUNTS_DDL, rebuild_log_counts

log = logging.getLogger(__name__)

SPANS_DDL = """
CREATE TABLE spans (
    trace_id        VARCHAR NOT NULL,
    span_id         VARCHAR NOT NULL,
    parent_span_id  VARCHAR,
    name            VARCHAR,
    kind            TINYINT,
    start_time      TIMESTAMP,
    end_time        TIMESTAMP,
    duration_ms     DOUBLE,
    status_code     TINYINT,
    status_message  VARCHAR,
    service         VARCHAR,
    attributes      JSON,
    events          JSON,
    links           JSON,
    resource        JSON,
    scope_name      VARCHAR,
    scope_version   VARCHAR,
    received_at     TIMESTAMP
)"""

LOGS_DDL = """
CREATE TABLE logs (
    id                BIGINT NOT NULL,
    time              TIMESTAMP,
    observed_time     TIMESTAMP,
    trace_id          VARCHAR,
    span_id           VARCHAR,
    severity_number   TINYINT,
    severity_text     VARCHAR,
    level             VARCHAR,
    body              VARCHAR,
    attributes        JSON,
    event_name        VARCHAR,
    job_id            VARCHAR,
    step              VARCHAR,
    step_span_id      VARCHAR,
    category          VARCHAR,
    iostream          VARCHAR,
    exception_type    VARCHAR,
    exception_message VARCHAR,
    stack_trace       VARCHAR,
    service           VARCHAR,
    resource          JSON,
    scope_name        VARCHAR,
    received_at       TIMESTAMP
)"""

METRICS_DDL = """
CREATE TABLE metrics (
    time         TIMESTAMP,
    start_time   TIMESTAMP,
    name         VARCHAR,
    description  VARCHAR,
    unit         VARCHAR,
    type         VARCHAR,
    value        DOUBLE,
    attributes   JSON,
    data         JSON,
    service      VARCHAR,
    resource     JSON,
    scope_name   VARCHAR,
    received_at  TIMESTAMP
)"""

JOBS_DDL = """
CREATE TABLE jobs (
    id              VARCHAR PRIMARY KEY,
    trace_id        VARCHAR,
    span_id         VARCHAR,
    parent_job_id   VARCHAR,
    parent_span_id  VARCHAR,
    type            VARCHAR,
    name            VARCHAR,
    operation       VARCHAR,
    owner           VARCHAR,
    service         VARCHAR,
    status          VARCHAR NOT NULL,
    progress        DOUBLE,
    current_step    VARCHAR,
    total_steps     INTEGER,
    attempt         INTEGER,
    started_at      TIMESTAMP,
    ended_at        TIMESTAMP,
    duration_ms     DOUBLE,
    error           VARCHAR,
    error_type      VARCHAR,
    stack_trace     VARCHAR,
    result          JSON,
    cancel_reason   VARCHAR,
    attributes      JSON,
    last_seen       TIMESTAMP,
    span_received   BOOLEAN NOT NULL DEFAULT false
)"""

STEPS_DDL = """
CREATE TABLE steps (
    trace_id        VARCHAR NOT NULL,
    span_id         VARCHAR NOT NULL,
    parent_span_id  VARCHAR,
    job_id          VARCHAR,
    seq             INTEGER,
    name            VARCHAR,
    status          VARCHAR NOT NULL,
    started_at      TIMESTAMP,
    ended_at        TIMESTAMP,
    duration_ms     DOUBLE,
    error           VARCHAR,
    attributes      JSON,
    span_received   BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (trace_id, span_id)
)"""

VIEWS_DDL = [
    """CREATE OR REPLACE VIEW active_jobs AS
       SELECT * FROM jobs WHERE status IN ('pending', 'running')""",
    """CREATE OR REPLACE VIEW job_progress AS
       SELECT j.id, j.type, j.name, j.status, j.progress, j.current_step, j.total_steps,
              count(s.span_id) FILTER (WHERE s.status IN ('completed', 'skipped'))
                  AS steps_done,
              count(s.span_id) AS steps_seen, j.started_at, j.last_seen
       FROM jobs j LEFT JOIN steps s ON s.job_id = j.id
       GROUP BY ALL""",
    """CREATE OR REPLACE VIEW error_rate_by_type AS
       SELECT type,
              count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              round(100.0 * count(*) FILTER (WHERE status = 'failed')
                    / nullif(count(*) FILTER (WHERE status IN ('completed', 'failed')), 0), 2)
                  AS error_rate_pct
       FROM jobs GROUP BY type""",
]


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in (SPANS_DDL, LOGS_DDL, METRICS_DDL, JOBS_DDL, STEPS_DDL):
        con.execute(ddl)
    for ddl in VIEWS_DDL:
        con.execute(ddl)


def _v2(con: duckdb.DuckDBPyConnection) -> None:
    """Retried jobs: one entry per attempt (number, status, error, times)."""
    con.execute("ALTER TABLE jobs ADD COLUMN attempts JSON")


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    """Digests of stored Export requests, so a client's retry is not stored twice.

    No index: the writer checks digests in memory and reads this table only at start.
    """
    con.execute(
        "CREATE TABLE ingested_requests (digest BLOB NOT NULL, received_at TIMESTAMP NOT NULL)"
    )


def _v4(con: duckdb.DuckDBPyConnection) -> None:
    """Find one job's logs and steps without scanning the whole table.

    ``job_log_ranges`` holds the smallest and largest log id of each job (kept by the
    writer); since ids grow with arrival, DuckDB's per-row-group min/max of ``logs.id``
    skips everything outside that range. Steps get an index on ``job_id``.
    """
    con.execute(
        "CREATE TABLE job_log_ranges (job_id VARCHAR PRIMARY KEY, lo BIGINT NOT NULL, "
        "hi BIGINT NOT NULL)"
    )
    rebuild_log_ranges(con)
    con.execute("CREATE INDEX steps_job_id ON steps (job_id)")


def rebuild_log_ranges(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute ``job_log_ranges`` from ``logs`` (after loading logs by other means)."""
    con.execute("DELETE FROM job_log_ranges")
    con.execute(
        "INSERT INTO job_log_ranges SELECT job_id, min(id), max(id) FROM logs "
        "WHERE job_id IS NOT NULL GROUP BY job_id"
    )


def _v5(con: duckdb.DuckDBPyConnection) -> None:
    """Hourly log counts by level and category, kept by the writer, for stats."""
    con.execute(LOG_COUNTS_DDL)
    rebuild_log_counts(con)


def _v6(con: duckdb.DuckDBPyConnection) -> None:
    """Log records retention's per-job cap removed from the middle of each job's logs."""
    con.execute("ALTER TABLE jobs ADD COLUMN logs_dropped BIGINT DEFAULT 0")


def rebuild_log_summaries(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute what the writer keeps about ``logs`` as records arrive (per-job id ranges,
    hourly counts), after logs were loaded or deleted other than through the writer."""
    rebuild_log_ranges(con)
    rebuild_log_counts(con)


def _v7(con: duckdb.DuckDBPyConnection) -> None:
    """Find a job's child jobs without scanning ``jobs`` (7 ms per lookup at 1M jobs).

    Most jobs have no parent, so the index stays small and adds little to a checkpoint.
    """
    con.execute("CREATE INDEX jobs_parent_job_id ON jobs (parent_job_id)")


#: ``jobs.search_text``: what the jobs list's ``q`` searches, lower-cased once when the row is
#: written. Searching it costs one pass over one column; lower-casing four columns per search
#: cost 160 ms at 1M jobs (8 ms for the stored column with the newest-first page).
#: ``chr(10)`` between the parts: a search text without a line break matches within one part.
JOB_SEARCH_TEXT = "lower(concat_ws(chr(10), name, id, type, error))"


def fill_search_text(con: duckdb.DuckDBPyConnection) -> None:
    """Compute ``jobs.search_text`` where it is missing (rows loaded other than by the writer)."""
    con.execute(f"UPDATE jobs SET search_text = {JOB_SEARCH_TEXT} WHERE search_text IS NULL")  # noqa: S608


def _v8(con: duckdb.DuckDBPyConnection) -> None:
    """The jobs list's text search reads one stored lower-cased column."""
    con.execute("ALTER TABLE jobs ADD COLUMN search_text VARCHAR")
    fill_search_text(con)


def _v9(con: duckdb.DuckDBPyConnection) -> None:
    """When a job was put in a queue (``job.queued``); NULL for jobs that were not."""
    con.execute("ALTER TABLE jobs ADD COLUMN queued_at TIMESTAMP")


#: Ordered migrations; index + 1 is the schema version each one produces.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [
    _v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9,
]  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)

#: Tables users may query and that the API documents.
TABLES = ("jobs", "steps", "logs", "spans", "metrics")
VIEWS = ("active_jobs", "job_progress", "error_rate_by_type")


class SchemaError(RuntimeError):
    """The database file was written by a newer jobtrail or is not a jobtrail database."""


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """Return the schema version stored in the database (0 for an empty database)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'jobtrail_schema'"
    ).fetchone()
    if not exists or not exists[0]:
        tables = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchone()
        if tables and tables[0]:
            raise SchemaError("database has tables but no jobtrail_schema: not a jobtrail database")
        return 0
    # fetchall, not fetchone: a result left half-read keeps its transaction open, and an open
    # transaction older than an UPDATE makes every later CHECKPOINT fail.
    row = con.execute("SELECT max(version) FROM jobtrail_schema").fetchall()[0]
    return int(row[0]) if row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one transaction per migration."""
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"database schema version {version} is newer than this jobtrail ({SCHEMA_VERSION})"
        )
    if version == 0:
        con.execute(
            "CREATE TABLE IF NOT EXISTS jobtrail_schema "
            "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        try:
            MIGRATIONS[number - 1](con)
            con.execute("INSERT INTO jobtrail_schema VALUES (?, now()::TIMESTAMP)", [number])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("applied schema migration %d", number)
    return SCHEMA_VERSION
