"""Jobs whose signs of life stop become lost; a late span still settles them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage import Database
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
