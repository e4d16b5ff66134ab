"""Jobs whose signs of life stop become lost; a late span still settles them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage import Database
from jobtrail.storage._row_access import RowAccess
from jobtrail.storage.maintenance import mark_lost
from jobtrail.storage.writer import BatchWriter


async def test_silent_job_is_lost_then_corrected_by_its_span(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    t, s, other = new_trace_id(), new_span_id(), new_span_id()
    started = {"event.name": "job.started", "job.id": "j1", "job.type": "import"}
    await writer.write(decode_logs(logs_request([log(t, s, "job started", started)])).batch)
    fresh = {"event.name": "job.started", "job.id": "j2", "job.type": "import"}
    await writer.write(decode_logs(logs_request([log(t, other, "job started", fresh)])).batch)
    cur = db.cursor()
    assert cur.execute("SELECT status FROM jobs WHERE id = 'j1'").fetchone() == ("running",)

    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=120)
    lost = await writer.run(lambda con: mark_lost(con, 60, now=later))
    assert sorted(lost) == ["j1", "j2"]
    assert await writer.run(lambda con: mark_lost(con, 600, now=later)) == []
    row = cur.execute("SELECT status, last_seen FROM jobs WHERE id = 'j1'").fetchone()
    assert row is not None and row[0] == "lost" and row[1] is not None

    settle = span(t, s, "import", {"job.type": "import", "job.id": "j1"})
    await writer.write(decode_traces(traces_request([settle])).batch)
    assert cur.execute("SELECT status FROM jobs WHERE id = 'j1'").fetchone() == ("completed",)
    assert cur.execute("SELECT status FROM jobs WHERE id = 'j2'").fetchone() == ("lost",)
    await asyncio.to_thread(writer.close)
    db.close()


async def test_a_task_naming_the_jobs_it_changed_keeps_the_other_rows_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the lost-job sweep the linker reads back only the jobs the sweep changed (a row
    read back from a large table costs a fetch per column); other tasks clear everything."""
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    t = new_trace_id()
    spans = {job: new_span_id() for job in ("j1", "j2")}

    async def lifecycle(event: str, **attributes: object) -> None:
        records = [
            log(t, spans[job], event, {"event.name": event, "job.id": job, **attributes})
            for job in spans
        ]
        await writer.write(decode_logs(logs_request(records)).batch)

    await lifecycle("job.started", **{"job.type": "import"})
    read: list[list[str]] = []
    original = RowAccess.jobs

    def spy(self: RowAccess, ids: list[str]) -> dict[str, dict[str, object]]:
        read.append(sorted(ids))
        return original(self, ids)

    monkeypatch.setattr(RowAccess, "jobs", spy)

    def lose_j1(con: duckdb.DuckDBPyConnection) -> list[str]:
        con.execute("UPDATE jobs SET status = 'lost' WHERE id = 'j1'")
        return ["j1"]

    await writer.run(lose_j1, changed_jobs=lambda ids: ids)
    await lifecycle("job.progress", **{"job.progress": 10})
    assert read == [["j1"]]
    await writer.run(lambda con: con.execute("SELECT 1").fetchall())  # says nothing: forget all
    await lifecycle("job.progress", **{"job.progress": 20})
    assert read == [["j1"], ["j1", "j2"]]
    cur = db.cursor()
    assert cur.execute("SELECT id, progress FROM jobs ORDER BY id").fetchall() == [
        ("j1", 20.0),
        ("j2", 20.0),
    ]
    await asyncio.to_thread(writer.close)
    db.close()
