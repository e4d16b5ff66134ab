"""Linking spans and logs to their jobs and steps, in any arrival order.

Agent records name their job (``job.id`` on steps and logs), so they link at once. Records
from other clients link through span ancestry: a log belongs to the job or step whose span
it names, a step to the job above it, a child job to the job above it through plain spans.
Children usually arrive before their parents (a span is exported when it ends), so what
cannot be linked yet is remembered per trace and linked when the missing span arrives.

All methods run on the writer thread inside the writer's transaction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from jobtrail.storage._row_access import RowAccess, RowCache, upsert_log_ranges
from jobtrail.storage._trace_tree import Owner, TraceTree
from jobtrail.storage.derive import (
    JOB_COLUMNS,
    STEP_COLUMNS,
    merge_job,
    merge_step,
    new_job_row,
    new_step_row,
)
from jobtrail.storage.model import JobUpdate, StepUpdate

log = logging.getLogger(__name__)

_MAX_OWNERS = 100_000  # ~50 MiB; a miss falls back to the database
#: Rows of recently updated jobs and steps kept merged in memory: a running job's next
#: records usually arrive within seconds, and reading its row back costs a lookup per commit.
_MAX_JOB_ROWS = 5_000
_MAX_STEP_ROWS = 20_000
_MAX_PENDING_TRACES = 20_000
_UTC_Z = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_NO_LOGS = 1 << 62


_TS = pa.timestamp("us")
JOB_SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("trace_id", pa.string()), ("span_id", pa.string()),
        ("parent_job_id", pa.string()), ("parent_span_id", pa.string()), ("type", pa.string()),
        ("name", pa.string()), ("operation", pa.string()), ("owner", pa.string()),
        ("service", pa.string()), ("status", pa.string()), ("progress", pa.float64()),
        ("current_step", pa.string()), ("total_steps", pa.int32()), ("attempt", pa.int32()),
        ("started_at", _TS), ("ended_at", _TS), ("duration_ms", pa.float64()),
        ("error", pa.string()), ("error_type", pa.string()), ("stack_trace", pa.string()),
        ("result", pa.string()), ("cancel_reason", pa.string()), ("attributes", pa.string()),
        ("last_seen", _TS), ("span_received", pa.bool_()), ("attempts", pa.string()),
    ]
)  # fmt: skip
#: A jobs row is written with ``logs_dropped`` as read, although no record sets it:
#: retention's per-job log cap counts in it, also for running jobs, and a row written without
#: it would start again from the column's default. ``queued_at`` is not in
#: :data:`JOB_COLUMNS` because a lake keeps it apart from the folded job facts.
_JOB_WRITTEN = (*JOB_COLUMNS, "logs_dropped", "queued_at")
_JOB_WRITTEN_SCHEMA = JOB_SCHEMA.append(pa.field("logs_dropped", pa.int64())).append(
    pa.field("queued_at", _TS)
)
STEP_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()), ("span_id", pa.string()), ("parent_span_id", pa.string()),
        ("job_id", pa.string()), ("seq", pa.int32()), ("name", pa.string()),
        ("status", pa.string()), ("started_at", _TS), ("ended_at", _TS),
        ("duration_ms", pa.float64()), ("error", pa.string()), ("attributes", pa.string()),
        ("span_received", pa.bool_()),
    ]
)  # fmt: skip


class Linker:
    """Keeps ``jobs``/``steps`` current and links log records to them."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._owners: OrderedDict[tuple[str, str], Owner] = OrderedDict()
        self._pending: OrderedDict[str, int] = OrderedDict()
        self._next_log_id = self._max_log_id() + 1
        self._access = RowAccess(con)
        self._job_rows: RowCache[str] = RowCache(_MAX_JOB_ROWS)
        self._step_rows: RowCache[tuple[str, str]] = RowCache(_MAX_STEP_ROWS)

    # --- state kept across transactions -----------------------------------------------

    def _max_log_id(self) -> int:
        row = self._con.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()
        return int(row[0]) if row else 0

    def load_pending(self) -> None:
        """After a restart, remember recent traces that still have unlinked records."""
        rows = self._con.execute(
            """
            SELECT trace_id, min(id) FROM logs
            WHERE job_id IS NULL AND trace_id IS NOT NULL
              AND received_at > now()::TIMESTAMP - INTERVAL 1 DAY
            GROUP BY 1 LIMIT ?""",
            [_MAX_PENDING_TRACES],
        ).fetchall()
        rows += self._con.execute(
            """
            SELECT trace_id, ? FROM steps WHERE job_id IS NULL
            UNION ALL
            SELECT trace_id, ? FROM jobs WHERE parent_job_id IS NULL AND parent_span_id IS NOT NULL
              AND last_seen > now()::TIMESTAMP - INTERVAL 1 DAY
            LIMIT ?""",
            [_NO_LOGS, _NO_LOGS, _MAX_PENDING_TRACES],
        ).fetchall()
        for trace_id, min_id in rows:
            self._mark_pending(trace_id, int(min_id))

    def commit(self) -> None:
        """The transaction committed: nothing to undo."""
        self._access.committed()

    def rollback(self) -> None:
        """The transaction rolled back: log ids handed out were not used, rows not written."""
        self._next_log_id = self._max_log_id() + 1
        self.forget_rows()
        self._access.be_careful()

    def forget_rows(self) -> None:
        """Drop the cached rows; call after anything else wrote ``jobs`` or ``steps``."""
        self._job_rows.clear()
        self._step_rows.clear()

    def forget_jobs(self, ids: Iterable[str]) -> None:
        """Drop the cached rows of these jobs (something else changed just them)."""
        self._job_rows.discard(ids)

    def _remember(self, trace_id: str, span_id: str, owner: Owner) -> None:
        key = (trace_id, span_id)
        self._owners[key] = owner
        self._owners.move_to_end(key)
        if len(self._owners) > _MAX_OWNERS:
            self._owners.popitem(last=False)

    def _mark_pending(self, trace_id: str, min_log_id: int = _NO_LOGS) -> None:
        current = self._pending.get(trace_id)
        self._pending[trace_id] = min_log_id if current is None else min(current, min_log_id)
        if len(self._pending) > _MAX_PENDING_TRACES:
            self._pending.popitem(last=False)

    # --- jobs and steps ------------------------------------------------------------------

    def apply(self, jobs: list[JobUpdate], steps: list[StepUpdate]) -> set[str]:
        """Merge job and step updates into their rows; return the ids of jobs touched."""
        touched: set[str] = set()
        if jobs:
            touched |= self._apply_jobs(jobs)
        if steps:
            touched |= self._apply_steps(steps)
        return touched

    def _apply_jobs(self, updates: list[JobUpdate]) -> set[str]:
        ids = list(dict.fromkeys(u.id for u in updates))
        rows, missing = self._job_rows.take(ids)
        if missing:
            for row in self._access.jobs(missing).values():
                row["attempts"] = _load_attempts(row["attempts"])
                rows[row["id"]] = row
        stored: dict[Any, str | None] = {job_id: job_id for job_id in rows}
        for update in updates:
            if update.trace_id and update.span_id:
                self._remember(update.trace_id, update.span_id, (update.id, None, None))
        for update in updates:
            if update.parent_job_id is None and update.trace_id and update.parent_span_id:
                owner = self._owners.get((update.trace_id, update.parent_span_id))
                if owner is not None:
                    update.parent_job_id = owner[0]
            row = rows.get(update.id) or {
                **new_job_row(update.id),
                "logs_dropped": 0,
                "queued_at": None,
            }
            rows[update.id] = merge_job(row, update)
            if row["parent_job_id"] is None and row["parent_span_id"] and row["trace_id"]:
                self._mark_pending(row["trace_id"])
        self._upsert("jobs", _JOB_WRITTEN, _JOB_WRITTEN_SCHEMA, rows.values(), stored)
        self._job_rows.put(rows)
        return set(ids)

    def _apply_steps(self, updates: list[StepUpdate]) -> set[str]:
        keys = list(dict.fromkeys((u.trace_id, u.span_id) for u in updates))
        for update in updates:
            if update.job_id is None and update.parent_span_id:
                owner = self._owners.get((update.trace_id, update.parent_span_id))
                if owner is not None:
                    update.job_id = owner[0]
        rows, missing = self._step_rows.take(keys)
        if missing:
            job_of = {(u.trace_id, u.span_id): u.job_id for u in updates}
            rows.update(self._access.steps(missing, job_of))
        stored: dict[Any, str | None] = {key: row["job_id"] for key, row in rows.items()}
        for update in updates:
            key = (update.trace_id, update.span_id)
            row = merge_step(rows.get(key) or new_step_row(*key), update)
            rows[key] = row
            if row["job_id"] is not None:
                self._remember(
                    update.trace_id, update.span_id, (row["job_id"], row["name"], update.span_id)
                )
            else:
                self._mark_pending(update.trace_id)
        self._upsert("steps", STEP_COLUMNS, STEP_SCHEMA, rows.values(), stored)
        self._step_rows.put(rows)
        return {r["job_id"] for r in rows.values() if r["job_id"]}

    def _upsert(
        self,
        table: str,
        columns: tuple[str, ...],
        schema: pa.Schema,
        rows: Iterable[dict[str, Any]],
        stored: dict[Any, str | None],
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        # Column by column: half the time of ``Table.from_pylist`` over per-row dicts.
        data = {c: [row.get(c) for row in rows] for c in columns}
        data["attributes"] = [orjson.dumps(r["attributes"], default=str).decode() for r in rows]
        if "attempts" in data:
            data["attempts"] = [
                orjson.dumps(r["attempts"] or [], option=_UTC_Z).decode() for r in rows
            ]
        self._access.write(table, pa.table(data, schema=schema), stored)

    # --- logs ------------------------------------------------------------------------------

    def link_logs(self, logs: pa.Table) -> tuple[pa.Table, int]:
        """Assign log ids and link records that did not name their job; return (table, first id)."""
        n = logs.num_rows
        first = self._next_log_id
        self._next_log_id += n
        ids = pa.array(range(first, first + n), pa.int64())
        job_col = logs.column("job_id")
        unlinked = pc.and_(pc.is_null(job_col), pc.is_valid(logs.column("trace_id")))
        if pc.any(unlinked).as_py():
            idx = pc.indices_nonzero(unlinked).to_pylist()
            job_ids = job_col.to_pylist()
            step_names = logs.column("step").to_pylist()
            step_spans = logs.column("step_span_id").to_pylist()
            traces = logs.column("trace_id").to_pylist()
            span_ids = logs.column("span_id").to_pylist()
            for i in idx:
                owner = self._owners.get((traces[i], span_ids[i])) if span_ids[i] else None
                if owner is None:
                    self._mark_pending(traces[i], first + i)
                    continue
                job_ids[i], step_names[i], step_spans[i] = owner
            logs = _set_columns(logs, job_id=job_ids, step=step_names, step_span_id=step_spans)
        logs = logs.append_column("id", ids)
        self._record_log_ranges(logs)
        return logs, first

    def _record_log_ranges(self, logs: pa.Table) -> None:
        """Widen each job's ``job_log_ranges`` row to cover the ids of its new records.

        Log ids grow with arrival, so one job's records sit in a narrow id range; a query
        for them bounded by that range reads a few row groups instead of the whole table.
        """
        linked = logs.select(["job_id", "id"]).filter(pc.is_valid(logs.column("job_id")))
        if linked.num_rows == 0:
            return
        ranges = linked.group_by("job_id").aggregate([("id", "min"), ("id", "max")])
        upsert_log_ranges(
            self._con,
            ranges.rename_columns(["job_id", "lo", "hi"]),
            large=self._access.is_large("job_log_ranges"),
        )

    # --- late linking ----------------------------------------------------------------------

    def resolve_pending(
        self, spans: pa.Table | None, jobs: list[JobUpdate], steps: list[StepUpdate]
    ) -> set[str]:
        """Link what waited for spans that arrived in this transaction; return job ids changed."""
        if not self._pending:
            return set()
        touched: set[str] = {u.trace_id for u in jobs if u.trace_id}
        touched |= {u.trace_id for u in steps}
        if spans is not None:
            touched |= set(pc.unique(spans.column("trace_id")).to_pylist())
        candidates = [t for t in touched if t in self._pending]
        if not candidates:
            return set()
        min_log_id = min(self._pending[t] for t in candidates)
        tree = TraceTree(self._con, candidates, min_log_id)
        changed = tree.link(self._con)
        if tree.rows_changed:
            self.forget_rows()
        for trace_id in candidates:
            if trace_id in tree.still_pending:
                continue
            self._pending.pop(trace_id, None)
        for (trace_id, span_id), owner in tree.resolved.items():
            self._remember(trace_id, span_id, owner)
        return changed


def _load_attempts(text: str | None) -> list[dict[str, Any]]:
    """Attempts as stored (JSON, times as ISO strings) back to rows with datetimes."""
    attempts: list[dict[str, Any]] = orjson.loads(text) if text else []
    for entry in attempts:
        for key in ("started_at", "ended_at"):
            if entry.get(key):
                entry[key] = datetime.fromisoformat(entry[key])
    return attempts


def _set_columns(table: pa.Table, **columns: list[Any]) -> pa.Table:
    for name, values in columns.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pa.array(values, table.schema.field(name).type))
    return table
