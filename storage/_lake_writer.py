"""The batched writer of one collector on a lake: appends only, in larger commits.

It is the embedded :class:`~jobtrail.storage.writer.BatchWriter` (queue bounds, group
commit, Export acknowledged after commit, retry digests) with three differences:

* every row is appended — raw records, job and step facts (see
  :mod:`jobtrail.storage._lake_linker`) — so collectors writing the same lake never
  conflict and never overwrite each other;
* it gathers batches for ``commit_interval_s`` before committing, because each commit
  writes one Parquet file per table and one catalog transaction: fewer, larger commits are
  what a lake wants (DuckLake's data inlining keeps the smallest ones in the catalog);
* a request digest is also looked up in the lake, so a client's retry that reaches another
  collector within :data:`_CROSS_DEDUPE_WINDOW` is not stored twice.

When the catalog (or object storage) cannot be reached, a commit fails as a whole and the
Export is answered "retry later" (:class:`WriterOverloaded`), so clients keep their data.
"""

from __future__ import annotations

import logging
import time

import duckdb
import pyarrow as pa

from jobtrail.storage._lake_linker import LakeLinker
from jobtrail.storage._linger import GroupLinger
from jobtrail.storage.lake import LakeDatabase
from jobtrail.storage.linker import Linker
from jobtrail.storage.model import Batch, one_table
from jobtrail.storage.writer import BatchWriter, CommitInfo, WriterOverloaded

log = logging.getLogger(__name__)

#: Lake-side digest lookups cover this much recent history (clients retry within minutes).
_CROSS_DEDUPE_WINDOW = "INTERVAL 15 MINUTE"
#: A commit that loses a race with maintenance in another collector is retried this often.
_CONFLICT_RETRIES = 3
_DEFAULT_MAX_GROUP_RECORDS = 200_000


def is_conflict(exc: BaseException) -> bool:
    """Whether a DuckLake commit failed because a concurrent transaction won."""
    return isinstance(exc, duckdb.TransactionException) or "conflict" in str(exc).lower()


class LakeWriter(BatchWriter):
    """A :class:`BatchWriter` that appends to a lake (see the module docstring).

    Args:
        db: A :class:`~jobtrail.storage.lake.LakeDatabase`.
        commit_interval_s: Seconds to gather batches before a commit.
        **limits: The queue limits of :class:`BatchWriter`.
    """

    def __init__(self, db: LakeDatabase, *, commit_interval_s: float = 0.5, **limits: int) -> None:
        self._lake = db.lake.name
        limits.setdefault("max_group_records", _DEFAULT_MAX_GROUP_RECORDS)
        super().__init__(db, **limits)
        self._linger = GroupLinger(fixed_s=commit_interval_s)
        self.conflicts_retried = 0

    def _new_linker(self) -> Linker:
        return LakeLinker(self._con, self._lake)

    def _load_digests(self) -> None:
        """Start with an empty memory: the lake lookup covers retries around a restart."""

    def _first_delivery(self, batches: list[Batch]) -> list[Batch]:
        fresh: list[Batch] = []
        new: list[bytes] = []
        for batch in batches:
            digest = batch.request_digest
            if digest is not None and (digest in self._recent or digest in new):
                self.duplicates_skipped += 1
                continue
            if digest is not None:
                new.append(digest)
            fresh.append(batch)
        if not new:
            return fresh
        seen = {
            row[0]
            for row in self._con.execute(
                f"SELECT digest FROM {self._lake}.ingested_requests "  # noqa: S608
                f"WHERE received_at > now()::TIMESTAMP - {_CROSS_DEDUPE_WINDOW} "
                "AND digest IN (SELECT unnest(?))",
                [new],
            ).fetchall()
        }
        if seen:
            self.duplicates_skipped += sum(b.request_digest in seen for b in fresh)
            fresh = [b for b in fresh if b.request_digest not in seen]
            new = [d for d in new if d not in seen]
        if new:
            self._con.execute(
                f"INSERT INTO {self._lake}.ingested_requests "  # noqa: S608
                "SELECT unnest(?), now()::TIMESTAMP",
                [new],
            )
            self._pending_digests = new
        return fresh

    def _store(self, batches: list[Batch]) -> CommitInfo:
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return self._store_once(batches)
            except duckdb.IOException as exc:
                # The catalog or the data path is unreachable: nothing was committed, and the
                # client is told to retry (UNAVAILABLE / 503), as when the queue is full.
                first = (str(exc).strip().splitlines() or ["I/O error"])[0]
                raise WriterOverloaded(f"lake unavailable: {first}") from exc
            except duckdb.Error as exc:
                if not is_conflict(exc) or attempt == _CONFLICT_RETRIES - 1:
                    raise
                self.conflicts_retried += 1
                log.info("lake commit conflicted with another collector; retrying: %s", exc)
        raise AssertionError("unreachable")

    def _store_once(self, batches: list[Batch]) -> CommitInfo:
        started = time.perf_counter()
        con, lake = self._con, self._lake
        linker = self._linker
        assert isinstance(linker, LakeLinker)
        info = CommitInfo()
        con.execute("BEGIN TRANSACTION")
        try:
            batches = self._first_delivery(batches)
            for name, table in (("spans", "spans"), ("metrics", "metrics")):
                rows = one_table([getattr(b, name) for b in batches])
                if rows is not None:
                    self._insert(f"{lake}.{table}", rows)
                    setattr(info, name, rows.num_rows)
            jobs = [u for b in batches for u in b.jobs]
            steps = [u for b in batches for u in b.steps]
            info.job_ids = linker.apply(jobs, steps)
            logs = one_table([b.logs for b in batches])
            if logs is not None:
                logs = linker.link_records(logs)
                self._insert(f"{lake}.log_records", logs)
                info.logs = logs.num_rows
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed COMMIT has already ended the transaction
            self._pending_digests = []
            raise
        self._remember_digests()
        info.commit_s = time.perf_counter() - started
        self.commit_seconds.observe(info.commit_s)
        self.commits += 1
        self.records_stored += info.spans + info.logs + info.metrics
        return info

    def _insert(self, table: str, rows: pa.Table) -> None:
        self._con.register("_lake_batch", rows)
        try:
            self._con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _lake_batch")  # noqa: S608
        finally:
            self._con.unregister("_lake_batch")
