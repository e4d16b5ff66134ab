"""Group commit: concurrent writes share commits, a lone writer is never kept waiting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from otlp_build import log, logs_request

from jobtrail.collector import decode_logs
from jobtrail.storage import Database
from jobtrail.storage._linger import LINGER_RECORDS, MAX_LINGER_S, GroupLinger
from jobtrail.storage.model import Batch
from jobtrail.storage.writer import BatchWriter

CLIENTS = 8
ROUNDS = 6


def _batch(client: int, i: int) -> Batch:
    records = [log(None, None, f"client {client} line {i}.{n}", {}) for n in range(20)]
    return decode_logs(logs_request(records)).batch  # type: ignore[arg-type]


async def _closed_loop(writer: BatchWriter, clients: int, rounds: int) -> None:
    """``clients`` callers, each sending its next write as soon as the last one is stored.

    Each decodes its request first, as a receiver does: that is the time during which a
    writer that commits at once takes a group without the clients just acknowledged.
    """

    async def client(c: int) -> None:
        for i in range(rounds):
            await writer.write(_batch(c, i))

    await asyncio.gather(*(client(c) for c in range(clients)))


async def _run(db: Database, clients: int, rounds: int) -> BatchWriter:
    writer = BatchWriter(db)
    writer.start()
    try:
        await _closed_loop(writer, clients, rounds)
    finally:
        await asyncio.to_thread(writer.close)
    return writer


def test_concurrent_writers_share_commits(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    writer = asyncio.run(_run(db, CLIENTS, ROUNDS))
    writes = CLIENTS * ROUNDS
    stored = db.cursor().execute("SELECT count(*) FROM logs").fetchone()[0]  # type: ignore[index]
    assert stored == writes * 20
    # Committing whatever is queued at once makes the clients take turns in two halves:
    # 10-12 commits here (measured); waiting for the writers seen gives 6-7.
    assert writer.commits <= ROUNDS + 3, f"{writer.commits} commits for {writes} writes"


def test_a_lone_writer_commits_each_write_at_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    writer = asyncio.run(_run(db, 1, 10))
    assert writer.commits == 10
    assert writer._linger.writers == 1
    assert writer._linger.wait_s(items=1, records=20) == 0.0


@pytest.mark.parametrize(
    ("writers", "items", "records", "last_commit_s", "expected"),
    [
        (1, 1, 10, 0.04, 0.0),  # a lone client: never wait
        (8, 8, 4_000, 0.04, 0.0),  # everyone is in: commit
        (8, 3, 1_500, 0.04, 0.02),  # half the last commit
        (8, 3, 1_500, 1.0, MAX_LINGER_S),  # bounded
        (64, 20, LINGER_RECORDS, 0.2, 0.0),  # large already: a busy writer never idles
    ],
)
def test_wait_follows_the_writers_seen_and_the_commit_time(
    writers: int, items: int, records: int, last_commit_s: float, expected: float
) -> None:
    linger = GroupLinger()
    linger.committed(group_items=writers, queued_items=0, commit_s=last_commit_s)
    assert linger.wait_s(items, records) == pytest.approx(expected)


def test_a_fixed_interval_always_waits() -> None:
    linger = GroupLinger(fixed_s=0.5)
    linger.committed(group_items=1, queued_items=0, commit_s=0.01)
    assert linger.wait_s(items=1, records=10**6) == 0.5
