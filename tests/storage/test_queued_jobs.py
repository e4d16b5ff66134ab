"""Queued jobs: ``job.queued`` makes a job ``pending`` with ``queued_at`` until it starts.

Producer and worker are different processes, so the worker's records may arrive before the
queue's: the result must be the same either way, and a job waiting in its queue is never
taken for lost (it is silent by nature), while a started one still is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage import Database
from jobtrail.storage.maintenance import mark_lost
from jobtrail.storage.writer import BatchWriter

_COLUMNS = "status, queued_at, started_at, service, owner, type, name, attributes"


class Store(BatchWriter):
    """The writer, with the database it writes to at hand for reading rows back."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.db = db


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[Store]:
    db = Database(tmp_path / "db.duckdb")
    writer = Store(db)
    writer.start()
    yield writer
    await asyncio.to_thread(writer.close)
    db.close()


async def _queued(writer: BatchWriter, job_id: str, at_ns: int) -> None:
    """The producer's ``job.queued`` (its own trace and span, as an enqueuing request has)."""
    record = log(new_trace_id(), new_span_id(), "job queued", {
        "event.name": "job.queued", "job.id": job_id, "job.type": "export",
        "job.name": "nightly export", "job.owner": "ops", "job.metadata.region": "eu",
    })  # fmt: skip
    record.time_unix_nano = at_ns
    await writer.write(decode_logs(logs_request([record], service="web")).batch)


async def _started(writer: BatchWriter, job_id: str, trace: bytes, span_id: bytes) -> None:
    started = {"event.name": "job.started", "job.id": job_id, "job.type": "export"}
    record = log(trace, span_id, "job started", started)
    await writer.write(decode_logs(logs_request([record], service="worker")).batch)


def _row(writer: Store, job_id: str) -> dict[str, Any]:
    cur = writer.db.cursor()
    row = cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", [job_id]).fetchone()  # noqa: S608
    assert row is not None, job_id
    return dict(zip([c.strip() for c in _COLUMNS.split(",")], row, strict=True))


@pytest.mark.parametrize("queue_first", [True, False], ids=["queue-first", "worker-first"])
async def test_a_queued_job_is_pending_then_runs_whatever_the_arrival_order(
    writer: Store, queue_first: bool
) -> None:
    job_id, t, s = f"q-{queue_first}", new_trace_id(), new_span_id()
    queued_ns = 1_700_000_000_000_000_000
    if queue_first:
        await _queued(writer, job_id, queued_ns)
        pending = _row(writer, job_id)
        assert pending["status"] == "pending" and pending["started_at"] is None
        assert pending["queued_at"] == datetime(2023, 11, 14, 22, 13, 20)
        assert (pending["type"], pending["name"], pending["owner"]) == (
            "export", "nightly export", "ops",
        )  # fmt: skip
        await _started(writer, job_id, t, s)
    else:
        await _started(writer, job_id, t, s)
        await _queued(writer, job_id, queued_ns)
    running = _row(writer, job_id)
    assert running["status"] == "running" and running["started_at"] is not None
    assert running["queued_at"] == datetime(2023, 11, 14, 22, 13, 20)
    assert running["service"] == "worker"  # the process that runs it, not the producer
    assert running["name"] == "nightly export" and running["owner"] == "ops"
    assert '"region":"eu"' in running["attributes"].replace(" ", "")

    done = span(t, s, "nightly export", {"job.type": "export", "job.id": job_id})
    await writer.write(decode_traces(traces_request([done], service="worker")).batch)
    settled = _row(writer, job_id)
    assert settled["status"] == "completed" and settled["queued_at"] == running["queued_at"]


async def test_the_earliest_queue_time_is_kept(writer: Store) -> None:
    await _queued(writer, "twice", 1_700_000_100_000_000_000)
    await _queued(writer, "twice", 1_700_000_000_000_000_000)  # a retried or late request
    await _queued(writer, "twice", 1_700_000_200_000_000_000)
    assert _row(writer, "twice")["queued_at"] == datetime(2023, 11, 14, 22, 13, 20)


async def test_a_waiting_job_is_never_lost_but_a_started_silent_one_is(writer: Store) -> None:
    now_ns = int(datetime.now(UTC).timestamp() * 1e9)
    await _queued(writer, "waiting", now_ns)
    await _queued(writer, "taken", now_ns)
    await _started(writer, "taken", new_trace_id(), new_span_id())
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=2)
    lost = await writer.run(lambda con: mark_lost(con, 60, now=later))
    assert lost == ["taken"]
    assert _row(writer, "waiting")["status"] == "pending"
    assert _row(writer, "taken")["status"] == "lost"
