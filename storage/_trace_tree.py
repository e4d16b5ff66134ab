"""Late linking: the span trees of a few traces, loaded to link what is still unlinked.

A plain client's records often arrive before the spans that explain them (a span is
exported when it ends). When those spans arrive, the linker loads the traces' span trees
once and links orphan child jobs, steps and log records to the nearest job above them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa

from jobtrail.storage._row_access import upsert_log_ranges

Owner = tuple[str, str | None, str | None]  # job_id, step name, step span id
SpanKey = tuple[str, str]  # trace_id, span_id
_MAX_DEPTH = 64  # a parent chain longer than this is a cycle or garbage: stop walking


def nearest_owner(
    job_at: Mapping[SpanKey, str],
    step_at: Mapping[SpanKey, tuple[str | None, str | None]],
    parent: Mapping[SpanKey, str | None],
    trace_id: str,
    span_id: str | None,
) -> Owner | None:
    """Walk up from a span to its nearest job ancestor-or-self (and the step on the way).

    Shared by the file's late linking and the lake's link sweep, which build the three maps
    from different places but answer the same question.
    """
    step: tuple[str | None, str | None] | None = None
    step_span: str | None = None
    for _ in range(_MAX_DEPTH):
        if span_id is None:
            return None
        key = (trace_id, span_id)
        if key in job_at:
            return (job_at[key], step[1] if step else None, step_span)
        if step is None and key in step_at:
            step, step_span = step_at[key], span_id
            if step[0] is not None:
                return (step[0], step[1], step_span)
        span_id = parent.get(key)
    return None


class TraceTree:
    """The span trees of a few traces, loaded to link what is still unlinked in them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, traces: list[str], min_log_id: int) -> None:
        q = "trace_id IN (SELECT unnest(?))"
        self.min_log_id = min_log_id
        self.parent: dict[tuple[str, str], str | None] = {}
        for t, s, p in con.execute(
            f"SELECT trace_id, span_id, parent_span_id FROM spans WHERE {q}",
            [traces],  # noqa: S608
        ).fetchall():
            self.parent[(t, s)] = p
        self.job_at: dict[tuple[str, str], str] = {}
        self.orphan_jobs: list[tuple[str, str, str]] = []  # id, trace, parent span
        for jid, t, s, p, pj in con.execute(
            f"SELECT id, trace_id, span_id, parent_span_id, parent_job_id FROM jobs WHERE {q}",  # noqa: S608
            [traces],
        ).fetchall():
            if s:
                self.job_at[(t, s)] = jid
                self.parent.setdefault((t, s), p)
            if pj is None and p:
                self.orphan_jobs.append((jid, t, p))
        self.step_at: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self.orphan_steps: list[tuple[str, str, str | None]] = []
        for t, s, p, jid, name in con.execute(
            f"SELECT trace_id, span_id, parent_span_id, job_id, name FROM steps WHERE {q}",  # noqa: S608
            [traces],
        ).fetchall():
            self.step_at[(t, s)] = (jid, name)
            self.parent.setdefault((t, s), p)
            if jid is None:
                self.orphan_steps.append((t, s, p))
        self.orphan_logs = con.execute(
            f"SELECT DISTINCT trace_id, span_id FROM logs WHERE {q} "  # noqa: S608
            "AND job_id IS NULL AND span_id IS NOT NULL AND id >= ?",
            [traces, min_log_id],
        ).fetchall()
        self.resolved: dict[tuple[str, str], Owner] = {}
        self.still_pending: set[str] = set()
        self.rows_changed = False  # jobs or steps rows were updated

    def owner_of(self, trace_id: str, span_id: str | None) -> Owner | None:
        """The job (and step) a span belongs to: its nearest job ancestor-or-self."""
        return nearest_owner(self.job_at, self.step_at, self.parent, trace_id, span_id)

    def link(self, con: duckdb.DuckDBPyConnection) -> set[str]:
        changed: set[str] = set()
        for jid, t, p in self.orphan_jobs:
            owner = self.owner_of(t, p)
            if owner is None:
                self.still_pending.add(t)
                continue
            con.execute("UPDATE jobs SET parent_job_id = ? WHERE id = ?", [owner[0], jid])
            self.rows_changed = True
            changed |= {jid, owner[0]}
        step_links = []
        for t, s, step_parent in self.orphan_steps:
            owner = self.owner_of(t, step_parent)
            if owner is None:
                self.still_pending.add(t)
                continue
            step_links.append((t, s, owner[0]))
            self.step_at[(t, s)] = (owner[0], self.step_at[(t, s)][1])
            changed.add(owner[0])
        for t, s, jid in step_links:
            con.execute(
                "UPDATE steps SET job_id = ? WHERE trace_id = ? AND span_id = ?", [jid, t, s]
            )
            self.rows_changed = True
        log_links: dict[str, list[Any]] = {k: [] for k in ("t", "s", "j", "n", "ss")}
        for t, s in self.orphan_logs:
            owner = self.owner_of(t, s)
            if owner is None:
                self.still_pending.add(t)
                continue
            self.resolved[(t, s)] = owner
            for k, v in zip(("t", "s", "j", "n", "ss"), (t, s, *owner), strict=True):
                log_links[k].append(v)
            changed.add(owner[0])
        if log_links["t"]:
            con.register("_log_links", pa.table(log_links))
            con.execute(
                """UPDATE logs SET job_id = l.j, step = l.n, step_span_id = l.ss
                   FROM _log_links l
                   WHERE logs.trace_id = l.t AND logs.span_id = l.s AND logs.job_id IS NULL
                     AND logs.id >= ?""",
                [self.min_log_id],
            )
            ranges = con.execute(
                """SELECT l.j AS job_id, min(logs.id) AS lo, max(logs.id) AS hi
                   FROM logs JOIN _log_links l ON logs.trace_id = l.t AND logs.span_id = l.s
                   WHERE logs.id >= ? GROUP BY l.j""",
                [self.min_log_id],
            ).to_arrow_table()
            con.unregister("_log_links")
            upsert_log_ranges(con, ranges)
        return changed
