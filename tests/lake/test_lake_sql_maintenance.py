"""On a lake: the SQL route's escapes stay closed, the read surface matches the file, upkeep works."""

from __future__ import annotations

import glob
import time
from pathlib import Path

import duckdb
import pytest
from lakehelp import settle, store
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request
from sql_escapes import ESCAPES

from jobtrail.storage import Database, queries
from jobtrail.storage._lake_maintenance import LakeRetention, maintain
from jobtrail.storage._query_model import InvalidParameter
from jobtrail.storage.lake import LakeConfig, LakeStorage
from jobtrail.storage.schema import VIEWS
from jobtrail.storage.sql import run_sql

TABLE_FN = "is not allowed: only"
CATALOG = "lake's catalog database"
LAKE_ESCAPES = [
    ("SELECT * FROM __ducklake_metadata_lake.ducklake_snapshot", CATALOG),
    ("SELECT * FROM __ducklake_metadata_lake.public.ducklake_data_file", CATALOG),
    ("SELECT * FROM (FROM __ducklake_metadata_lake.ducklake_metadata) x", CATALOG),
    ("SELECT * FROM postgres_query('__ducklake_metadata_lake', 'SELECT 1')", TABLE_FN),
    ("SELECT * FROM postgres_scan('dbname=postgres', 'public', 'x')", TABLE_FN),
    ("SELECT * FROM ducklake_snapshots('lake')", TABLE_FN),
    ("SELECT * FROM lake.snapshots()", TABLE_FN),
    ("SELECT * FROM ducklake_merge_adjacent_files('lake')", TABLE_FN),
    ("CALL ducklake_expire_snapshots('lake', older_than => now())", "only SELECT"),
    ("SELECT * FROM read_parquet('{data}/**/*.parquet')", TABLE_FN),
    ("SELECT * FROM '{data}/main/spans/x.parquet'", "looks like a file"),
    ("ATTACH 'ducklake:postgres:dbname=postgres' AS other", "only SELECT"),
]


def lake_counts(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = ("spans", "log_records", "job_facts", "step_facts", "log_links", "metrics")
    return {t: cur.execute(f"SELECT count(*) FROM lake.{t}").fetchone()[0] for t in tables}  # type: ignore[index]


def live_files(cur: duckdb.DuckDBPyConnection, table: str | None = None) -> int:
    """Data and delete files the lake's current snapshot uses (of one table, or all)."""
    total = 0
    tables = cur.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'")
    for (name,) in tables.fetchall():
        if table is not None and name != table:
            continue
        row = cur.execute(
            f"SELECT count(data_file) + count(delete_file) FROM ducklake_list_files('lake', '{name}')"
        ).fetchone()
        total += row[0] if row else 0
    return total


def test_every_escape_is_rejected_on_a_lake(
    two: tuple[LakeStorage, LakeStorage], lake_config: LakeConfig, tmp_path: Path
) -> None:
    """The SQL route's escapes of the embedded file, and a lake's own, all refused."""
    cur = two[0].db.cursor()
    before = lake_counts(cur)
    data = lake_config.data_dir.rstrip("/")
    wrong = []
    for sql, reason in ESCAPES + LAKE_ESCAPES:
        text = sql.format(tmp=tmp_path, data=data)
        try:
            run_sql(cur, text, limit=10, timeout_s=10)
        except InvalidParameter as exc:
            if reason not in str(exc):
                wrong.append((text, str(exc)))
        else:
            wrong.append((text, "accepted"))
    assert not wrong
    assert lake_counts(cur) == before


def test_below_the_check_files_stay_out_of_reach(two: tuple[LakeStorage, LakeStorage]) -> None:
    """The instance itself refuses files outside the lake's data path and any write."""
    cur = two[0].db.cursor()
    cur.execute("BEGIN TRANSACTION READ ONLY")
    try:
        with pytest.raises(duckdb.PermissionException):
            cur.execute("SELECT * FROM read_csv('/etc/passwd')")
    finally:
        cur.execute("ROLLBACK")
    cur.execute("BEGIN TRANSACTION READ ONLY")
    try:
        with pytest.raises(duckdb.Error, match="read-only"):
            cur.execute("INSERT INTO lake.log_records (body) VALUES ('x')")
    finally:
        cur.execute("ROLLBACK")
    with pytest.raises(duckdb.Error, match="lock"):
        cur.execute("SET enable_external_access = true")


def test_honest_sql_works_on_a_lake(two: tuple[LakeStorage, LakeStorage]) -> None:
    result = run_sql(
        two[1].db.cursor(),
        "SELECT count(*) AS n FROM jobs j JOIN steps s ON s.job_id = j.id WHERE j.status <> ?",
        ["nope"], limit=10, timeout_s=10,
    )  # fmt: skip
    assert result.columns == ["n"] and isinstance(result.rows[0][0], int)


def test_read_surface_has_the_embedded_tables_and_columns(
    two: tuple[LakeStorage, LakeStorage],
) -> None:
    """Every table and view of the file exists on a lake with the same columns and types."""
    embedded = Database(":memory:")
    query = (
        "SELECT table_name, list(column_name || ' ' || data_type ORDER BY ordinal_position) "
        "FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'main' GROUP BY ALL"
    )
    try:
        want = dict(embedded.cursor().execute(query).fetchall())
    finally:
        embedded.close()
    got = dict(two[0].db.cursor().execute(query).fetchall())
    for name, columns in want.items():
        # A file's views keep the columns their table had when they were created (DuckDB
        # binds ``*`` then); a lake's are created fresh, so they may have more at the end.
        assert got.get(name, [])[: len(columns)] == columns, name
        if name not in VIEWS:
            assert got[name] == columns, name


async def test_upkeep_compacts_expires_and_keeps_ids(
    two: tuple[LakeStorage, LakeStorage], lake_config: LakeConfig
) -> None:
    a, b = two
    day_ns = 86_400 * 10**9
    t_old, old = new_trace_id(), new_span_id()
    t_new, new = new_trace_id(), new_span_id()
    long_ago = time.time_ns() - 10 * day_ns
    await store(a.writer, ("traces", traces_request([
        span(t_old, old, "old job", {"job.type": "old"}, start_ns=long_ago),
        span(t_new, new, "new job", {"job.type": "new"}),
    ])))  # fmt: skip
    for i in range(12):  # many small commits: many files to merge
        side = two[i % 2]
        await store(side.writer, ("logs", logs_request([
            *(log(t, s, f"{name} {i}.{k}") for k in range(6)
              for t, s, name in ((t_old, old, "old"), (t_new, new, "new")))
        ])))  # fmt: skip
    await settle(a, b)
    cur = a.db.cursor()
    before = [(r["id"], r["message"]) for r in queries.list_logs(cur, limit=100_000)["logs"]]
    log_files = live_files(cur, "log_records")
    policy = LakeRetention(max_age_s=86_400, snapshot_keep_s=0)
    report = maintain(a.db, policy, ages=True)
    assert {"age", "flush", "merge", "expire", "cleanup"} <= set(report.done), report.skipped
    assert report.deleted.get("job_facts") and report.deleted.get("log_records")
    after = [(r["id"], r["message"]) for r in queries.list_logs(cur, limit=100_000)["logs"]]
    assert after == [r for r in before if not r[1].startswith("old ")], "ids kept, old gone"
    # The twelve commits' files are merged; flushing inlined rows meanwhile gives the
    # other tables (and their marker rows) a file each, so the lake's total says nothing.
    assert log_files >= 12 and live_files(cur, "log_records") < log_files, "small files merged"
    on_disk = glob.glob(f"{lake_config.data_dir}**/*.parquet", recursive=True)
    assert len(on_disk) == live_files(cur), "files of expired snapshots deleted"
    with pytest.raises(queries.JobNotFound):
        queries.get_job(cur, old.hex())
    assert queries.get_job(b.db.cursor(), new.hex())["status"] == "completed"
