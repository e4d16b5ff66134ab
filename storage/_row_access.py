"""Reading and rewriting a few ``jobs``/``steps`` rows at a cost that does not grow with the table.

The linker reads the rows a commit updates and writes them back. DuckDB (1.5) answers
``key IN (<string literals>)`` through the key's index, while the same list as parameters
(``IN (?, ?)``, ``IN (SELECT unnest(?))``) scans the whole table: measured for 50 keys at
1M jobs, 4 ms against 65 ms, and 500 steps found through ``steps.job_id`` in 17 ms at 50k
and at 10M rows. So rows are looked up and deleted with literal key lists, one statement per
table and commit. Changed rows are deleted through the index and inserted again: cheaper
than ``INSERT OR REPLACE`` on ``jobs``, which on ``steps`` (composite key) even scans the
table (590 ms at 10M).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

import duckdb
import orjson
import pyarrow as pa

from jobtrail.storage._sql import sql_strings
from jobtrail.storage.schema import JOB_SEARCH_TEXT

#: Below this many rows a table is rewritten with one ``INSERT OR REPLACE``.
_SMALL_TABLE_ROWS = 200_000
#: Table sizes are re-read after this many uses (they only matter to an order of magnitude).
_SIZE_REFRESH = 500

StepKey = tuple[str, str]


def _sql_step_keys(keys: Iterable[StepKey]) -> str | None:
    """Step keys as ``'<trace_id>/<span_id>'`` literals (ids are hex), or None if one cannot be.

    One string per key, matched against ``trace_id || '/' || span_id``: DuckDB compares a
    list of row values (``(trace_id, span_id) IN ((..), ..)``) with every pair in turn, 27 ms
    for the 800 steps of two job-trace requests against 12.5 ms as strings (100k steps).
    """
    joined = []
    for trace_id, span_id in keys:
        if "/" in trace_id or "/" in span_id:
            return None
        joined.append(f"{trace_id}/{span_id}")
    return sql_strings(joined)


class RowAccess:
    """Fetches and rewrites ``jobs``/``steps`` rows on the writer's connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._sizes: dict[str, int] = {}
        self._uses = 0
        self._careful = 0  # commits left that read and replace rows by whole-table scans

    def be_careful(self, commits: int = 20) -> None:
        """After a rolled-back commit: use scans (exact whatever is stored) for a while."""
        self._careful = commits

    def committed(self) -> None:
        """One more commit went through."""
        self._careful = max(0, self._careful - 1)

    def table_rows(self, table: str) -> int:
        """The table's row count as DuckDB estimates it (cheap; refreshed now and then)."""
        self._uses += 1
        if table not in self._sizes or self._uses % _SIZE_REFRESH == 0:
            row = self._con.execute(
                "SELECT estimated_size FROM duckdb_tables() WHERE table_name = ? "
                "AND schema_name = 'main' AND database_name = current_database()",
                [table],
            ).fetchone()
            self._sizes[table] = int(row[0]) if row else 0
        return self._sizes[table]

    def is_large(self, table: str) -> bool:
        """Whether rows of ``table`` should be written through its index, one key at a time."""
        return not self._careful and self.table_rows(table) >= _SMALL_TABLE_ROWS

    # --- reading ---------------------------------------------------------------------------

    def jobs(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored rows of these job ids (absent ids are new jobs)."""
        listed = None if self._careful else sql_strings(ids)
        if listed is not None:
            rows = self._fetch("jobs", f"id IN ({listed})", [])
        else:
            rows = self._fetch("jobs", "id IN (SELECT unnest(?))", [ids])
        return {r["id"]: r for r in rows}

    def steps(
        self, keys: list[StepKey], job_of: dict[StepKey, str | None]
    ) -> dict[StepKey, dict[str, Any]]:
        """Stored rows of these step keys; ``job_of`` names each key's job where known."""
        wanted = set(keys)
        job_ids = {job_id for k in keys if (job_id := job_of.get(k)) is not None}
        listed = None if self._careful else sql_strings(sorted(job_ids))
        rows: list[dict[str, Any]] = []
        unknown = keys
        if listed is not None:  # a step keeps its job: look among the jobs' steps
            rows = self._fetch("steps", f"job_id IN ({listed})", [])
            unknown = [k for k in keys if job_of.get(k) is None]
        if unknown:
            rows += self._fetch(
                "steps",
                "(trace_id, span_id) IN (SELECT (unnest(?), unnest(?)))",
                [[k[0] for k in unknown], [k[1] for k in unknown]],
            )
        found = ((r["trace_id"], r["span_id"]) for r in rows)
        return {key: r for key, r in zip(found, rows, strict=True) if key in wanted}

    def _fetch(self, table: str, where: str, params: list[Any]) -> list[dict[str, Any]]:
        cur = self._con.execute(f"SELECT * FROM {table} WHERE {where}", params)  # noqa: S608
        names = [d[0] for d in cur.description]
        out = []
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=True))
            row["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else {}
            out.append(row)
        return out

    # --- writing ---------------------------------------------------------------------------

    def write(
        self,
        table: str,
        arrow: pa.Table,
        stored: dict[Hashable, str | None],
    ) -> None:
        """Store ``arrow``'s rows, replacing the stored ones (steps that stay with their job
        are updated in place).

        ``stored`` maps each key that already has a row to that row's stored ``id`` (jobs)
        or ``job_id`` (steps), which finds it through the index.
        """
        if table == "steps" and stored and not self._careful:
            arrow, stored = self._update_in_place(arrow, stored)
            if arrow.num_rows == 0:
                return
        self._con.register("_upsert_rows", arrow)
        try:
            delete = self._delete_jobs if table == "jobs" else self._delete_steps
            replace = bool(stored) and (self._careful or not delete(stored))  # type: ignore[arg-type]
            verb = "INSERT OR REPLACE" if replace else "INSERT"
            extra = f", {JOB_SEARCH_TEXT} AS search_text" if table == "jobs" else ""
            self._con.execute(f"{verb} INTO {table} BY NAME SELECT *{extra} FROM _upsert_rows")  # noqa: S608
        finally:
            self._con.unregister("_upsert_rows")

    def _update_in_place(
        self, arrow: pa.Table, stored: dict[Hashable, str | None]
    ) -> tuple[pa.Table, dict[Hashable, str | None]]:
        """``UPDATE`` the stored steps that stay with their job; return the rows (and their
        ``stored`` entries) still to be written.

        A delete must fetch each old row's key columns from storage to remove its index
        entries, which for steps already checkpointed into the compressed row groups of a
        large table is the writer's largest cost: 770 steps of 77 jobs at 10M steps, 13-18 ms
        deleted and inserted against 4 ms updated (on an empty file 3.8 against 3.0 ms per
        commit). DuckDB cannot update an indexed column in place, so a step whose ``job_id``
        changed (linked to its job late) is still deleted and inserted. Jobs are not updated
        this way: the 27 columns of a jobs row cost more to update (3.4 ms for a commit's
        rows) than to delete through the key and insert (0.75 ms plus the insert).
        """
        traces, spans = arrow.column("trace_id").to_pylist(), arrow.column("span_id").to_pylist()
        keys: list[Hashable] = list(zip(traces, spans, strict=True))
        job_ids = arrow.column("job_id").to_pylist()
        in_place = [
            job_id is not None and key in stored and stored[key] == job_id
            for key, job_id in zip(keys, job_ids, strict=True)
        ]
        count = sum(in_place)
        listed = sql_strings(sorted({j for j, m in zip(job_ids, in_place, strict=True) if m}))
        if not count or listed is None:
            return arrow, stored
        assign = ", ".join(
            f"{c} = u.{c}" for c in arrow.column_names if c not in ("trace_id", "span_id", "job_id")
        )
        self._con.register("_update_rows", arrow.filter(pa.array(in_place)))
        try:
            result = self._con.execute(
                f"UPDATE steps SET {assign} FROM _update_rows u WHERE steps.job_id IN ({listed}) "  # noqa: S608
                "AND steps.trace_id = u.trace_id AND steps.span_id = u.span_id"
            ).fetchone()
        finally:
            self._con.unregister("_update_rows")
        if result is None or result[0] != count:
            # A row the linker took for stored is not: write them all the other way.
            return arrow, stored
        rest = [not m for m in in_place]
        remaining = {k: stored[k] for k, r in zip(keys, rest, strict=True) if r and k in stored}
        return arrow.filter(pa.array(rest)), remaining

    def _delete_jobs(self, stored: dict[str, str | None]) -> bool:
        """Delete stored jobs through the primary key; False if a key cannot be listed.

        Delete and insert cost two thirds of ``INSERT OR REPLACE`` (10 of 100k jobs: 6.4
        against 9 ms with the commit), which rewrites each row through its conflict path.
        """
        ids = sql_strings(sorted(stored))
        if ids is None:
            return False
        self._con.execute(f"DELETE FROM jobs WHERE id IN ({ids})")  # noqa: S608
        return True

    def _delete_steps(self, stored: dict[StepKey, str | None]) -> bool:
        """Delete stored steps through their jobs' index; False if some need a scan instead."""
        if any(job_id is None for job_id in stored.values()):
            return False
        jobs = sql_strings(sorted({job_id for job_id in stored.values() if job_id}))
        keys = _sql_step_keys(stored)
        if jobs is None or keys is None:
            return False
        self._con.execute(
            f"DELETE FROM steps WHERE job_id IN ({jobs}) AND trace_id || '/' || span_id IN ({keys})"  # noqa: S608
        )
        return True


def upsert_log_ranges(
    con: duckdb.DuckDBPyConnection, ranges: pa.Table, *, large: bool = False
) -> None:
    """Merge ``(job_id, lo, hi)`` rows (one per job) into ``job_log_ranges``; ranges only widen.

    A small table takes one ``ON CONFLICT`` upsert. Its cost grows with the table (77 jobs,
    with the commit: 4 ms at 10k rows, 12 ms at 200k, 38 ms at 1M; one ``UPDATE`` per job
    through the primary key: 57 ms at 1M), so on a large one the stored ranges of these jobs
    are read through the key, widened here, deleted and inserted again (9-11 ms at 1M).
    """
    ids = ranges.column("job_id").to_pylist()
    listed = sql_strings(ids) if large else None
    if listed is None:
        con.register("_log_ranges", ranges)
        try:
            con.execute(
                """INSERT INTO job_log_ranges SELECT job_id, lo, hi FROM _log_ranges
                   ON CONFLICT (job_id) DO UPDATE SET lo = least(lo, excluded.lo),
                                                      hi = greatest(hi, excluded.hi)"""
            )
        finally:
            con.unregister("_log_ranges")
        return
    stored = {
        job_id: (lo, hi)
        for job_id, lo, hi in con.execute(
            f"SELECT job_id, lo, hi FROM job_log_ranges WHERE job_id IN ({listed})"  # noqa: S608
        ).fetchall()
    }
    if stored:
        lows, highs = ranges.column("lo").to_pylist(), ranges.column("hi").to_pylist()
        for i, job_id in enumerate(ids):
            if job_id in stored:
                lows[i] = min(lows[i], stored[job_id][0])
                highs[i] = max(highs[i], stored[job_id][1])
        ranges = pa.table({"job_id": ids, "lo": lows, "hi": highs}, schema=ranges.schema)
        con.execute(f"DELETE FROM job_log_ranges WHERE job_id IN ({sql_strings(stored)})")  # noqa: S608
    con.register("_log_ranges", ranges)
    try:
        con.execute("INSERT INTO job_log_ranges SELECT job_id, lo, hi FROM _log_ranges")
    finally:
        con.unregister("_log_ranges")


K = TypeVar("K", str, tuple[str, str])


class RowCache(Generic[K]):
    """The last rows written for a bounded number of keys, least recently used out first.

    Rows are the merged dicts exactly as upserted; the writer is the only code writing
    these tables, and clears the cache after anything else did (or a rollback).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._rows: OrderedDict[K, dict[str, Any]] = OrderedDict()

    def take(self, keys: list[K]) -> tuple[dict[K, dict[str, Any]], list[K]]:
        """Cached rows for ``keys`` (removed until :meth:`put`) and the keys not cached."""
        found: dict[K, dict[str, Any]] = {}
        missing: list[K] = []
        for key in keys:
            row = self._rows.pop(key, None)
            if row is None:
                missing.append(key)
            else:
                found[key] = row
        return found, missing

    def put(self, rows: dict[K, dict[str, Any]]) -> None:
        """Remember rows just written (newest last)."""
        self._rows.update(rows)
        while len(self._rows) > self._size:
            self._rows.popitem(last=False)

    def discard(self, keys: Iterable[K]) -> None:
        """Forget these keys' rows."""
        for key in keys:
            self._rows.pop(key, None)

    def clear(self) -> None:
        self._rows.clear()
