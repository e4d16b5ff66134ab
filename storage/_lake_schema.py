"""Tables of a DuckLake: raw records and per-collector facts, all append-only.

On a lake several collectors write at once, and DuckLake has no primary keys and treats two
concurrent deletes from one table as a conflict. So nothing here is updated in place:

* ``spans``, ``log_records``, ``metrics`` keep records as received (``log_records`` has no
  ``id`` column: a record's id is its DuckLake row id, see :mod:`jobtrail.storage._lake_views`);
* ``job_facts`` and ``step_facts`` hold what each span or lifecycle record said about a job or
  step, plus the facts maintenance adds (a late link, "lost"); ``jobs`` and ``steps`` are folded
  from them when read;
* ``log_links`` says which job and step a record belongs to when that was found after the
  record was stored (its spans reached another collector first, or later);
* ``log_caps`` (layout 2) counts the records the per-job log cap dropped;
* ``job_queue`` (layout 4) says when a job was put in a queue (``jobs.queued_at``);
* ``jobs_folded`` and ``steps_folded`` (layout 3) hold the folded rows of the jobs and
  steps whose facts are all at or below the row id marks of the last fold pass
  (``fold_marks``), so reads fold only newer facts (see :mod:`jobtrail.storage._lake_fold`).

The layout has its own version, kept in the lake's ``jobtrail_schema`` and migrated on open
by whichever collector gets there first (the others retry and find it done).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import duckdb

log = logging.getLogger(__name__)

SPANS = """
CREATE TABLE {lake}.spans (
    trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, name VARCHAR, kind TINYINT,
    start_time TIMESTAMP, end_time TIMESTAMP, duration_ms DOUBLE, status_code TINYINT,
    status_message VARCHAR, service VARCHAR, attributes JSON, events JSON, links JSON,
    resource JSON, scope_name VARCHAR, scope_version VARCHAR, received_at TIMESTAMP
)"""

LOG_RECORDS = """
CREATE TABLE {lake}.log_records (
    time TIMESTAMP, observed_time TIMESTAMP, trace_id VARCHAR, span_id VARCHAR,
    severity_number TINYINT, severity_text VARCHAR, level VARCHAR, body VARCHAR,
    attributes JSON, event_name VARCHAR, job_id VARCHAR, step VARCHAR, step_span_id VARCHAR,
    category VARCHAR, iostream VARCHAR, exception_type VARCHAR, exception_message VARCHAR,
    stack_trace VARCHAR, service VARCHAR, resource JSON, scope_name VARCHAR,
    received_at TIMESTAMP
)"""

METRICS = """
CREATE TABLE {lake}.metrics (
    time TIMESTAMP, start_time TIMESTAMP, name VARCHAR, description VARCHAR, unit VARCHAR,
    type VARCHAR, value DOUBLE, attributes JSON, data JSON, service VARCHAR, resource JSON,
    scope_name VARCHAR, received_at TIMESTAMP
)"""

#: ``tier`` orders facts of one attempt: 0 lifecycle (and links), 1 the span, 2 "lost" after
#: the span said ``retrying``. ``ranked_at`` orders facts of one tier (record time);
#: ``seen_at`` moves ``last_seen`` (NULL for facts that are no sign of life).
JOB_FACTS = """
CREATE TABLE {lake}.job_facts (
    id VARCHAR, tier TINYINT, ranked_at TIMESTAMP, seen_at TIMESTAMP,
    trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, parent_job_id VARCHAR,
    type VARCHAR, name VARCHAR, operation VARCHAR, owner VARCHAR, service VARCHAR,
    status VARCHAR, progress DOUBLE, current_step VARCHAR, total_steps INTEGER,
    attempt INTEGER, started_at TIMESTAMP, ended_at TIMESTAMP, duration_ms DOUBLE,
    error VARCHAR, error_type VARCHAR, stack_trace VARCHAR, result JSON,
    cancel_reason VARCHAR, attributes JSON, received_at TIMESTAMP
)"""

STEP_FACTS = """
CREATE TABLE {lake}.step_facts (
    trace_id VARCHAR, span_id VARCHAR, tier TINYINT, ranked_at TIMESTAMP, seen_at TIMESTAMP,
    job_id VARCHAR, parent_span_id VARCHAR, seq INTEGER, name VARCHAR, status VARCHAR,
    started_at TIMESTAMP, ended_at TIMESTAMP, duration_ms DOUBLE, error VARCHAR,
    attributes JSON, received_at TIMESTAMP
)"""

LOG_LINKS = """
CREATE TABLE {lake}.log_links (
    trace_id VARCHAR, span_id VARCHAR, job_id VARCHAR, step VARCHAR, step_span_id VARCHAR,
    linked_at TIMESTAMP
)"""

INGESTED_REQUESTS = """
CREATE TABLE {lake}.ingested_requests (digest BLOB, received_at TIMESTAMP)"""


def _v1(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    for ddl in (SPANS, LOG_RECORDS, METRICS, JOB_FACTS, STEP_FACTS, LOG_LINKS, INGESTED_REQUESTS):
        con.execute(ddl.format(lake=lake))
    # Row 0 of log_records is a marker the views hide, so log ids start at 1 as in the
    # embedded file (clients use after_id=0 for "from the start").
    con.execute(
        f"INSERT INTO {lake}.log_records (event_name, received_at) "  # noqa: S608
        f"VALUES ('{LAKE_CREATED}', now()::TIMESTAMP)"
    )


#: What the per-job log cap dropped: one row per job and pass, summed into
#: ``jobs.logs_dropped``. A table of its own rather than a column added to ``job_facts``:
#: with DuckLake 1.5.5, reads of a table that gained a column fail once
#: ``ducklake_flush_inlined_data`` has run ("relation ducklake_inlined_data_..." missing).
LOG_CAPS = """
CREATE TABLE {lake}.log_caps (job_id VARCHAR, dropped BIGINT, capped_at TIMESTAMP)"""


def _v2(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    con.execute(LOG_CAPS.format(lake=lake))


#: The folded ``jobs`` row of every job whose facts were folded by a pass (the view's
#: columns but ``logs_dropped``, which the view sums from ``log_caps`` when read).
JOBS_FOLDED = """
CREATE TABLE {lake}.jobs_folded (
    id VARCHAR, trace_id VARCHAR, span_id VARCHAR, parent_job_id VARCHAR,
    parent_span_id VARCHAR, type VARCHAR, name VARCHAR, operation VARCHAR, owner VARCHAR,
    service VARCHAR, status VARCHAR, progress DOUBLE, current_step VARCHAR,
    total_steps INTEGER, attempt INTEGER, started_at TIMESTAMP, ended_at TIMESTAMP,
    duration_ms DOUBLE, error VARCHAR, error_type VARCHAR, stack_trace VARCHAR, result JSON,
    cancel_reason VARCHAR, attributes JSON, last_seen TIMESTAMP, span_received BOOLEAN,
    attempts JSON
)"""

STEPS_FOLDED = """
CREATE TABLE {lake}.steps_folded (
    trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, job_id VARCHAR, seq INTEGER,
    name VARCHAR, status VARCHAR, started_at TIMESTAMP, ended_at TIMESTAMP,
    duration_ms DOUBLE, error VARCHAR, attributes JSON, span_received BOOLEAN
)"""

#: One row: the largest fact row ids the folded tables cover (-1: nothing folded yet).
#: Each pass deletes it and appends the next, so two passes at once conflict at commit.
FOLD_MARKS = """
CREATE TABLE {lake}.fold_marks (
    job_facts_upto BIGINT, step_facts_upto BIGINT, folded_at TIMESTAMP
)"""


#: Tables that may stay empty for long and are read by every query of a view (or every
#: commit) get one marker row with NULL keys, which no join or filter ever matches: with
#: DuckLake 1.5.5, planning a query over a table that was never written costs 10-40 ms
#: (a table with rows: about 2 ms), on every statement.
_MARKED = {
    "log_links": "linked_at",
    "log_caps": "capped_at",
    "ingested_requests": "received_at",
    "jobs_folded": "last_seen",
    "steps_folded": "started_at",
}


def _v3(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    for ddl in (JOBS_FOLDED, STEPS_FOLDED, FOLD_MARKS):
        con.execute(ddl.format(lake=lake))
    con.execute(f"INSERT INTO {lake}.fold_marks VALUES (-1, -1, now()::TIMESTAMP)")  # noqa: S608
    for table, column in _MARKED.items():
        con.execute(f"INSERT INTO {lake}.{table} ({column}) VALUES (now()::TIMESTAMP)")  # noqa: S608


#: When a job was put in a queue (``job.queued``), one row per record; the ``jobs`` view
#: takes the earliest. A table of its own, as ``log_caps``, rather than a column added to
#: ``job_facts`` and ``jobs_folded``.
JOB_QUEUE = """
CREATE TABLE {lake}.job_queue (id VARCHAR, queued_at TIMESTAMP)"""


def _v4(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    con.execute(JOB_QUEUE.format(lake=lake))
    con.execute(f"INSERT INTO {lake}.job_queue (queued_at) VALUES (now()::TIMESTAMP)")  # noqa: S608


#: Ordered migrations of the lake layout; index + 1 is the version each one produces.
LAKE_MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection, str], None]] = [_v1, _v2, _v3, _v4]
LAKE_SCHEMA_VERSION = len(LAKE_MIGRATIONS)

#: Tables written by collectors (maintenance and retention cover these).
LAKE_TABLES = (
    "spans", "log_records", "metrics", "job_facts", "step_facts", "log_links",
    "ingested_requests", "log_caps", "jobs_folded", "steps_folded", "fold_marks", "job_queue",
)  # fmt: skip

_ATTEMPTS = 20
#: ``event_name`` of the marker row that holds row id 0 of ``log_records``.
LAKE_CREATED = "jobtrail.lake_created"


class LakeSchemaError(RuntimeError):
    """The lake was written by a newer jobtrail, or its layout cannot be created."""


def lake_version(con: duckdb.DuckDBPyConnection, lake: str) -> int:
    """The layout version stored in the lake (0 for a new lake)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? "
        "AND table_name = 'jobtrail_schema'",
        [lake],
    ).fetchone()
    if not found or not found[0]:
        return 0
    row = con.execute(f"SELECT max(version) FROM {lake}.jobtrail_schema").fetchone()  # noqa: S608
    return int(row[0]) if row and row[0] is not None else 0


def migrate_lake(con: duckdb.DuckDBPyConnection, lake: str) -> int:
    """Bring the lake's layout to :data:`LAKE_SCHEMA_VERSION`.

    Each step is one transaction; when another collector migrates at the same moment, one of
    the two commits conflicts, and the loser starts over and finds the work done.
    """
    for attempt in range(_ATTEMPTS):
        try:
            return _migrate_once(con, lake)
        except duckdb.TransactionException as exc:
            _rollback(con)
            log.info("lake migration raced another collector, retrying: %s", exc)
        except duckdb.CatalogException as exc:
            _rollback(con)
            if "already exists" not in str(exc):
                raise
        time.sleep(0.05 * (attempt + 1))
    raise LakeSchemaError("the lake's layout could not be created: too many concurrent changes")


def _migrate_once(con: duckdb.DuckDBPyConnection, lake: str) -> int:
    version = lake_version(con, lake)
    if version > LAKE_SCHEMA_VERSION:
        raise LakeSchemaError(
            f"lake layout version {version} is newer than this jobtrail ({LAKE_SCHEMA_VERSION})"
        )
    for number in range(version + 1, LAKE_SCHEMA_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        if number == 1:
            con.execute(
                f"CREATE TABLE {lake}.jobtrail_schema (version INTEGER, applied_at TIMESTAMP)"
            )
        LAKE_MIGRATIONS[number - 1](con, lake)
        con.execute(
            f"INSERT INTO {lake}.jobtrail_schema VALUES (?, now()::TIMESTAMP)",  # noqa: S608
            [number],
        )
        con.execute("COMMIT")
        log.info("applied lake layout migration %d", number)
    return LAKE_SCHEMA_VERSION


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass
