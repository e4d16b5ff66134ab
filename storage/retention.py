"""Retention: removing old finished jobs, old records of no job, and log floods.

A pass, run by the server on start and then every ``interval_s`` (and by ``jobtrail prune``):

1. **Age** — job trees (a root job and all its child jobs) whose every job finished
   (``completed``, ``failed``, ``cancelled``, or ``lost``) more than ``max_age_s`` ago go
   with their steps, logs and spans. A job still pending, running or retrying is never
   removed, and neither is its parent.
2. **Records of no job** — logs that belong to no job older than ``system_logs_max_age_s``;
   spans of traces with no job, steps whose job is gone, and metric points older than
   ``max_age_s``.
3. **Per-job log cap** — a job with more than ``max_logs_per_job`` log records keeps its first
   and last halves by id; the rest are dropped and counted in ``jobs.logs_dropped``. This is
   applied at each pass, not at ingest, so between passes a job may hold more; running jobs
   are capped too (their first records stay, later passes drop from the middle again).
4. **Size cap** — after a ``CHECKPOINT``, while the data exceeds ``max_size_bytes``, whole
   finished job trees go, oldest first. Running jobs and records of no job are not touched,
   so if they alone exceed the cap it cannot be met: the pass says so in the log and in
   its report. The cap measures blocks holding data; DuckDB reuses freed blocks, so the
   file stops growing near the cap but seldom shrinks on disk.

Every step runs in bounded chunks through the caller's ``run`` — the server's single
writer — so ingest commits between chunks instead of waiting for the whole pass: at most
``chunk_rows`` records per transaction for records, and for jobs at most ``chunk_jobs``
trees, fewer when their rows outnumber ``chunk_rows`` (jobs with many logs).
Choosing what to remove (the reads) runs through ``read`` when given — the server passes
its read cursors — and is checked again inside each deleting transaction.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import duckdb

from jobtrail.storage._retention_logs import (
    cap_logs,
    over_cap,
    total_rows,
    try_checkpoint,
    used_bytes,
)
from jobtrail.storage._retention_model import (
    Now,
    PruneReport,
    Reader,
    RetentionPolicy,
    RetentionStats,
    Runner,
    naive_utc,
    utc_now,
)
from jobtrail.storage._retention_sql import (
    UNOWNED_TABLES,
    Removed,
    expire_trees,
    expire_unowned,
    finished_roots,
)
from jobtrail.storage.writer import WriterClosed

__all__ = [
    "PruneReport",
    "Removed",
    "RetentionPolicy",
    "RetentionStats",
    "Runner",
    "cursor_reader",
    "direct_runner",
    "plan",
    "prune",
    "run_periodically",
    "utc_now",
]

log = logging.getLogger(__name__)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _cap_chunks(jobs: list[tuple[str, int]], policy: RetentionPolicy) -> Iterator[list[str]]:
    """Jobs to cap together: up to ``chunk_jobs`` whose records number ``4 * chunk_rows`` at
    most (each transaction ranks all the records of its jobs), or one bigger job alone."""
    chunk: list[str] = []
    held = 0
    for job_id, n in jobs:
        if chunk and (held + n > 4 * policy.chunk_rows or len(chunk) >= policy.chunk_jobs):
            yield chunk
            chunk, held = [], 0
        chunk.append(job_id)
        held += n
    if chunk:
        yield chunk


async def _expire(
    run: Runner, roots: Sequence[str], cutoff: datetime | None, policy: RetentionPolicy
) -> Removed:
    """Expire trees in chunks of ``chunk_jobs``, smaller while their rows exceed ``chunk_rows``.

    The next chunk is sized from the rows per tree of the last one, so a run of jobs with
    huge logs is taken a few at a time and ordinary jobs many at a time.
    """
    removed = Removed()
    size = policy.chunk_jobs
    done = 0
    while done < len(roots):
        chunk = roots[done : done + size]
        done += len(chunk)
        part, _ = await run(partial(expire_trees, roots=chunk, cutoff=cutoff))
        removed.add(part)
        per_tree = part.rows / len(chunk)
        size = max(1, min(policy.chunk_jobs, int(policy.chunk_rows / max(per_tree, 1.0))))
    return removed


async def prune(
    run: Runner,
    policy: RetentionPolicy,
    *,
    read: Reader | None = None,
    now: Now = utc_now,
) -> PruneReport:
    """Run one retention pass through ``run`` (``BatchWriter.run`` or :func:`direct_runner`).

    Each chunk is its own transaction, so an interrupted pass leaves a consistent database
    and the next pass continues where it stopped. ``read`` runs the queries that choose
    what to remove (default: ``run``); ``now`` is the clock.
    """
    read = read or run
    started = time.perf_counter()
    at = naive_utc(now())
    report = PruneReport()
    cutoff = at - timedelta(seconds=policy.max_age_s)
    roots = await read(partial(finished_roots, cutoff=cutoff))
    report.expired = await _expire(run, [r for r, _ in roots], cutoff, policy)

    for table in UNOWNED_TABLES:
        table_cutoff = at - timedelta(
            seconds=policy.logs_max_age_s if table == "logs" else policy.max_age_s
        )
        while True:
            n = await run(
                partial(expire_unowned, table=table, cutoff=table_cutoff, limit=policy.chunk_rows)
            )
            setattr(report.unowned, table, getattr(report.unowned, table) + n)
            if n < policy.chunk_rows:
                break

    if policy.max_logs_per_job:
        first, last = policy.keep_first_last
        jobs = await read(partial(over_cap, keep=policy.max_logs_per_job))
        report.capped.jobs = len(jobs)
        for chunk in _cap_chunks(jobs, policy):
            while True:
                n = await run(
                    partial(
                        cap_logs, job_ids=chunk, first=first, last=last, limit=policy.chunk_rows
                    )
                )
                report.capped.logs += n
                if n < policy.chunk_rows:
                    break

    checkpointed = False
    if report.total.rows or policy.max_size_bytes:
        checkpointed = await _checkpoint(run)
    if policy.max_size_bytes and checkpointed:
        await _size_cap(run, read, policy, policy.max_size_bytes, report)
    report.duration_s = time.perf_counter() - started
    if report.total.rows:
        log.info("retention removed %s in %.1f s", report.summary(), report.duration_s)
    else:
        log.debug("retention: nothing to remove")
    return report


async def _checkpoint(run: Runner, attempts: int = 20, pause_s: float = 0.05) -> bool:
    """``CHECKPOINT`` as soon as no transaction runs; False if none came in ~10 s.

    A plain ``CHECKPOINT`` fails while a transaction older than a committed UPDATE is still
    open (an API read in progress); ``FORCE`` would wait on the writer thread, holding up
    ingest, and block new reads. So try, let the writer go on, try again. Without it the
    space comes back at DuckDB's next automatic checkpoint.
    """
    for attempt in range(1, attempts + 1):
        if await run(try_checkpoint, transaction=False):
            return True
        await asyncio.sleep(pause_s * attempt)
    log.info("retention: no moment without running transactions for a CHECKPOINT")
    return False


async def _size_cap(
    run: Runner, read: Reader, policy: RetentionPolicy, cap: int, report: PruneReport
) -> None:
    """Remove finished trees, oldest first, until the data fits ``cap`` (re-measured).

    Stops early, the cap unjudged, when a re-measure cannot be had (no checkpoint).
    """
    used = await run(used_bytes)
    report.used_bytes_before = used
    if used is None:
        return
    if used > cap:
        roots = [r for r, _ in await read(partial(finished_roots, cutoff=None))]
        done = 0
        while used > cap and done < len(roots):
            # Remove the over-cap share of what is left, re-measure, repeat: the share
            # of bytes a job holds is not known in advance.
            share = (used - cap) / used
            n = max(policy.chunk_jobs, math.ceil(share * (len(roots) - done)))
            report.oversize.add(await _expire(run, roots[done : done + n], None, policy))
            done += n
            if not await _checkpoint(run):
                report.used_bytes_after = None
                return
            used = await run(used_bytes) or 0
            log.debug("retention: %d bytes of data after removing %d job trees", used, done)
        if used > cap:
            log.warning(
                "retention: the database holds %d bytes of data, over max_size %d bytes, with "
                "no finished job left to remove: the rest is running jobs, records of no job, "
                "and row groups DuckDB keeps while some of their rows live",
                used,
                cap,
            )
    report.used_bytes_after = used
    report.size_cap_met = used <= cap


def plan(
    con: duckdb.DuckDBPyConnection, policy: RetentionPolicy, *, now: Now = utc_now
) -> PruneReport:
    """What :func:`prune` would remove now, counted without changing anything.

    Works on a read-only connection, in one snapshot. Counts match what a pass would remove
    by age and by the log cap; the size cap's share is an estimate (``oversize.jobs`` only:
    which jobs go is known only by measuring after each chunk), and ``estimated_bytes``
    spreads the space in use evenly over rows.
    """
    started = time.perf_counter()
    at = naive_utc(now())
    report = PruneReport(dry_run=True)
    con.execute("BEGIN TRANSACTION")  # one snapshot for every count
    try:
        cutoff = at - timedelta(seconds=policy.max_age_s)
        roots = [r for r, _ in finished_roots(con, cutoff)]
        report.expired, members = expire_trees(con, roots, cutoff, delete=False)
        for table in UNOWNED_TABLES:
            seconds = policy.logs_max_age_s if table == "logs" else policy.max_age_s
            n = expire_unowned(
                con, table, at - timedelta(seconds=seconds), limit=None, delete=False
            )
            setattr(report.unowned, table, n)
        if policy.max_logs_per_job:
            jobs = over_cap(con, policy.max_logs_per_job, exclude=members)
            dropped = sum(n - policy.max_logs_per_job for _, n in jobs)
            report.capped = Removed(jobs=len(jobs), logs=dropped)
        used = used_bytes(con)
        rows = total_rows(con)
        report.used_bytes_before = used
        if used is not None and rows:
            report.estimated_bytes = int(used * report.total.rows / rows)
            left = used - report.estimated_bytes
            cap = policy.max_size_bytes
            if cap and left > cap:
                # Which trees would go is only known by measuring after each chunk: estimate
                # the count as the over-cap share of the finished trees left.
                remaining = len(finished_roots(con, None)) - len(roots)
                report.oversize.jobs = min(remaining, math.ceil((left - cap) / left * remaining))
                if remaining:
                    report.estimated_bytes = used - cap
                else:
                    report.size_cap_met = False
            elif cap:
                report.size_cap_met = True
    finally:
        con.execute("ROLLBACK")
    report.duration_s = time.perf_counter() - started
    return report


def direct_runner(con: duckdb.DuckDBPyConnection) -> Runner:
    """A :class:`Runner` on a connection of its own (``jobtrail prune``, tests)."""

    async def run(
        fn: Callable[[duckdb.DuckDBPyConnection], Any], *, transaction: bool = True
    ) -> Any:
        if not transaction:
            return fn(con)
        con.execute("BEGIN TRANSACTION")
        try:
            result = fn(con)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return result

    return run


def cursor_reader(cursor: Callable[[], duckdb.DuckDBPyConnection]) -> Reader:
    """A reader that runs each query on a fresh read cursor in a thread (off the writer)."""

    def on_cursor(fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        cur = cursor()
        try:
            return fn(cur)
        finally:
            cur.close()

    async def read(fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        return await asyncio.to_thread(on_cursor, fn)

    return read


async def run_periodically(
    run: Runner,
    policy: RetentionPolicy,
    *,
    read: Reader | None = None,
    stats: RetentionStats | None = None,
    now: Now = utc_now,
) -> None:
    """A pass now, then one every ``policy.interval_s``, until cancelled or the writer closes.

    A failing pass is logged and counted; the next one runs on schedule.
    """
    while True:
        try:
            report = await prune(run, policy, read=read, now=now)
        except WriterClosed:
            return
        except Exception:
            log.exception("retention pass failed")
            if stats is not None:
                stats.failures += 1
        else:
            if stats is not None:
                stats.record(report)
        await asyncio.sleep(policy.interval_s)
