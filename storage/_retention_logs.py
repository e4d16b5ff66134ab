"""Retention's work on log records and on the file: deleting logs with their summaries,
the per-job log cap, and measuring and reclaiming space.

Deleting a log record keeps the tables the writer derives from ``logs`` true: ``log_counts``
loses its count. Functions run in the caller's transaction unless they say otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

#: Same keys as ``log_counts`` (records without time, level or category).
_COUNT_KEYS = (
    "coalesce(date_trunc('hour', time), TIMESTAMP '0001-01-01') AS hour, "
    "coalesce(level, 'unknown') AS level, coalesce(category, '') AS category"
)


def count_one(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None
) -> int:
    row = con.execute(sql, params or {}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def summaries_of(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Which of the tables the writer keeps about ``logs`` are real tables here (another
    backend may offer them as views, which need no upkeep)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
        "AND table_name IN ('log_counts', 'job_log_ranges')"
    ).fetchall()
    return frozenset(r[0] for r in rows)


def load_ids(con: duckdb.DuckDBPyConnection, table: str, ids: Sequence[str]) -> None:
    """Put ids into a TEMP table (through Arrow: a list parameter costs far more to bind)."""
    con.register("_rt_ids", pa.table({"id": pa.array(list(ids), pa.string())}))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT id FROM _rt_ids")  # noqa: S608
    finally:
        con.unregister("_rt_ids")


def forget_logs(
    con: duckdb.DuckDBPyConnection,
    where: str,
    params: dict[str, object],
    *,
    count_dropped: bool = False,
    summaries: frozenset[str] | None = None,
) -> int:
    """Delete the log records matching ``where``, keeping the tables derived from them true.

    ``log_counts`` loses their counts; with ``count_dropped`` each job's ``logs_dropped``
    grows by how many of its records went.
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rt_logs AS "
        f"SELECT id, job_id, time, level, category, event_name FROM logs WHERE {where}",  # noqa: S608
        params,
    )
    try:
        row = con.execute("SELECT count(*), min(id), max(id) FROM _rt_logs").fetchone()
        if not row or not row[0]:
            return 0
        if summaries is None:
            summaries = summaries_of(con)
        if "log_counts" in summaries:
            con.execute(
                f"""UPDATE log_counts SET n = log_counts.n - g.n
                    FROM (SELECT {_COUNT_KEYS}, count(*) AS n FROM _rt_logs
                          WHERE event_name IS NULL GROUP BY ALL) g
                    WHERE log_counts.hour = g.hour AND log_counts.level = g.level
                      AND log_counts.category = g.category"""  # noqa: S608 - constants only
            )
            con.execute("DELETE FROM log_counts WHERE n <= 0")
        if count_dropped:
            con.execute(
                """UPDATE jobs SET logs_dropped = coalesce(jobs.logs_dropped, 0) + d.n
                   FROM (SELECT job_id, count(*) AS n FROM _rt_logs GROUP BY job_id) d
                   WHERE jobs.id = d.job_id"""
            )
        return count_one(
            con,
            "DELETE FROM logs WHERE id BETWEEN $lo AND $hi AND id IN (SELECT id FROM _rt_logs)",
            {"lo": row[1], "hi": row[2]},
        )
    finally:
        con.execute("DROP TABLE IF EXISTS _rt_logs")


def over_cap(
    con: duckdb.DuckDBPyConnection, keep: int, *, exclude: Sequence[str] = ()
) -> list[tuple[str, int]]:
    """Jobs with more than ``keep`` log records and how many they hold, in log id order.

    Ordered by where their records start, so a chunk of them covers few row groups.
    """
    not_excluded = ""
    if exclude:
        load_ids(con, "_rt_exclude", exclude)
        not_excluded = "AND job_id NOT IN (SELECT id FROM _rt_exclude)"
    over = f"""
        SELECT job_id, count(*) AS n FROM logs
        WHERE job_id IS NOT NULL AND event_name IS NULL
          AND job_id IN (SELECT id FROM jobs) {not_excluded}
        GROUP BY job_id HAVING count(*) > $keep"""
    order = "ORDER BY c.job_id"
    if "job_log_ranges" in summaries_of(con):
        over = f"SELECT c.*, r.lo FROM ({over}) c LEFT JOIN job_log_ranges r USING (job_id)"
        order = "ORDER BY c.lo, c.job_id"
    rows = con.execute(f"SELECT c.job_id, c.n FROM ({over}) c {order}", {"keep": keep}).fetchall()  # noqa: S608
    if exclude:
        con.execute("DROP TABLE IF EXISTS _rt_exclude")
    return [(str(job_id), int(n)) for job_id, n in rows]


def cap_logs(
    con: duckdb.DuckDBPyConnection, job_ids: Sequence[str], first: int, last: int, *, limit: int
) -> int:
    """Drop up to ``limit`` records from the middle of these jobs' logs (oldest first).

    A job keeps its first ``first`` and last ``last`` records by id; lifecycle records are
    not counted or dropped. Repeated calls finish the job; each adds to ``logs_dropped``.
    """
    load_ids(con, "_rt_cap", job_ids)
    try:
        bounds = ""
        params: dict[str, object] = {"first": first, "last": last}
        summaries = summaries_of(con)
        if "job_log_ranges" in summaries:
            row = con.execute(
                "SELECT min(lo), max(hi) FROM job_log_ranges "
                "WHERE job_id IN (SELECT id FROM _rt_cap)"
            ).fetchone()
            if row and row[0] is not None:
                bounds = "AND id BETWEEN $log_lo AND $log_hi"
                params.update(log_lo=row[0], log_hi=row[1])
        where = f"""id IN (
            SELECT id FROM (
                SELECT id, row_number() OVER (PARTITION BY job_id ORDER BY id) AS rn,
                       count(*) OVER (PARTITION BY job_id) AS total
                FROM logs
                WHERE job_id IN (SELECT id FROM _rt_cap) AND event_name IS NULL {bounds})
            WHERE rn > $first AND rn <= total - $last ORDER BY id LIMIT {int(limit)})"""
        return forget_logs(con, where, params, count_dropped=True, summaries=summaries)
    finally:
        con.execute("DROP TABLE IF EXISTS _rt_cap")


def used_bytes(con: duckdb.DuckDBPyConnection) -> int | None:
    """Bytes of the database file holding data (free blocks are reused, so not counted).

    ``None`` for an in-memory database. Exact only after a ``CHECKPOINT``.
    """
    row = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchone()
    if not row or not row[0]:
        return None
    return int(row[0]) * int(row[1])


def try_checkpoint(con: duckdb.DuckDBPyConnection) -> bool:
    """Write the WAL into the file and free the blocks of deleted rows (no transaction).

    False when another transaction is running (a plain ``CHECKPOINT`` refuses then).
    """
    try:
        con.execute("CHECKPOINT")
    except duckdb.TransactionException:
        return False
    return True


def total_rows(con: duckdb.DuckDBPyConnection) -> int:
    """Rows in the tables retention prunes (to turn row counts into a bytes estimate)."""
    return count_one(
        con,
        "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM steps) + "
        "(SELECT count(*) FROM logs) + (SELECT count(*) FROM spans) + "
        "(SELECT count(*) FROM metrics)",
    )
