"""The per-job log cap on a lake: a flooding job keeps its first and last records.

The rule is the embedded file's (:mod:`jobtrail.storage.retention`, step 3): a job with more
than ``max_logs_per_job`` log records (lifecycle records are not counted) keeps its first
``max // 2`` and last ``max - max // 2`` records by id, and the rest are deleted and counted
in ``jobs.logs_dropped``. A lake updates no row in place, so the count is a row appended
per capped job (``log_caps``, which the ``jobs`` view sums); it is appended in the
transaction that deletes the records, so the two never disagree: a collector capping or
expiring the same job at the same moment conflicts on the delete, and one of them skips.

Each pass takes one transaction for the whole lake (DuckLake records a delete as a small
file of row positions, so even many records are cheap to drop); running jobs are capped too
and later passes drop from their middle again, as on the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from jobtrail.storage._sql import transaction


@dataclass(frozen=True, slots=True)
class Capped:
    """What one cap pass dropped (or, for a dry run, would drop)."""

    jobs: int = 0
    logs: int = 0


def cap_logs_on_lake(
    cur: duckdb.DuckDBPyConnection, lake: str, keep: int, *, dry_run: bool = False
) -> Capped:
    """Drop the middle of every job's logs beyond ``keep`` records, in one transaction.

    ``cur`` is a cursor of a :class:`~jobtrail.storage.lake.LakeDatabase` (its ``logs`` view
    gives records their job, whichever collector linked them). A dry run counts and rolls
    back.
    """
    if keep < 2:
        raise ValueError("max_logs_per_job must be at least 2 (first and last records)")
    first, last = keep // 2, keep - keep // 2
    with transaction(cur, commit=not dry_run):
        # Only jobs that have facts (records naming an unknown job wait for its facts).
        cur.execute(
            f"""CREATE OR REPLACE TEMP TABLE _lake_cap AS
                SELECT id, job_id FROM (
                    SELECT id, job_id,
                           row_number() OVER (PARTITION BY job_id ORDER BY id) AS rn,
                           count(*) OVER (PARTITION BY job_id) AS total
                    FROM logs
                    WHERE event_name IS NULL AND job_id IN (
                        SELECT job_id FROM logs
                        WHERE job_id IS NOT NULL AND event_name IS NULL
                          AND job_id IN (SELECT id FROM {lake}.job_facts)
                        GROUP BY job_id HAVING count(*) > {int(keep)}))
                WHERE rn > {int(first)} AND rn <= total - {int(last)}"""  # noqa: S608
        )
        row = cur.execute("SELECT count(DISTINCT job_id), count(*) FROM _lake_cap").fetchone()
        capped = Capped(jobs=int(row[0]), logs=int(row[1])) if row else Capped()
        if capped.logs and not dry_run:
            cur.execute(
                f"DELETE FROM {lake}.log_records "  # noqa: S608
                "WHERE rowid > 0 AND rowid IN (SELECT id FROM _lake_cap)"
            )
            cur.execute(
                f"""INSERT INTO {lake}.log_caps
                    SELECT job_id, count(*), now()::TIMESTAMP FROM _lake_cap GROUP BY job_id"""  # noqa: S608
            )
        cur.execute("DROP TABLE _lake_cap")
    return capped
