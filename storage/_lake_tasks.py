"""What a collector runs on a lake besides its writer, each in a bounded periodic loop.

* **Links** (:class:`~jobtrail.storage._lake_linker.LinkSweep`, every ``link_interval_s``):
  records whose spans reached another collector get linked to their jobs.
* **Live events** (:class:`LakeWatch`, every ``watch_interval_s``): the live streams of the
  embedded file are driven by the writer's commits; on a lake the other collectors commit
  too, so each collector polls the lake for new log ids and changed jobs and hands them to
  the broker as if it had committed them. A subscriber of any collector sees every
  collector's records, at most one poll interval later.
* **Lost jobs** (every ``lost_after_s / 4``, at most 15 s): "lost" is a fact appended for
  jobs silent for too long, so a later heartbeat or span still wins.
* **Folding** (every ``fold_interval_s``, and once right after start;
  :mod:`jobtrail.storage._lake_fold`): the folded rows of jobs and steps are stored, so
  reads fold only the facts that arrived since; every collector points its views at the
  newest pass it sees (its own, or another collector's through :class:`LakeWatch`).
* **Maintenance** (:mod:`jobtrail.storage._lake_maintenance`): woken every
  ``compact_interval_s`` or retention ``interval_s``, whichever is shorter, it runs what
  :class:`UpkeepSchedule` says is due (retention, compaction, or both).

Each loop survives errors (the catalog may be down for a while) and stops when cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import duckdb

from jobtrail.storage._lake_feed import Feed, current_snapshot
from jobtrail.storage._lake_fold import fold_settled
from jobtrail.storage._lake_linker import JOB_FACT_SCHEMA, LinkSweep, append
from jobtrail.storage._lake_maintenance import LakeRetention, maintain
from jobtrail.storage._lake_views import create_fold_views, fold_marks
from jobtrail.storage._lake_writer import LakeWriter
from jobtrail.storage._sql import utcnow
from jobtrail.storage.lake import LakeDatabase
from jobtrail.storage.writer import CommitInfo, WriterClosed

log = logging.getLogger(__name__)

_REQUESTS_KEPT = "INTERVAL 1 DAY"
_FORGET_EVERY_S = 3600.0


#: How often a collector stores the folds of jobs and steps (``0`` turns it off; the
#: benchmark's "before" run); ``JOBTRAIL_LAKE_FOLD_INTERVAL_S`` overrides it.
_DEFAULT_FOLD_INTERVAL_S = 30.0


def resolve_fold_interval(value: float | None = None) -> float:
    """``value``, else ``JOBTRAIL_LAKE_FOLD_INTERVAL_S``, else the default (30 s).

    Raises:
        ValueError: The value is negative or not a number.
    """
    if value is None:
        raw = os.environ.get("JOBTRAIL_LAKE_FOLD_INTERVAL_S")
        value = float(raw) if raw else _DEFAULT_FOLD_INTERVAL_S
    if not value >= 0:
        raise ValueError(f"lake fold interval: must be >= 0 seconds, got {value!r}")
    return value


#: Jobs whose facts all arrived before this window are not looked at again for "lost".
_LOST_WINDOW = "INTERVAL 2 DAY"


def silent_jobs(
    cur: duckdb.DuckDBPyConnection, lake: str, timeout_s: float, *, now: datetime | None = None
) -> list[tuple[Any, ...]]:
    """Running jobs with no sign of life for ``timeout_s``: (id, status, last_seen, attempt).

    Only jobs with a fact received recently are folded (older ones were judged when they went
    silent), so the cost follows recent activity rather than the lake's size.
    """
    cutoff = (now or utcnow()) - timedelta(seconds=timeout_s)
    return cur.execute(
        f"""SELECT id, status, last_seen, attempt FROM jobs
            WHERE id IN (SELECT id FROM {lake}.job_facts
                         WHERE received_at > now()::TIMESTAMP - {_LOST_WINDOW})
              AND (status IN ('running', 'pending') AND NOT span_received
                   OR status = 'retrying')
              AND NOT (status = 'pending' AND queued_at IS NOT NULL)
              AND last_seen < ?""",  # noqa: S608
        [cutoff],
    ).fetchall()


def append_lost(
    con: duckdb.DuckDBPyConnection, lake: str, rows: list[tuple[Any, ...]]
) -> list[str]:
    """Append a "lost" fact per silent job; return their ids.

    The fact ranks just after the job's last sign of life, so any later record of it (a
    heartbeat, its span) outranks "lost" again, as on the embedded file. A job whose span
    said ``retrying`` and whose next attempt never came is lost above that span.
    """
    received = utcnow()
    facts = [
        {
            "id": job_id,
            "tier": 2 if status == "retrying" else 0,
            "ranked_at": last_seen + timedelta(microseconds=1),
            "status": "lost",
            "attempt": attempt,
            "received_at": received,
        }
        for job_id, status, last_seen, attempt in rows
    ]
    append(con, f"{lake}.job_facts", facts, JOB_FACT_SCHEMA)
    return [f["id"] for f in facts]


def mark_lost_on_lake(
    con: duckdb.DuckDBPyConnection, lake: str, timeout_s: float, *, now: datetime | None = None
) -> list[str]:
    """Find silent jobs and mark them lost in one go (see the two functions above)."""
    return append_lost(con, lake, silent_jobs(con, lake, timeout_s, now=now))


def forget_old_requests_on_lake(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    """Forget request digests older than a day (clients stop retrying long before)."""
    con.execute(
        f"DELETE FROM {lake}.ingested_requests "  # noqa: S608
        f"WHERE received_at < now()::TIMESTAMP - {_REQUESTS_KEPT}"
    )


class LakeWatch:
    """Turns what any collector committed since the last poll into a :class:`CommitInfo`."""

    def __init__(self, db: LakeDatabase) -> None:
        self._cur = db.cursor()
        self._lake = db.lake.name
        self._feed = Feed(self._lake, ("log_records", "job_facts", "step_facts", "log_links"))
        self._feed.start(self._cur)
        #: The newest fold marks seen (see :mod:`jobtrail.storage._lake_fold`).
        self.fold_marks = fold_marks(self._cur, self._lake)

    @property
    def last_log_id(self) -> int:
        """The newest log id seen (live streams start after it)."""
        return max(self._feed.marks["log_records"], 0)

    def poll(self) -> CommitInfo | None:
        """What changed since the previous poll, or None (one catalog query when nothing did)."""
        cur, lake = self._cur, self._lake
        if current_snapshot(cur, lake) <= self._feed.snapshot:
            return None
        old_last = self.last_log_id
        cur.execute("BEGIN TRANSACTION")
        try:
            new = self._feed.sources(cur)
            if new is None:
                return None
            rows = cur.execute(
                f"""SELECT DISTINCT id FROM (
                      SELECT id FROM {new["job_facts"]}
                      UNION ALL SELECT job_id FROM {new["step_facts"]}
                      UNION ALL SELECT job_id FROM {new["log_links"]})
                    WHERE id IS NOT NULL"""  # noqa: S608 - constants and integers only
            ).fetchall()
            self.fold_marks = max(self.fold_marks, fold_marks(cur, lake))
        finally:
            cur.execute("ROLLBACK")
        self._feed.advance()
        info = CommitInfo(job_ids={r[0] for r in rows})
        if self.last_log_id > old_last:
            info.first_log_id, info.last_log_id = old_last + 1, self.last_log_id
            info.logs = info.last_log_id - info.first_log_id + 1
        return info

    def close(self) -> None:
        """Release the cursor."""
        try:
            self._cur.close()
        except duckdb.Error:
            pass


class UpkeepSchedule:
    """Which upkeep is due for one collector: retention every ``interval_s``, compaction
    (with snapshot expiry) every ``compact_interval_s``; both on the first pass."""

    def __init__(self, retention: LakeRetention) -> None:
        self.retention = retention
        self.last: dict[str, float] = {}

    @property
    def wake_every_s(self) -> float:
        """How often the loop looks: the shorter interval."""
        return min(self.retention.compact_interval_s, self.retention.interval_s)

    def due(self, now: float) -> dict[str, bool]:
        """``maintain``'s ``ages`` and ``compact`` flags for a pass at ``now`` (monotonic)."""
        every = {"ages": self.retention.interval_s, "compact": self.retention.compact_interval_s}
        return {k: k not in self.last or now - self.last[k] >= s for k, s in every.items()}

    def start(self, now: float) -> dict[str, bool]:
        """The flags for a pass at ``now``, counted as run (a failed step waits its turn)."""
        flags = self.due(now)
        self.last.update({k: now for k, on in flags.items() if on})
        return flags


class LakeTasks:
    """The loops above, for one collector (see the module docstring)."""

    def __init__(
        self,
        db: LakeDatabase,
        writer: LakeWriter,
        *,
        lost_after_s: float,
        retention: LakeRetention | None = None,
        link_interval_s: float = 1.0,
        watch_interval_s: float = 0.5,
        fold_interval_s: float | None = None,
    ) -> None:
        self.db, self.writer = db, writer
        self.lost_after_s = lost_after_s
        self.retention = retention
        self.schedule = UpkeepSchedule(retention) if retention is not None else None
        self.link_interval_s = link_interval_s
        self.watch_interval_s = watch_interval_s
        self.fold_interval_s = resolve_fold_interval(fold_interval_s)
        self.sweep = LinkSweep(db.lake.name)
        self.watch = LakeWatch(db)
        #: The fold marks this process's views use (they only move forward).
        self.view_marks = self.watch.fold_marks
        self._swept_snapshot = -1
        self._link_cur = db.cursor()
        self._lost_cur = db.cursor()
        self._fold_cur = db.cursor()
        self._fold_lock = threading.Lock()

    async def run(
        self, on_commit: Callable[[CommitInfo], None], on_lost: Callable[[set[str]], None]
    ) -> None:
        """Run every loop until cancelled."""
        lake = self.db.lake.name
        loops = [
            self._every(self.link_interval_s, "linking", self._link),
            self._every(self.watch_interval_s, "live events", lambda: self._watch(on_commit)),
            self._every(
                max(0.5, min(self.lost_after_s / 4, 15.0)),
                "marking lost jobs",
                lambda: self._lost(on_lost),
            ),
            self._every(
                _FORGET_EVERY_S,
                "forgetting old request digests",
                lambda: self.writer.run(lambda con: forget_old_requests_on_lake(con, lake)),
            ),
        ]
        if self.fold_interval_s > 0:
            loops.append(
                self._every(self.fold_interval_s, "folding", self._fold, first_after_s=1.0)
            )
        if self.schedule is not None:
            upkeep = partial(self._upkeep, self.schedule)
            loops.append(self._every(self.schedule.wake_every_s, "lake maintenance", upkeep))
        try:
            await asyncio.gather(*loops)
        finally:
            self.watch.close()
            self._link_cur.close()
            self._lost_cur.close()
            self._fold_cur.close()

    async def _upkeep(self, schedule: UpkeepSchedule) -> None:
        flags = schedule.start(time.monotonic())
        if any(flags.values()):
            await asyncio.to_thread(maintain, self.db, schedule.retention, **flags)

    async def _link(self) -> None:
        snapshot = await asyncio.to_thread(current_snapshot, self._link_cur, self.db.lake.name)
        if snapshot != self._swept_snapshot:  # the sweep reads this snapshot or a newer one
            await self.writer.run(self.sweep)
            self._swept_snapshot = snapshot

    def use_marks(self, marks: tuple[int, int]) -> None:
        """Point this process's ``jobs``/``steps`` views at newer fold marks (blocking)."""
        with self._fold_lock:
            if marks > self.view_marks:
                create_fold_views(self._fold_cur, self.db.lake.name, marks)
                self.view_marks = marks

    def fold(self) -> None:
        """One fold pass, then the views use it (blocking; a lost race skips the round)."""
        try:
            with self._fold_lock:
                report = fold_settled(self._fold_cur, self.db.lake.name)
        except duckdb.Error as exc:
            log.info("lake fold skipped (another pass or retention won): %s", exc)
            return
        self.use_marks(report.marks)

    async def _fold(self) -> None:
        await asyncio.to_thread(self.fold)

    async def _watch(self, on_commit: Callable[[CommitInfo], None]) -> None:
        info = await asyncio.to_thread(self.watch.poll)
        if self.watch.fold_marks > self.view_marks:
            await asyncio.to_thread(self.use_marks, self.watch.fold_marks)
        if info is not None and (info.logs or info.job_ids):
            on_commit(info)

    async def _lost(self, on_lost: Callable[[set[str]], None]) -> None:
        # The fold runs on a reader cursor; the writer only appends the facts.
        lake, timeout = self.db.lake.name, self.lost_after_s
        rows = await asyncio.to_thread(silent_jobs, self._lost_cur, lake, timeout)
        if not rows:
            return
        lost = await self.writer.run(lambda con: append_lost(con, lake, rows))
        if lost:
            on_lost(set(lost))
            log.info("%d job(s) lost (no sign of life for %.0f s)", len(lost), timeout)

    async def _every(
        self,
        interval_s: float,
        what: str,
        step: Callable[[], Any],
        *,
        first_after_s: float | None = None,
    ) -> None:
        failing = False
        wait = interval_s if first_after_s is None else first_after_s
        while True:
            await asyncio.sleep(wait)
            wait = interval_s
            try:
                await step()
            except WriterClosed:
                return
            except Exception as exc:  # noqa: BLE001 - the lake may be unreachable for a while
                if not failing:
                    log.warning("lake %s failed (retrying every %.1f s): %s", what, interval_s, exc)
                failing = True
                continue
            if failing:
                log.info("lake %s works again", what)
            failing = False
