"""Retention and file upkeep of a lake: age-based deletes, compaction, snapshot expiry.

Collectors append small Parquet files (one per table per commit) and DuckLake keeps every
snapshot, so a lake needs upkeep that an embedded file does not:

1. **Age** (every ``interval_s``) — traces whose jobs have all finished (``completed``,
   ``failed``, ``cancelled``, ``lost``) more than ``max_age_s`` ago go
   with their facts, spans, logs and links; records of no job older than
   ``system_logs_max_age_s`` (logs) or ``max_age_s`` (spans of traces without jobs, metric
   points) go too.
2. **Compaction** (every ``compact_interval_s``) — rows DuckLake inlined into the catalog
   are written out (``ducklake_flush_inlined_data``), files with many deleted rows are
   rewritten (``ducklake_rewrite_data_files``), then adjacent small files are merged
   (``ducklake_merge_adjacent_files``).
3. **Snapshot expiry** — snapshots older than ``snapshot_keep_s`` are expired and the files
   only they referenced are deleted (``ducklake_expire_snapshots``,
   ``ducklake_cleanup_old_files``); a reader's snapshot lasts one query, so a short window
   is safe.

Any collector may run it; two running it at once conflict on their deletes and one of
them simply skips that round (each step is its own transaction). The per-job log cap and
the size cap of the embedded file are not applied on a lake.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from jobtrail.storage.lake import LakeDatabase

log = logging.getLogger(__name__)

_FINISHED = "('completed', 'failed', 'cancelled', 'lost')"
#: A file with this share of its rows deleted is rewritten (then merged with its neighbours).
_RW = 0.5


@dataclass(frozen=True, slots=True)
class LakeRetention:
    """How long a lake keeps data and how often it is tidied (see the module docstring)."""

    max_age_s: float = 30 * 86400.0
    system_logs_max_age_s: float | None = None
    interval_s: float = 3600.0
    compact_interval_s: float = 300.0
    snapshot_keep_s: float = 3600.0


@dataclass(slots=True)
class MaintenanceReport:
    """What one pass did (rows deleted per table, steps that ran or were skipped)."""

    deleted: dict[str, int] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class _Clock:
    """When the age step last ran (module state: one pass sequence per process)."""

    last_age_pass = 0.0


def maintain(
    db: LakeDatabase, retention: LakeRetention, *, ages: bool | None = None
) -> MaintenanceReport:
    """One upkeep pass: age deletes when due (or when ``ages``), then compaction and expiry."""
    started = time.monotonic()
    report = MaintenanceReport()
    due = started - _Clock.last_age_pass >= retention.interval_s
    cur = db.cursor()
    lake = db.lake.name
    try:
        if ages if ages is not None else due:
            _Clock.last_age_pass = started
            _step(report, "age", lambda: report.deleted.update(expire(cur, lake, retention)))
        keep = f"older_than => now() - INTERVAL {int(retention.snapshot_keep_s)} SECOND"
        for name, sql in (
            ("flush", f"CALL ducklake_flush_inlined_data('{lake}')"),
            ("rewrite", f"CALL ducklake_rewrite_data_files('{lake}', delete_threshold => {_RW})"),
            ("merge", f"CALL ducklake_merge_adjacent_files('{lake}')"),
            ("expire", f"SELECT count(*) FROM ducklake_expire_snapshots('{lake}', {keep})"),
            ("cleanup", f"SELECT count(*) FROM ducklake_cleanup_old_files('{lake}', {keep})"),
        ):
            # Fetch every result: a result left unread may stop the function half way.
            _step(report, name, lambda sql=sql: cur.execute(sql).fetchall())
    finally:
        cur.close()
    report.seconds = time.monotonic() - started
    log.info(
        "lake maintenance: %s in %.1f s; deleted %s; skipped %s",
        ", ".join(report.done) or "nothing", report.seconds, report.deleted or "nothing",
        report.skipped or "nothing",
    )  # fmt: skip
    return report


def _step(report: MaintenanceReport, name: str, action: object) -> None:
    try:
        action()  # type: ignore[operator]
    except duckdb.Error as exc:
        report.skipped[name] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return
    report.done.append(name)


def expire(cur: duckdb.DuckDBPyConnection, lake: str, retention: LakeRetention) -> dict[str, int]:
    """Delete what is older than the retention ages, in one transaction; rows per table."""
    max_age = f"now()::TIMESTAMP - INTERVAL {int(retention.max_age_s)} SECOND"
    system_age_s = retention.system_logs_max_age_s or retention.max_age_s
    system_age = f"now()::TIMESTAMP - INTERVAL {int(system_age_s)} SECOND"
    deleted: dict[str, int] = {}
    cur.execute("BEGIN TRANSACTION")
    try:
        cur.execute(
            f"""CREATE TEMP TABLE _lake_old AS
                SELECT trace_id FROM jobs WHERE trace_id IS NOT NULL GROUP BY trace_id
                HAVING bool_and(status IN {_FINISHED})
                   AND max(coalesce(ended_at, last_seen)) < {max_age}"""  # noqa: S608
        )
        old = "trace_id IN (SELECT trace_id FROM _lake_old)"
        statements = {
            "job_facts": f"""id IN (SELECT id FROM {lake}.job_facts WHERE {old})""",
            "step_facts": old,
            "log_links": old,
            "log_records": f"""rowid > 0 AND ({old} OR job_id IN
                (SELECT id FROM {lake}.job_facts WHERE {old})
                OR (job_id IS NULL AND coalesce(time, received_at) < {system_age}
                    AND NOT EXISTS (SELECT 1 FROM {lake}.log_links k
                        WHERE k.trace_id = log_records.trace_id
                          AND k.span_id = log_records.span_id)))""",
            "spans": f"""{old} OR (start_time < {max_age} AND trace_id NOT IN
                (SELECT trace_id FROM {lake}.job_facts WHERE trace_id IS NOT NULL))""",
            "metrics": f"coalesce(time, received_at) < {max_age}",
        }
        # Facts name their trace only on some rows: delete a job's facts by id, logs by id
        # or trace, before the rows that say which trace a job is in are gone.
        for table in ("log_records", "log_links", "step_facts", "spans", "metrics", "job_facts"):
            row = cur.execute(
                f"SELECT count(*) FROM {lake}.{table} WHERE {statements[table]}"  # noqa: S608
            ).fetchone()
            if row and row[0]:
                cur.execute(f"DELETE FROM {lake}.{table} WHERE {statements[table]}")  # noqa: S608
                deleted[table] = int(row[0])
        cur.execute("DROP TABLE _lake_old")
        cur.execute("COMMIT")
    except BaseException:
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    return deleted
