"""Derived jobs/steps and log links are right whatever order records arrive in."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import duckdb
import pytest
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage import Database, _row_access, queries
from jobtrail.storage.writer import BatchWriter


def _requests() -> dict[str, object]:
    """A plain-client job (no agent hints): job span, a step, an HTTP span, a child job, logs."""
    t = new_trace_id()
    job, step, http, child = (new_span_id() for _ in range(4))
    return {
        "job_span": traces_request(
            [span(t, job, "nightly import", {"job.type": "import", "job.owner": "ann"}, duration_ms=50)]
        ),
        "step_span": traces_request(
            [span(t, step, "download", {"job.step": "download", "job.step.seq": 1}, parent=job)]
        ),
        "child_spans": traces_request(
            [
                span(t, http, "GET /file", {"http.method": "GET"}, parent=step),
                span(t, child, "sub", {"job.type": "sub"}, parent=http, error="boom"),
            ]
        ),
        "logs": logs_request(
            [
                log(t, job, "starting", severity=9),
                log(t, step, "downloading", severity=13),
                log(t, child, "child failed", severity=17),
            ]
        ),
        "lifecycle": logs_request(
            [log(t, job, "job started", {"event.name": "job.started", "job.type": "import"})]
        ),
    }


async def _ingest(db: Database, order: list[str], reqs: dict[str, object]) -> None:
    writer = BatchWriter(db)
    writer.start()
    try:
        for name in order:
            req = reqs[name]
            decoded = decode_logs(req) if name in ("logs", "lifecycle") else decode_traces(req)  # type: ignore[arg-type]
            await writer.write(decoded.batch)
    finally:
        await asyncio.to_thread(writer.close)


@pytest.fixture(autouse=True, params=["scan", "index"])
def row_access(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with rows read and replaced by scans (the fallback for keys that cannot
    be written as literals) and through indexes (literal key lists; log ranges one key at a
    time, as large tables get)."""
    if request.param == "index":
        monkeypatch.setattr(_row_access, "_SMALL_TABLE_ROWS", 0)
    else:
        monkeypatch.setattr(_row_access, "sql_strings", lambda values: None)
    return str(request.param)


ORDERS = [list(p) for p in itertools.permutations(["job_span", "step_span", "child_spans", "logs", "lifecycle"])][::13]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
async def test_any_arrival_order_gives_the_same_job(tmp_path: Path, order: list[str]) -> None:
    db = Database(tmp_path / "db.duckdb")
    reqs = _requests()
    await _ingest(db, order, reqs)
    cur = db.cursor()
    jobs = {r[1]: r for r in cur.execute(
        "SELECT id, type, status, parent_job_id, owner, progress FROM jobs"
    ).fetchall()}
    assert set(jobs) == {"import", "sub"}
    parent = jobs["import"]
    assert parent[2] == "completed" and parent[4] == "ann" and parent[5] == 100.0
    assert parent[3] is None
    assert jobs["sub"][2] == "failed"
    assert jobs["sub"][3] == parent[0], "child job linked through the step and a plain span"
    steps = cur.execute("SELECT job_id, name, status FROM steps").fetchall()
    assert steps == [(parent[0], "download", "completed")]
    logs = dict(cur.execute("SELECT body, (job_id, step) FROM logs WHERE event_name IS NULL").fetchall())
    assert logs["starting"] == (parent[0], None)
    assert logs["downloading"] == (parent[0], "download")
    assert logs["child failed"] == (jobs["sub"][0], None)
    for job_id in (parent[0], jobs["sub"][0]):  # the id range kept per job covers every log
        direct = [r[0] for r in cur.execute(
            "SELECT id FROM logs WHERE job_id = ? AND event_name IS NULL ORDER BY id", [job_id]
        ).fetchall()]
        assert direct and [r["id"] for r in queries.job_logs(cur, job_id)["logs"]] == direct
    db.close()


async def test_restart_keeps_ids_increasing_and_links_late_spans(tmp_path: Path) -> None:
    reqs = _requests()
    db = Database(tmp_path / "db.duckdb")
    await _ingest(db, ["logs"], reqs)
    db.close()
    db = Database(tmp_path / "db.duckdb")
    await _ingest(db, ["lifecycle", "step_span", "job_span"], reqs)
    cur = db.cursor()
    ids = [r[0] for r in cur.execute("SELECT id FROM logs ORDER BY id").fetchall()]
    assert ids == list(range(1, len(ids) + 1))
    linked = cur.execute(
        "SELECT count(*) FROM logs WHERE body IN ('starting', 'downloading') AND job_id IS NOT NULL"
    ).fetchone()
    assert linked == (2,)
    db.close()


async def test_step_started_can_carry_the_jobs_progress(tmp_path: Path) -> None:
    t, job, step = new_trace_id(), new_span_id(), new_span_id()
    started = {"event.name": "job.started", "job.id": "j1", "job.type": "t", "job.total_steps": 4}
    step_attrs = {"event.name": "step.started", "job.id": "j1", "job.step": "two", "job.step.seq": 2}
    reqs = {
        "lifecycle": logs_request([log(t, job, "started", started)]),
        "logs": logs_request([log(t, step, "step started", {**step_attrs, "job.progress": 25.0})]),
    }
    db = Database(tmp_path / "db.duckdb")
    await _ingest(db, ["lifecycle", "logs"], reqs)
    row = db.cursor().execute("SELECT status, progress, current_step FROM jobs").fetchall()
    assert row == [("running", 25.0, "two")]
    db.close()


async def test_a_step_stored_without_its_job_is_found_when_its_job_becomes_known(
    tmp_path: Path, row_access: str
) -> None:
    """Through indexes the linker looks for a step among its job's steps; one stored before
    its job was known is not there, and the commit is retried reading whole tables."""
    t, job, step = new_trace_id(), new_span_id(), new_span_id()
    reqs = {
        "step_span": traces_request([span(t, step, "download", {"job.step": "download"}, parent=job)]),
        "lifecycle": logs_request([log(t, step, "step started", {
            "event.name": "step.started", "job.id": "j1", "job.step": "download", "job.step.seq": 1,
        })]),
    }
    db = Database(tmp_path / "db.duckdb")
    await _ingest(db, ["step_span"], reqs)  # a fresh writer each time: nothing cached
    await _ingest(db, ["lifecycle"], reqs)
    rows = db.cursor().execute("SELECT job_id, name, status FROM steps").fetchall()
    assert rows == [("j1", "download", "completed")]
    db.close()


async def test_rewriting_a_job_keeps_the_log_count_retention_dropped(tmp_path: Path) -> None:
    """Retention's per-job cap counts dropped records in ``jobs.logs_dropped``, also for a
    running job; the job's next lifecycle record or its span must not reset the count."""
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    t, s, step = new_trace_id(), new_span_id(), new_span_id()
    started = {"event.name": "job.started", "job.id": "j1", "job.type": "import"}
    await writer.write(decode_logs(logs_request([log(t, s, "job started", started)])).batch)

    def cap(con: duckdb.DuckDBPyConnection) -> None:  # what retention's per-job cap writes
        con.execute("UPDATE jobs SET logs_dropped = coalesce(logs_dropped, 0) + 7 WHERE id = 'j1'")

    await writer.run(cap)
    progress = {"event.name": "job.progress", "job.id": "j1", "job.progress": 40}
    await writer.write(decode_logs(logs_request([log(t, s, "progress", progress)])).batch)
    cur = db.cursor()
    row = cur.execute("SELECT progress, logs_dropped FROM jobs WHERE id = 'j1'").fetchone()
    assert row == (40.0, 7)
    done = [
        span(t, step, "download", {"job.step": "download"}, parent=s),
        span(t, s, "import", {"job.type": "import", "job.id": "j1"}),
    ]
    await writer.write(decode_traces(traces_request(done)).batch)
    row = cur.execute("SELECT status, logs_dropped FROM jobs WHERE id = 'j1'").fetchone()
    assert row == ("completed", 7)
    await asyncio.to_thread(writer.close)
    db.close()
