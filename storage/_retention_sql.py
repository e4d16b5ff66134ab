"""The statements behind retention: which jobs may go, and every row that goes with them.

Each function runs inside one transaction and either deletes rows or only counts the same
rows (``delete=False``, for dry runs on a read-only connection), so a dry run and a real run
select with the same SQL. Scratch tables are connection-local ``TEMP`` tables dropped
before the function returns.

What belongs to a job: its ``jobs`` row; its ``steps``; its ``logs`` (by ``job_id``); and
its spans — the job's span, its steps' spans, the spans of earlier attempts, and every span
below them in the trace down to (not into) another job that stays. Jobs are pruned as whole
trees (a root job with all its child jobs), so a parent never loses children it still shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb

from jobtrail.storage._retention_logs import count_one, forget_logs, load_ids, summaries_of

#: A job in one of these states is no longer running. ``lost`` counts as finished: it stopped
#: showing signs of life, and its age is its last sign of life.
FINISHED = ("completed", "failed", "cancelled", "lost")
#: Tables of records that belong to no job, pruned by age alone.
UNOWNED_TABLES = ("logs", "spans", "steps", "metrics")

_MAX_DEPTH = 64
#: A job's age: when jobtrail last heard of it or it ended, whichever is later (a client whose
#: clock runs behind does not get its jobs pruned early).
_JOB_AT = "greatest(j.ended_at, j.last_seen, j.started_at)"
#: Records of no job: the WHERE clause and the time that ages them.
_UNOWNED_WHERE = {
    "logs": "(job_id IS NULL OR job_id NOT IN (SELECT id FROM jobs)) "
    "AND coalesce(received_at, time) < $cutoff",
    "spans": "trace_id NOT IN (SELECT trace_id FROM jobs WHERE trace_id IS NOT NULL) "
    "AND coalesce(received_at, end_time) < $cutoff",
    "steps": "(job_id IS NULL OR job_id NOT IN (SELECT id FROM jobs)) "
    "AND coalesce(ended_at, started_at) < $cutoff",
    "metrics": "coalesce(received_at, time) < $cutoff",
}
#: In a dry run, the expired jobs (counted apart) are still there: count what a real pass
#: would find jobless once they are gone, and not what they own.
_NOT_OWNED = (
    " AND NOT EXISTS (SELECT 1 FROM _rt_owned o "
    "WHERE o.trace_id = {t}.trace_id AND o.span_id = {t}.span_id)"
)
_DRY_WHERE = {
    "logs": _UNOWNED_WHERE["logs"],
    "spans": "trace_id NOT IN (SELECT trace_id FROM jobs WHERE trace_id IS NOT NULL "
    "AND id NOT IN (SELECT id FROM _rt_members)) AND coalesce(received_at, end_time) < $cutoff"
    + _NOT_OWNED.format(t="spans"),
    "steps": _UNOWNED_WHERE["steps"] + _NOT_OWNED.format(t="steps"),
    "metrics": _UNOWNED_WHERE["metrics"],
}

_OWNED_SPANS = f"""
WITH RECURSIVE
  mt AS (SELECT trace_id FROM _rt_members WHERE trace_id IS NOT NULL
         UNION SELECT trace_id FROM steps WHERE job_id IN (SELECT id FROM _rt_members)),
  sp AS MATERIALIZED (SELECT trace_id, span_id, parent_span_id FROM spans
                      WHERE trace_id IN (SELECT trace_id FROM mt) {{window}}),
  attempt_spans AS (
    SELECT unnest(json_extract_string(attempts, '$[*].span_id')) AS span_id FROM jobs
    WHERE id IN (SELECT id FROM _rt_members) AND attempts IS NOT NULL),
  seeds AS (
    SELECT trace_id, span_id FROM _rt_members WHERE trace_id IS NOT NULL AND span_id IS NOT NULL
    UNION SELECT trace_id, span_id FROM steps WHERE job_id IN (SELECT id FROM _rt_members)
    UNION SELECT trace_id, span_id FROM sp WHERE span_id IN (SELECT span_id FROM attempt_spans)),
  keep AS (SELECT trace_id, span_id FROM jobs
           WHERE trace_id IN (SELECT trace_id FROM mt) AND span_id IS NOT NULL
             AND id NOT IN (SELECT id FROM _rt_members)),
  owned(trace_id, span_id, depth) AS (
    SELECT trace_id, span_id, 0 FROM seeds
    UNION ALL
    SELECT sp.trace_id, sp.span_id, o.depth + 1
    FROM sp JOIN owned o ON sp.trace_id = o.trace_id AND sp.parent_span_id = o.span_id
    ANTI JOIN keep k ON k.trace_id = sp.trace_id AND k.span_id = sp.span_id
    WHERE o.depth < {_MAX_DEPTH})
SELECT DISTINCT trace_id, span_id FROM owned"""
#: Spans of a job tree are looked for between its first start and its last sign of life,
#: give or take this much (clock skew, late exports). ``received_at`` grows with arrival,
#: so the bound lets DuckDB skip the row groups outside it. A span outside is not lost: once
#: its trace holds no job it goes as a record of no job.
_SPAN_SLACK = "INTERVAL 1 DAY"


@dataclass(slots=True)
class Removed:
    """Rows removed (or, in a dry run, that would be) from each table."""

    jobs: int = 0
    steps: int = 0
    logs: int = 0
    spans: int = 0
    metrics: int = 0

    def add(self, other: Removed) -> None:
        """Add ``other``'s counts to these."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    @property
    def rows(self) -> int:
        """All rows together."""
        return self.jobs + self.steps + self.logs + self.spans + self.metrics


def finished_roots(
    con: duckdb.DuckDBPyConnection, cutoff: datetime | None
) -> list[tuple[str, datetime]]:
    """Root jobs whose whole tree is finished (and, given ``cutoff``, older), oldest first.

    A root is a job with no parent job, or whose parent is gone. A tree's age is its
    youngest job's, so a recent child keeps an old parent (and its rows) alive.
    """
    having = "AND max(aged_at) < $cutoff" if cutoff is not None else ""
    rows = con.execute(
        f"""
        WITH RECURSIVE tree(root, id, depth) AS (
            SELECT j.id, j.id, 0 FROM jobs j
            WHERE j.parent_job_id IS NULL
               OR NOT EXISTS (SELECT 1 FROM jobs p WHERE p.id = j.parent_job_id)
            UNION ALL
            SELECT t.root, c.id, t.depth + 1 FROM jobs c JOIN tree t ON c.parent_job_id = t.id
            WHERE t.depth < {_MAX_DEPTH}
        )
        SELECT root, max(aged_at) AS newest FROM (
            SELECT t.root, j.status, {_JOB_AT} AS aged_at FROM tree t JOIN jobs j ON j.id = t.id)
        GROUP BY root
        HAVING bool_and(list_contains($finished, status) AND aged_at IS NOT NULL) {having}
        ORDER BY newest, root""",  # noqa: S608 - constants only
        {"finished": list(FINISHED), **({"cutoff": cutoff} if cutoff is not None else {})},
    ).fetchall()
    return [(str(root), newest) for root, newest in rows]


def _select_members(
    con: duckdb.DuckDBPyConnection, roots: Sequence[str], cutoff: datetime | None
) -> list[str]:
    """Fill ``_rt_members`` with the jobs of those trees that still qualify, now.

    Checked again inside the transaction that deletes: a tree may have gained a running
    child, or its root a parent, since it was chosen.
    """
    old_enough = "AND max(aged_at) < $cutoff" if cutoff is not None else ""
    load_ids(con, "_rt_roots", roots)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _rt_members AS
        WITH RECURSIVE tree(root, id, depth) AS (
            SELECT j.id, j.id, 0 FROM jobs j
            WHERE j.id IN (SELECT id FROM _rt_roots)
              AND (j.parent_job_id IS NULL
                   OR NOT EXISTS (SELECT 1 FROM jobs p WHERE p.id = j.parent_job_id))
            UNION ALL
            SELECT t.root, c.id, t.depth + 1 FROM jobs c JOIN tree t ON c.parent_job_id = t.id
            WHERE t.depth < {_MAX_DEPTH}
        ),
        tree_jobs AS (SELECT t.root, j.id, j.trace_id, j.span_id, j.status, {_JOB_AT} AS aged_at
                 FROM tree t JOIN jobs j ON j.id = t.id),
        ok AS (SELECT root FROM tree_jobs GROUP BY root
               HAVING bool_and(list_contains($finished, status) AND aged_at IS NOT NULL)
               {old_enough})
        SELECT id, trace_id, span_id FROM tree_jobs WHERE root IN (SELECT root FROM ok)""",  # noqa: S608
        {
            "finished": list(FINISHED),
            **({"cutoff": cutoff} if cutoff is not None else {}),
        },
    )
    con.execute("DROP TABLE _rt_roots")
    return [str(r[0]) for r in con.execute("SELECT id FROM _rt_members").fetchall()]


def expire_trees(
    con: duckdb.DuckDBPyConnection,
    roots: Sequence[str],
    cutoff: datetime | None,
    *,
    delete: bool = True,
) -> tuple[Removed, list[str]]:
    """Remove the job trees under ``roots`` that still qualify, with all their rows.

    Returns what was removed (or would be) and the ids of the jobs. A dry run
    (``delete=False``) leaves its scratch tables for :func:`expire_unowned` to count what
    the expired jobs leave jobless; the caller's rollback drops them.
    """
    members = _select_members(con, roots, cutoff)
    if not members and delete:
        con.execute("DROP TABLE IF EXISTS _rt_members")
        return Removed(), []
    try:
        span_window, span_params = _span_window(con)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _rt_owned AS {_OWNED_SPANS.format(window=span_window)}",
            span_params,
        )
        owned_join = "o.trace_id = {t}.trace_id AND o.span_id = {t}.span_id"
        summaries = summaries_of(con)
        logs_where, logs_params = _member_logs(con, summaries)
        removed = Removed()
        if delete:
            removed.spans = count_one(
                con,
                f"DELETE FROM spans USING _rt_owned o WHERE {owned_join.format(t='spans')} "
                + span_window,
                span_params,
            )
            removed.steps = count_one(
                con, "DELETE FROM steps WHERE job_id IN (SELECT id FROM _rt_members)"
            ) + count_one(
                con,
                "DELETE FROM steps USING _rt_owned o "
                f"WHERE steps.job_id IS NULL AND {owned_join.format(t='steps')}",
            )
            removed.logs = forget_logs(con, logs_where, logs_params, summaries=summaries)
            removed.jobs = count_one(
                con, "DELETE FROM jobs WHERE id IN (SELECT id FROM _rt_members)"
            )
            if "job_log_ranges" in summaries:
                con.execute(
                    "DELETE FROM job_log_ranges WHERE job_id IN (SELECT id FROM _rt_members)"
                )
        else:
            removed.spans = count_one(
                con,
                f"SELECT count(*) FROM spans s SEMI JOIN _rt_owned o ON {owned_join.format(t='s')}",
            )
            removed.steps = count_one(
                con,
                "SELECT count(*) FROM steps s WHERE s.job_id IN (SELECT id FROM _rt_members) "
                "OR (s.job_id IS NULL AND EXISTS (SELECT 1 FROM _rt_owned o "
                f"WHERE {owned_join.format(t='s')}))",
            )
            removed.logs = count_one(
                con, f"SELECT count(*) FROM logs WHERE {logs_where}", logs_params
            )  # noqa: S608
            removed.jobs = len(members)
        return removed, members
    finally:
        if delete:
            con.execute("DROP TABLE IF EXISTS _rt_owned")
            con.execute("DROP TABLE IF EXISTS _rt_members")


def _span_window(con: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, object]]:
    """A ``received_at`` bound for the spans of ``_rt_members`` (see ``_SPAN_SLACK``)."""
    row = con.execute(
        f"""SELECT min(coalesce(j.started_at, j.last_seen)) - {_SPAN_SLACK},
                   max({_JOB_AT}) + {_SPAN_SLACK}
            FROM jobs j WHERE j.id IN (SELECT id FROM _rt_members)"""  # noqa: S608
    ).fetchone()
    if not row or row[0] is None or row[1] is None:
        return "", {}
    return "AND received_at BETWEEN $span_lo AND $span_hi", {"span_lo": row[0], "span_hi": row[1]}


def _member_logs(
    con: duckdb.DuckDBPyConnection, summaries: frozenset[str]
) -> tuple[str, dict[str, object]]:
    """WHERE for the logs of ``_rt_members``, bounded by their ``job_log_ranges`` ids.

    The writer widens a job's range with every record linked to it, so the bound is exact;
    without the table (views of another backend) every row group is read.
    """
    where = "job_id IN (SELECT id FROM _rt_members)"
    if "job_log_ranges" not in summaries:
        return where, {}
    row = con.execute(
        "SELECT min(lo), max(hi) FROM job_log_ranges WHERE job_id IN (SELECT id FROM _rt_members)"
    ).fetchone()
    if not row or row[0] is None:
        return "false", {}
    return f"id BETWEEN $log_lo AND $log_hi AND {where}", {"log_lo": row[0], "log_hi": row[1]}


def expire_unowned(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cutoff: datetime,
    *,
    limit: int | None,
    delete: bool = True,
) -> int:
    """Remove up to ``limit`` records of no job in ``table`` older than ``cutoff``.

    A dry run counts them all, after a dry :func:`expire_trees` in the same transaction.
    """
    params: dict[str, object] = {"cutoff": cutoff}
    if not delete:
        where = _DRY_WHERE[table]
        return count_one(con, f"SELECT count(*) FROM {table} WHERE {where}", params)  # noqa: S608
    where = _UNOWNED_WHERE[table]
    some = f"LIMIT {int(limit)}" if limit is not None else ""
    if table == "logs":
        return forget_logs(con, f"id IN (SELECT id FROM logs WHERE {where} {some})", params)
    return count_one(
        con,
        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} {some})",  # noqa: S608
        params,
    )
