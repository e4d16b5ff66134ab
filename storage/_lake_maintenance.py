"""Retention and file upkeep of a lake: age deletes, the log cap, compaction, snapshot expiry.

Collectors append small Parquet files (one per table per commit) and DuckLake keeps every
snapshot, so a lake needs upkeep that an embedded file does not:

1. **Age** (every ``interval_s``) — traces whose jobs have all finished (``completed``,
   ``failed``, ``cancelled``, ``lost``) more than ``max_age_s`` ago go
   with their facts, spans, logs and links; records of no job older than
   ``system_logs_max_age_s`` (logs) or ``max_age_s`` (spans of traces without jobs, metric
   points) go too. Then, with ``max_logs_per_job``, the per-job log cap
   (:mod:`jobtrail.storage._lake_retention`), as on the embedded file.
2. **Compaction** (every ``compact_interval_s``, ``exporters.duckdb.lake.compact_interval``,
   default 5 minutes) — rows DuckLake inlined into the catalog
   are written out (``ducklake_flush_inlined_data``), files with many deleted rows are
   rewritten (``ducklake_rewrite_data_files``), then adjacent small files are merged
   (``ducklake_merge_adjacent_files``).
3. **Snapshot expiry** (with compaction) — snapshots older than ``snapshot_keep_s`` are
   expired and the files only they referenced are deleted (``ducklake_expire_snapshots``,
   ``ducklake_cleanup_old_files``); a reader's snapshot lasts one query, so a short window
   is safe.

Any collector may run it; two running it at once conflict on their deletes and one of
them simply skips that round (each step is its own transaction). The size cap of the
embedded file is refused on a lake when the configuration is read (jobtrail/config.py).
``jobtrail prune`` runs one pass of all of it (or, with ``--dry-run``, counts the deletes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from jobtrail.storage._lake_retention import Capped, cap_logs_on_lake
from jobtrail.storage._sql import transaction

if TYPE_CHECKING:
    from jobtrail.storage.lake import LakeDatabase

log = logging.getLogger(__name__)

_FINISHED = "('completed', 'failed', 'cancelled', 'lost')"
#: A file with this share of its rows deleted is rewritten (then merged with its neighbours).
_RW = 0.5


@dataclass(frozen=True, slots=True)
class LakeRetention:
    """How long a lake keeps data and how often it is tidied (see the module docstring).

    Raises:
        ValueError: A duration is not positive (``snapshot_keep_s`` may be 0) or
            ``max_logs_per_job`` is below 2; the message names the argument.
    """

    max_age_s: float = 30 * 86400.0
    system_logs_max_age_s: float | None = None
    interval_s: float = 3600.0
    compact_interval_s: float = 300.0
    snapshot_keep_s: float = 3600.0
    max_logs_per_job: int | None = None

    def __post_init__(self) -> None:
        durations = {
            "max_age_s": self.max_age_s,
            "system_logs_max_age_s": self.system_logs_max_age_s,
            "interval_s": self.interval_s,
            "compact_interval_s": self.compact_interval_s,
        }
        for name, value in durations.items():
            if value is not None and not value > 0:
                raise ValueError(f"lake retention {name}: must be positive, got {value!r}")
        if not self.snapshot_keep_s >= 0:
            raise ValueError(
                f"lake retention snapshot_keep_s: must be >= 0, got {self.snapshot_keep_s!r}"
            )
        if self.max_logs_per_job is not None and self.max_logs_per_job < 2:
            raise ValueError(
                "lake retention max_logs_per_job: must be at least 2 (first and last records)"
            )


@dataclass(slots=True)
class MaintenanceReport:
    """What one pass did (rows deleted per table, steps that ran or were skipped).

    ``deleted`` counts rows per lake table, and under ``jobs`` the jobs they held; ``capped``
    the log cap's work. A dry run fills both with what a pass would delete.
    """

    deleted: dict[str, int] = field(default_factory=dict)
    capped: Capped = field(default_factory=Capped)
    dry_run: bool = False
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def maintain(
    db: LakeDatabase,
    retention: LakeRetention,
    *,
    ages: bool = True,
    compact: bool = True,
    dry_run: bool = False,
) -> MaintenanceReport:
    """One upkeep pass: retention (``ages``), then compaction and expiry (``compact``).

    Retention is the age deletes, then the log cap. Which steps are due is the caller's
    choice: a collector's loop (:class:`~jobtrail.storage._lake_tasks.UpkeepSchedule`) asks
    for retention every ``interval_s`` and compaction every ``compact_interval_s``;
    ``jobtrail prune`` for both. ``dry_run`` counts what retention would delete, changes
    nothing and does no compaction.
    """
    started = time.monotonic()
    report = MaintenanceReport(dry_run=dry_run)
    cur = db.cursor()
    lake = db.lake.name
    try:
        if ages:
            _step(
                report,
                "age",
                lambda: report.deleted.update(expire(cur, lake, retention, dry_run=dry_run)),
            )
        cap = retention.max_logs_per_job
        if ages and cap:

            def cap_step() -> None:
                report.capped = cap_logs_on_lake(cur, lake, cap, dry_run=dry_run)

            _step(report, "cap", cap_step)
        if dry_run or not compact:
            return _logged(report, started)
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
    return _logged(report, started)


def _logged(report: MaintenanceReport, started: float) -> MaintenanceReport:
    report.seconds = time.monotonic() - started
    log.info(
        "lake maintenance%s: %s in %.1f s; deleted %s; capped %d logs of %d jobs; skipped %s",
        " (dry run)" if report.dry_run else "", ", ".join(report.done) or "nothing",
        report.seconds, report.deleted or "nothing", report.capped.logs, report.capped.jobs,
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


def expire(
    cur: duckdb.DuckDBPyConnection, lake: str, retention: LakeRetention, *, dry_run: bool = False
) -> dict[str, int]:
    """Delete what is older than the retention ages, in one transaction; rows per table.

    ``jobs`` counts the jobs whose facts go. A dry run counts and rolls back (each count
    reads only tables deleted from after it, so the counts are what a pass deletes).
    """
    max_age = f"now()::TIMESTAMP - INTERVAL {int(retention.max_age_s)} SECOND"
    system_age_s = retention.system_logs_max_age_s or retention.max_age_s
    system_age = f"now()::TIMESTAMP - INTERVAL {int(system_age_s)} SECOND"
    deleted: dict[str, int] = {}
    with transaction(cur, commit=not dry_run):
        cur.execute(
            f"""CREATE TEMP TABLE _lake_old AS
                SELECT trace_id FROM jobs WHERE trace_id IS NOT NULL GROUP BY trace_id
                HAVING bool_and(status IN {_FINISHED})
                   AND max(coalesce(ended_at, last_seen)) < {max_age}"""  # noqa: S608
        )
        old = "trace_id IN (SELECT trace_id FROM _lake_old)"
        jobs = cur.execute(
            f"SELECT count(DISTINCT id) FROM {lake}.job_facts WHERE {old}"  # noqa: S608
        ).fetchone()
        if jobs and jobs[0]:
            deleted["jobs"] = int(jobs[0])
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
            "log_caps": f"job_id IN (SELECT id FROM {lake}.job_facts WHERE {old})",
            "job_queue": f"id IN (SELECT id FROM {lake}.job_facts WHERE {old})",
            # The stored folds of those jobs and steps (see _lake_fold).
            "jobs_folded": f"id IN (SELECT id FROM {lake}.job_facts WHERE {old})",
            "steps_folded": old,
        }
        # Facts name their trace only on some rows: delete a job's facts by id, logs by id
        # or trace, before the rows that say which trace a job is in are gone.
        tables = (
            "log_records", "log_links", "log_caps", "job_queue", "jobs_folded",
            "steps_folded", "step_facts", "spans", "metrics",
        )  # fmt: skip
        for table in (*tables, "job_facts"):
            row = cur.execute(
                f"SELECT count(*) FROM {lake}.{table} WHERE {statements[table]}"  # noqa: S608
            ).fetchone()
            if row and row[0]:
                if not dry_run:
                    cur.execute(f"DELETE FROM {lake}.{table} WHERE {statements[table]}")  # noqa: S608
                deleted[table] = int(row[0])
        cur.execute("DROP TABLE _lake_old")
    return deleted
