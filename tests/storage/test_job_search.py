"""The jobs list's ``q``: one stored lower-cased column, kept by the writer and the migration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
from otlp_build import new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import decode_traces
from jobtrail.storage import Database, queries, schema
from jobtrail.storage.schema import MIGRATIONS, SCHEMA_VERSION
from jobtrail.storage.writer import BatchWriter


def _ids(db: Database, q: str) -> set[str]:
    page = queries.list_jobs(db.cursor(), queries.JobFilter(q=q))
    return {job["id"] for job in page["jobs"]}


async def test_q_finds_name_id_type_and_error_in_any_case(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    try:
        t = new_trace_id()
        ok, bad = new_span_id(), new_span_id()
        attrs = {"job.type": "Nightly-Export"}
        first = [span(t, ok, "Export Users", {**attrs, "job.id": "EXP-42"})]
        await writer.write(decode_traces(traces_request(first)).batch)
        await writer.write(
            decode_traces(
                traces_request(
                    [
                        span(
                            t,
                            bad,
                            "export orders",
                            {**attrs, "job.id": "exp-43"},
                            error="Disk FULL",
                        )
                    ]
                )
            ).batch
        )
        assert _ids(db, "eXPORT u") == {"EXP-42"}  # name
        assert _ids(db, "exp-4") == {"EXP-42", "exp-43"}  # id
        assert _ids(db, "nightly-export") == {"EXP-42", "exp-43"}  # type
        assert _ids(db, "disk full") == {"exp-43"}  # error
        assert _ids(db, "users exp-42") == set()  # no match across two parts
        # A row rewritten by a later record keeps its search text current.
        later = span(t, ok, "Export Users", {**attrs, "job.id": "EXP-42"}, error="Timed Out")
        await writer.write(decode_traces(traces_request([later])).batch)
        assert _ids(db, "timed out") == {"EXP-42"}
    finally:
        await asyncio.to_thread(writer.close)
        db.close()


def test_migration_fills_the_search_text_of_existing_jobs(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE jobtrail_schema (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    before_search_text = MIGRATIONS.index(schema._v8)
    for number, migration in enumerate(MIGRATIONS[:before_search_text], start=1):
        migration(con)
        con.execute("INSERT INTO jobtrail_schema VALUES (?, now()::TIMESTAMP)", [number])
    con.execute(
        "INSERT INTO jobs (id, type, name, status, error, started_at) VALUES "
        "('Old-1', 'Backup', 'Weekly Backup', 'failed', 'No Space', now()::TIMESTAMP)"
    )
    con.close()
    db = Database(path)
    try:
        row = db.cursor().execute("SELECT max(version) FROM jobtrail_schema").fetchone()
        assert row == (SCHEMA_VERSION,)
        assert _ids(db, "weekly backup") == _ids(db, "no space") == {"Old-1"}
    finally:
        db.close()
