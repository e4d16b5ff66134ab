"""Where a slow API call spends its time: each SQL statement of a storage query, timed.

``python -m bench.sqlprofile DB`` opens a bulk database read-only and runs the storage
functions behind the slow calls of the query benchmark on a cursor that times every
statement (the API adds only JSON encoding on top). Use the cached databases of
``python -m bench query`` (``$TMPDIR/jobtrail-bench-cache/bulk-*.duckdb``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import duckdb

from jobtrail.storage import queries
from jobtrail.storage._query_model import JobFilter, LogFilter, StatsFilter


class _Result:
    def __init__(self, description: Any, rows: list[Any]) -> None:
        self.description = description
        self._rows = rows

    def fetchall(self) -> list[Any]:
        return self._rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None


class TimedCursor:
    """Runs each statement to completion and records (ms, statement)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur
        self.log: list[tuple[float, str]] = []

    def execute(self, sql: str, params: Any = None) -> _Result:
        t0 = time.perf_counter()
        res = self._cur.execute(sql, params or {})
        rows = res.fetchall() if res.description else []
        self.log.append(((time.perf_counter() - t0) * 1000, " ".join(sql.split())))
        return _Result(res.description, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


CALLS: list[tuple[str, Callable[[Any, str], Any]]] = [
    ("job detail", lambda c, j: queries.get_job(c, j)),
    ("job logs", lambda c, j: queries.job_logs(c, j, LogFilter())),
    ("job logs ?level=error,warn",
     lambda c, j: queries.job_logs(c, j, LogFilter(levels=("error", "warn")))),
    ("jobs, no filter", lambda c, j: queries.list_jobs(c, JobFilter())),
    ("jobs ?parent=none", lambda c, j: queries.list_jobs(c, JobFilter(top_level_only=True))),
    ("jobs ?q=", lambda c, j: queries.list_jobs(c, JobFilter(q="batch 123"))),
    ("stats, everything", lambda c, j: queries.get_stats(c, StatsFilter())),
]  # fmt: skip


def main() -> None:
    """Print, per call, the statements over 1 ms (third of three runs, warm)."""
    ap = argparse.ArgumentParser(prog="python -m bench.sqlprofile")
    ap.add_argument("db")
    args = ap.parse_args()
    con = duckdb.connect(args.db, read_only=True)
    ids = [r[0] for r in con.execute("SELECT id FROM jobs USING SAMPLE 3 ROWS").fetchall()]
    for name, call in CALLS:
        cur = TimedCursor(con.cursor())
        for job_id in ids:
            cur.log.clear()
            t0 = time.perf_counter()
            call(cur, job_id)
            total = (time.perf_counter() - t0) * 1000
        print(f"== {name}: {total:.0f} ms")
        for ms, sql in cur.log:
            if ms >= 1:
                print(f"  {ms:7.1f} ms  {sql[:140]}")
    con.close()


if __name__ == "__main__":
    main()
