"""Folding settled facts once: the pass that keeps lake reads proportional to recent work.

The ``jobs`` and ``steps`` of a lake are folded from append-only facts (see
:mod:`jobtrail.storage._lake_views`). Folding every fact on every read costs more as the
lake grows, so a periodic pass stores the folded rows: ``jobs_folded`` and
``steps_folded`` hold, for every job and step, the fold of its facts as of the pass, and
``fold_marks`` the largest fact row ids the pass saw (``job_facts_upto``,
``step_facts_upto``). The views then read

* the stored row of every job (step) that has no fact with a larger row id than the mark,
* and fold, from *all* their facts, only the jobs (steps) that have such a newer fact.

**Late facts.** Row ids are assigned at commit in commit order, so any fact committed after
a pass — a late span, a heartbeat, "lost", a link from the sweep, a fact another collector
stored — has a row id above the mark. Its job is then folded from all its facts when read,
exactly as without the pass, and the next pass replaces its stored row. So the result never
depends on when passes ran: the fold is a function of the set of facts, and the stored
rows are that function's value for the facts up to the mark.

**One pass at a time.** A pass is one transaction: it folds the jobs and steps that got
facts since the previous marks, deletes their old stored rows, appends the new ones, and
replaces the marks row. Two passes at once (two collectors) both delete the marks row, so
DuckLake fails one of them at commit and it skips the round; a pass never appends a
second stored row of a job.

**Marks in the views.** Each process writes the marks into its views as constants (a
filter ``rowid > constant`` skips every older file and row group; a subquery would not),
and refreshes them when it sees a new pass (:class:`~jobtrail.storage._lake_tasks.LakeWatch`).
A process with older marks than the lake's is still right, it folds a little more.

Retention deletes the stored rows of the traces it deletes (``_lake_maintenance.expire``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import duckdb

from jobtrail.storage._lake_views import (
    create_fold_views,
    fold_marks,
    job_fold_sql,
    step_fold_sql,
)
from jobtrail.storage._sql import transaction
from jobtrail.storage.derive import JOB_COLUMNS, STEP_COLUMNS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FoldReport:
    """What one pass did: the new marks and how many jobs and steps it (re)folded."""

    marks: tuple[int, int]
    jobs: int = 0
    steps: int = 0
    seconds: float = 0.0


def _max_rowid(cur: duckdb.DuckDBPyConnection, table: str, above: int) -> int:
    row = cur.execute(
        f"SELECT max(rowid) FROM {table} WHERE rowid > {int(above)}"  # noqa: S608
    ).fetchone()
    return above if not row or row[0] is None else int(row[0])


def fold_settled(cur: duckdb.DuckDBPyConnection, lake: str) -> FoldReport:
    """One pass (see the module docstring); returns the marks now in force.

    ``cur`` is a cursor of a :class:`~jobtrail.storage.lake.LakeDatabase`. Raises
    :class:`duckdb.Error` when the commit loses to another pass or to retention (the caller
    skips the round); nothing is written then.
    """
    started = time.monotonic()
    with transaction(cur):
        old_jobs, old_steps = fold_marks(cur, lake)
        new_jobs = _max_rowid(cur, f"{lake}.job_facts", old_jobs)
        new_steps = _max_rowid(cur, f"{lake}.step_facts", old_steps)
        if (new_jobs, new_steps) == (old_jobs, old_steps):
            cur.execute("ROLLBACK")
            return FoldReport(marks=(old_jobs, old_steps))
        jobs = _refold(
            cur,
            f"{lake}.jobs_folded",
            f"SELECT DISTINCT id FROM {lake}.job_facts WHERE rowid > {old_jobs}",
            ("id",),
            job_fold_sql(lake, f"rowid > {old_jobs}"),
            JOB_COLUMNS,
            order="started_at NULLS FIRST, id",
        )
        steps = _refold(
            cur,
            f"{lake}.steps_folded",
            f"SELECT DISTINCT trace_id, span_id FROM {lake}.step_facts WHERE rowid > {old_steps}",
            ("trace_id", "span_id"),
            step_fold_sql(lake, f"rowid > {old_steps}"),
            STEP_COLUMNS,
            order="job_id, seq, started_at",
        )
        cur.execute(f"DELETE FROM {lake}.fold_marks")  # noqa: S608
        cur.execute(
            f"INSERT INTO {lake}.fold_marks VALUES (?, ?, now()::TIMESTAMP)",  # noqa: S608
            [new_jobs, new_steps],
        )
    report = FoldReport((new_jobs, new_steps), jobs, steps, time.monotonic() - started)
    log.debug("lake fold: %d jobs, %d steps in %.2f s", jobs, steps, report.seconds)
    return report


def _refold(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    changed: str,
    key: tuple[str, ...],
    fold: str,
    columns: tuple[str, ...],
    *,
    order: str,
) -> int:
    """Replace the stored rows of the keys in ``changed`` by ``fold``; how many rows."""
    row = cur.execute(f"SELECT count(*) FROM ({changed})").fetchone()  # noqa: S608
    if not row or not row[0]:
        return 0
    k = key[0] if len(key) == 1 else f"({', '.join(key)})"
    cur.execute(f"DELETE FROM {table} WHERE {k} IN (SELECT {k} FROM ({changed}))")  # noqa: S608
    names = ", ".join(columns)
    cur.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM ({fold}) ORDER BY {order}"  # noqa: S608
    )
    return int(row[0])


def fold_and_refresh(cur: duckdb.DuckDBPyConnection, lake: str) -> FoldReport:
    """Run a pass on ``cur`` and point this process's views at its marks.

    The views live in the process's in-memory catalog, which every cursor of the same
    database shares, so one cursor's refresh serves all readers.
    """
    report = fold_settled(cur, lake)
    create_fold_views(cur, lake, report.marks)
    return report
