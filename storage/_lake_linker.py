"""Linking on a lake: facts at ingest, and a sweep that links across collectors.

At ingest a collector links what its own recent spans explain (the owners cache of
:class:`~jobtrail.storage.linker.Linker`) and appends job and step updates as facts. What it
cannot link — a log record whose job span went to another collector, or has not been sent
yet — is left for :class:`LinkSweep`, which every collector runs every second or so: it
looks at the traces that received anything since its last run, walks their span trees as
the whole lake has them, and appends the links it finds (``log_links``, or a job/step fact
naming the parent). Two collectors finding the same link append the same fact twice, which
the read views fold into one; nothing is ever updated, so nothing conflicts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import fields
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from jobtrail.storage._lake_feed import Feed
from jobtrail.storage._sql import utcnow
from jobtrail.storage._trace_tree import nearest_owner
from jobtrail.storage.linker import Linker, Owner
from jobtrail.storage.model import JobUpdate, StepUpdate

_TS = pa.timestamp("us")
_EPOCH = datetime(1970, 1, 1)
_TRACES_PER_SWEEP = 2000
_MAX_PENDING_TRACES = 20_000
_FIRST_SWEEP_WINDOW = "INTERVAL 1 DAY"

#: ``queued_at`` goes to ``job_queue``, not to a column of ``job_facts`` (see _lake_schema).
_JOB_SKIP = ("final", "seen_at", "attributes", "queued_at")
_STEP_SKIP = ("final", "seen_at", "attributes")
_TYPES = {
    "progress": pa.float64(), "duration_ms": pa.float64(), "total_steps": pa.int32(),
    "attempt": pa.int32(), "seq": pa.int32(), "started_at": _TS, "ended_at": _TS,
}  # fmt: skip
_JOB_FIELDS = [f.name for f in fields(JobUpdate) if f.name not in _JOB_SKIP]
_STEP_FIELDS = [f.name for f in fields(StepUpdate) if f.name not in _STEP_SKIP]


def _fact_schema(names: list[str]) -> pa.Schema:
    head = [("tier", pa.int8()), ("ranked_at", _TS), ("seen_at", _TS)]
    body = [(n, _TYPES.get(n, pa.string())) for n in names]
    return pa.schema([*head, *body, ("attributes", pa.string()), ("received_at", _TS)])


JOB_FACT_SCHEMA = _fact_schema(_JOB_FIELDS)
_QUEUE_SCHEMA = pa.schema([("id", pa.string()), ("queued_at", _TS)])
STEP_FACT_SCHEMA = _fact_schema(_STEP_FIELDS)


def _fact(update: JobUpdate | StepUpdate, names: list[str], now: datetime) -> dict[str, Any]:
    row = {n: getattr(update, n) for n in names}
    row.update(
        tier=1 if update.final else 0,
        ranked_at=update.seen_at,
        seen_at=update.seen_at,
        attributes=orjson.dumps(update.attributes, default=str).decode(),
        received_at=now,
    )
    return row


def append(
    con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], schema: pa.Schema
) -> None:
    """Append rows (dicts keyed by column) to a lake table."""
    if not rows:
        return
    con.register("_lake_rows", pa.Table.from_pylist(rows, schema=schema))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _lake_rows")  # noqa: S608
    finally:
        con.unregister("_lake_rows")


class LakeLinker(Linker):
    """The writer's linker on a lake: owners from this collector's spans, facts appended."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lake: str) -> None:
        super().__init__(con)  # the owners cache; rows and ids are not kept on a lake
        self._lake = lake

    def _max_log_id(self) -> int:
        return 0  # log ids are row ids, assigned by the lake at commit

    def load_pending(self) -> None:
        """Nothing to reload: :class:`LinkSweep` finds what is unlinked from the lake."""

    def resolve_pending(self, *_: Any) -> set[str]:
        """Late links come from :class:`LinkSweep` on a lake."""
        return set()

    def apply(self, jobs: list[JobUpdate], steps: list[StepUpdate]) -> set[str]:
        """Append job and step facts, naming parents this collector already knows."""
        now = utcnow()
        for update in jobs:
            if update.trace_id and update.span_id:
                self._remember(update.trace_id, update.span_id, (update.id, None, None))
        job_rows = []
        for update in jobs:
            if update.parent_job_id is None and update.trace_id and update.parent_span_id:
                owner = self._owners.get((update.trace_id, update.parent_span_id))
                if owner is not None:
                    update.parent_job_id = owner[0]
            job_rows.append(_fact(update, _JOB_FIELDS, now))
        step_rows = []
        touched = {u.id for u in jobs}
        for step in steps:
            if step.job_id is None and step.parent_span_id:
                owner = self._owners.get((step.trace_id, step.parent_span_id))
                if owner is not None:
                    step.job_id = owner[0]
            if step.job_id is not None:
                touched.add(step.job_id)
                self._remember(step.trace_id, step.span_id, (step.job_id, step.name, step.span_id))
            step_rows.append(_fact(step, _STEP_FIELDS, now))
        queued = [{"id": u.id, "queued_at": u.queued_at} for u in jobs if u.queued_at]
        append(self._con, f"{self._lake}.job_facts", job_rows, JOB_FACT_SCHEMA)
        append(self._con, f"{self._lake}.job_queue", queued, _QUEUE_SCHEMA)
        append(self._con, f"{self._lake}.step_facts", step_rows, STEP_FACT_SCHEMA)
        return touched

    def link_records(self, logs: pa.Table) -> pa.Table:
        """Fill job and step of records whose span this collector knows (no ids on a lake)."""
        job_col = logs.column("job_id")
        unlinked = pc.and_(pc.is_null(job_col), pc.is_valid(logs.column("span_id")))
        if not pc.any(unlinked).as_py():
            return logs
        job_ids = job_col.to_pylist()
        steps = logs.column("step").to_pylist()
        step_spans = logs.column("step_span_id").to_pylist()
        traces = logs.column("trace_id").to_pylist()
        spans = logs.column("span_id").to_pylist()
        for i in pc.indices_nonzero(unlinked).to_pylist():
            owner = self._owners.get((traces[i], spans[i])) if traces[i] else None
            if owner is not None:
                job_ids[i], steps[i], step_spans[i] = owner
        for name, values in (("job_id", job_ids), ("step", steps), ("step_span_id", step_spans)):
            i = logs.schema.get_field_index(name)
            logs = logs.set_column(i, name, pa.array(values, logs.schema.field(name).type))
        return logs


class LinkSweep:
    """Links what is unlinked, across all collectors, looking only at what changed.

    Call it on the writer thread inside a transaction (``writer.run(sweep)``); it returns
    the ids of the jobs it linked records to. Like the embedded linker it keeps the traces
    that hold unlinked records (``pending``): a trace is walked when it receives an
    unlinked record, or when a pending trace receives a span or fact — from any collector
    (:class:`~jobtrail.storage._lake_feed.Feed` reads what anyone committed since the last
    run). When every record was linked at ingest (agents name their job), a run reads only
    the rows that are new, and nothing when nothing is.
    """

    def __init__(self, lake: str) -> None:
        self.lake = lake
        self.feed = Feed(lake, ("spans", "job_facts", "step_facts", "log_records"))
        self.pending: OrderedDict[str, None] = OrderedDict()

    def __call__(self, con: duckdb.DuckDBPyConnection) -> set[str]:
        lake = self.lake
        if not self.feed.started:  # after a start: what a day of records left unlinked
            self.feed.start(con)
            window = f"received_at > now()::TIMESTAMP - {_FIRST_SWEEP_WINDOW}"
            new = {t: f"(SELECT * FROM {lake}.{t} WHERE {window})" for t in self.feed.tables}
        else:
            sources = self.feed.sources(con)
            if sources is None:
                return set()
            new = sources
        unlinked = con.execute(
            f"""SELECT DISTINCT trace_id FROM (
                    SELECT trace_id FROM {new["log_records"]}
                        WHERE job_id IS NULL AND span_id IS NOT NULL
                    UNION ALL SELECT trace_id FROM {new["step_facts"]} WHERE job_id IS NULL
                    UNION ALL SELECT trace_id FROM {new["job_facts"]}
                        WHERE parent_job_id IS NULL AND parent_span_id IS NOT NULL)
                WHERE trace_id IS NOT NULL"""  # noqa: S608 - constants and integers only
        ).fetchall()
        candidates = dict.fromkeys(row[0] for row in unlinked)
        if self.pending:
            con.register("_pending", pa.table({"trace_id": list(self.pending)}))
            try:
                touched = con.execute(
                    f"""SELECT DISTINCT trace_id FROM (
                            SELECT trace_id FROM {new["spans"]}
                            UNION ALL SELECT trace_id FROM {new["job_facts"]}
                            UNION ALL SELECT trace_id FROM {new["step_facts"]})
                        WHERE trace_id IN (SELECT trace_id FROM _pending)"""  # noqa: S608
                ).fetchall()
            finally:
                con.unregister("_pending")
            candidates.update(dict.fromkeys(row[0] for row in touched))
        traces = list(candidates)
        linked: set[str] = set()
        for start in range(0, len(traces), _TRACES_PER_SWEEP):
            chunk = traces[start : start + _TRACES_PER_SWEEP]
            tree = _LakeTree(con, lake, chunk)
            linked |= tree.link(con)
            for trace_id in chunk:
                self.pending.pop(trace_id, None)
                if trace_id in tree.still_pending:
                    self.pending[trace_id] = None
        while len(self.pending) > _MAX_PENDING_TRACES:
            self.pending.popitem(last=False)
        self.feed.advance()
        return linked


class _LakeTree:
    """The span trees of some traces as the whole lake has them, and what is unlinked."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lake: str, traces: list[str]) -> None:
        con.register("_sweep_traces", pa.table({"trace_id": pa.array(traces, pa.string())}))
        q = "trace_id IN (SELECT trace_id FROM _sweep_traces)"
        try:
            self.parent: dict[tuple[str, str], str | None] = {
                (t, s): p
                for t, s, p in con.execute(
                    f"SELECT trace_id, span_id, parent_span_id FROM {lake}.spans WHERE {q}"  # noqa: S608
                ).fetchall()
            }
            self.job_at: dict[tuple[str, str], str] = {}
            for jid, t, s, p in con.execute(
                f"SELECT DISTINCT id, trace_id, span_id, parent_span_id FROM {lake}.job_facts "  # noqa: S608
                f"WHERE {q} AND span_id IS NOT NULL"
            ).fetchall():
                self.job_at[(t, s)] = jid
                self.parent.setdefault((t, s), p)
            self.orphan_jobs: list[tuple[str, str, str]] = con.execute(
                f"""SELECT id, any_value(trace_id), any_value(parent_span_id) FROM {lake}.job_facts
                    WHERE id IN (SELECT id FROM {lake}.job_facts WHERE {q}) GROUP BY id
                    HAVING count(parent_job_id) = 0 AND count(parent_span_id) > 0
                       AND count(trace_id) > 0"""  # noqa: S608
            ).fetchall()
            self.step_at: dict[tuple[str, str], tuple[str | None, str | None]] = {}
            self.orphan_steps: list[tuple[str, str, str | None]] = []
            for t, s, p, jid, name in con.execute(
                f"""SELECT trace_id, span_id, any_value(parent_span_id), any_value(job_id),
                           any_value(name) FROM {lake}.step_facts WHERE {q} GROUP BY ALL"""  # noqa: S608
            ).fetchall():
                self.step_at[(t, s)] = (jid, name)
                self.parent.setdefault((t, s), p)
                if jid is None:
                    self.orphan_steps.append((t, s, p))
            self.orphan_logs = con.execute(
                f"""SELECT DISTINCT trace_id, span_id FROM {lake}.log_records l
                    WHERE {q} AND job_id IS NULL AND span_id IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM {lake}.log_links k
                                      WHERE k.trace_id = l.trace_id AND k.span_id = l.span_id)"""  # noqa: S608
            ).fetchall()
        finally:
            con.unregister("_sweep_traces")
        self.lake = lake
        self.still_pending: set[str] = set()

    def owner_of(self, trace_id: str, span_id: str | None) -> Owner | None:
        """The job (and step) a span belongs to: its nearest job ancestor-or-self."""
        return nearest_owner(self.job_at, self.step_at, self.parent, trace_id, span_id)

    def link(self, con: duckdb.DuckDBPyConnection) -> set[str]:
        """Append the links found; return the ids of the jobs they point to."""
        now, changed = utcnow(), set()
        jobs, steps, logs = [], [], []
        for jid, t, parent in self.orphan_jobs:
            owner = self.owner_of(t, parent)
            if owner is None:
                self.still_pending.add(t)
            elif owner[0] != jid:
                jobs.append({"id": jid, "tier": 0, "ranked_at": _EPOCH, "parent_job_id": owner[0],
                             "received_at": now})  # fmt: skip
                changed |= {jid, owner[0]}
        for t, s, p in self.orphan_steps:
            owner = self.owner_of(t, p)
            if owner is None:
                self.still_pending.add(t)
            else:
                steps.append({"trace_id": t, "span_id": s, "tier": 0, "ranked_at": _EPOCH,
                              "job_id": owner[0], "received_at": now})  # fmt: skip
                self.step_at[(t, s)] = (owner[0], self.step_at[(t, s)][1])
                changed.add(owner[0])
        for t, s in self.orphan_logs:
            owner = self.owner_of(t, s)
            if owner is None:
                self.still_pending.add(t)
            else:
                logs.append({"trace_id": t, "span_id": s, "job_id": owner[0], "step": owner[1],
                             "step_span_id": owner[2], "linked_at": now})  # fmt: skip
                changed.add(owner[0])
        append(con, f"{self.lake}.job_facts", jobs, JOB_FACT_SCHEMA)
        append(con, f"{self.lake}.step_facts", steps, STEP_FACT_SCHEMA)
        append(con, f"{self.lake}.log_links", logs, _LINK_SCHEMA)
        return changed


_LINK_SCHEMA = pa.schema(
    [("trace_id", pa.string()), ("span_id", pa.string()), ("job_id", pa.string()),
     ("step", pa.string()), ("step_span_id", pa.string()), ("linked_at", _TS)]
)  # fmt: skip
