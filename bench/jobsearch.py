"""The jobs list's text filter: ``lower()`` over four columns against the stored column.

``python -m bench.jobsearch DB`` opens a bulk database read-only (one DuckDB thread, as the
API's read cursors) and times, in one process, the newest-first page of matches and a full
count under both filters: what ``jobs.search_text`` (schema 8) replaced and what it is.
Use the cached databases of ``python -m bench query``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import duckdb

from jobtrail.storage.schema import JOB_SEARCH_TEXT

FOUR_COLUMNS = " OR ".join(f"contains(lower({c}), $q)" for c in ("name", "id", "type", "error"))
FILTERS = {
    "lower() over name, id, type, error": f"({FOUR_COLUMNS})",
    "stored search_text": "contains(search_text, $q)",
    "coalesce(search_text, expression)": f"contains(coalesce(search_text, {JOB_SEARCH_TEXT}), $q)",
}
SHAPES = {
    "newest 51 matches": "SELECT id FROM jobs WHERE {} ORDER BY started_at DESC, id DESC LIMIT 51",
    "count of matches": "SELECT count(*) FROM jobs WHERE {}",
}


def main() -> None:
    """Print median milliseconds per filter and query shape."""
    ap = argparse.ArgumentParser(prog="python -m bench.jobsearch")
    ap.add_argument("db")
    ap.add_argument("--q", default="batch 123")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    con = duckdb.connect(args.db, read_only=True)
    con.execute("SET threads = 1")
    for shape, sql in SHAPES.items():
        for name, where in FILTERS.items():
            times, rows = [], 0
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                rows = len(con.execute(sql.format(where), {"q": args.q.lower()}).fetchall())
                times.append((time.perf_counter() - t0) * 1000)
            print(f"{shape:18} | {name:36} | {statistics.median(times):7.1f} ms | rows {rows}")


if __name__ == "__main__":
    main()
