"""Ad-hoc SQL: every escape is rejected with a reason and changes nothing; honest SQL works."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sample_jobs import fill_db
from sql_escapes import ESCAPES

from jobtrail.storage import Database
from jobtrail.storage import sql as sql_module
from jobtrail.storage._query_model import InvalidParameter
from jobtrail.storage.sql import SqlInterrupter, SqlTimeout, check_sql, run_sql

#: A Python object a replacement scan could read by name, were replacements enabled.
secret_frame = pa.table({"password": ["hunter2"]})



def snapshot(db: Database) -> dict[str, Any]:
    """Everything an escape could change: catalog, every table's rows, sequences, settings."""
    cur = db.cursor()
    try:
        state: dict[str, Any] = {
            "databases": cur.execute(
                "SELECT database_name, path, type FROM duckdb_databases() ORDER BY ALL"
            ).fetchall(),
            "tables": cur.execute(
                "SELECT database_name, schema_name, table_name, sql FROM duckdb_tables() "
                "ORDER BY ALL"
            ).fetchall(),
            "views": cur.execute(
                "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal "
                "ORDER BY ALL"
            ).fetchall(),
            "sequences": cur.execute(
                "SELECT sequence_name, last_value FROM duckdb_sequences() ORDER BY ALL"
            ).fetchall(),
            "macros": cur.execute(
                "SELECT function_name FROM duckdb_functions() WHERE NOT internal ORDER BY ALL"
            ).fetchall(),
            "settings": cur.execute(
                "SELECT name, value FROM duckdb_settings() ORDER BY name"
            ).fetchall(),
        }
        for _, schema, table, _ in state["tables"]:
            state[f"{schema}.{table}"] = cur.execute(
                "SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), chr(10) "
                f'ORDER BY CAST(t AS VARCHAR)), \'\')) FROM "{schema}"."{table}" AS t'
            ).fetchone()
        return state
    finally:
        cur.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One database for the module: no test may change it, so sharing it checks that too."""
    database = Database(tmp_path_factory.mktemp("sql") / "db.duckdb")
    fill_db(database)
    database.con.execute("CREATE SEQUENCE escape_seq")
    database.con.execute("SELECT nextval('escape_seq')")
    yield database
    database.close()


@pytest.fixture
def cur(db: Database) -> Iterator[duckdb.DuckDBPyConnection]:
    cursor = db.cursor()
    yield cursor
    cursor.close()


def run(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None, **kw: Any) -> Any:
    return run_sql(cur, sql, params, limit=kw.pop("limit", 1000), timeout_s=10, **kw)


@pytest.mark.parametrize(("sql", "reason"), ESCAPES, ids=[s for s, _ in ESCAPES])
def test_escape_is_rejected_and_changes_nothing(
    db: Database, cur: duckdb.DuckDBPyConnection, sql: str, reason: str
) -> None:
    before = snapshot(db)
    tmp_path = Path(db.path).parent
    text = sql.format(tmp=tmp_path)
    with pytest.raises(InvalidParameter) as err:
        run(cur, text)
    assert err.value.name == "sql"
    assert str(err.value).startswith("sql: ") and reason in str(err.value)
    assert snapshot(db) == before
    assert {p.name for p in tmp_path.iterdir()} <= {"db.duckdb", "db.duckdb.wal"}  # no new file
    assert run(cur, "SELECT count(*) AS n FROM jobs").rows[0][0] > 0  # still usable


#: What the read-only transaction and the locked instance stop even without the check.
DEEPER: list[tuple[str, str]] = [
    ("INSERT INTO jobs (id, status) VALUES ('evil', 'failed')", "read-only"),
    ("DELETE FROM logs", "read-only"),
    ("DROP TABLE jobs", "read-only"),
    ("CREATE TABLE evil (a INTEGER)", "read-only"),
    ("SELECT nextval('escape_seq')", "read-only"),
    ("COPY jobs TO '{tmp}/jobs.csv'", "disabled by configuration"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled by configuration"),
    ("SELECT * FROM glob('/*')", "disabled by configuration"),
    ("ATTACH '{tmp}/other.duckdb' AS other", "disabled by configuration"),
    ("EXPORT DATABASE '{tmp}/dump'", "disabled by configuration"),
    ("LOAD httpfs", "disabled through configuration"),
    ("SET threads = 1", "configuration has been locked"),
    ("SET enable_external_access = true", "configuration has been locked"),
    ("SELECT * FROM secret_frame", "secret_frame"),
]


@pytest.mark.parametrize(("sql", "reason"), DEEPER, ids=[s for s, _ in DEEPER])
def test_deeper_layers_hold_without_the_check(
    db: Database,
    cur: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
    sql: str,
    reason: str,
) -> None:
    monkeypatch.setattr(sql_module, "check_sql", lambda sql: None)
    before = snapshot(db)
    tmp_path = Path(db.path).parent
    with pytest.raises(InvalidParameter) as err:
        run(cur, sql.format(tmp=tmp_path))
    assert reason in str(err.value)
    assert snapshot(db) == before
    assert {p.name for p in tmp_path.iterdir()} <= {"db.duckdb", "db.duckdb.wal"}


def test_check_sql_accepts_select_forms() -> None:
    for sql in (
        "SELECT 1",
        "SELECT 1;",
        "select 1 -- trailing comment",
        "FROM jobs SELECT id",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "VALUES (1, 'a'), (2, 'b')",
        "DESCRIBE jobs",
        "SHOW TABLES",
        "SUMMARIZE jobs",
        "SELECT * FROM range(3) UNION ALL SELECT * FROM generate_series(1, 2)",
        "SELECT * FROM duckdb_columns() WHERE table_name = 'jobs'",
        "SELECT * FROM information_schema.columns",
        "SELECT key, value FROM json_each('{\"a\": 1}')",
    ):
        check_sql(sql)


@pytest.mark.parametrize("bad", ["", "   ", "SELEC 1", "SELECT 'x" + "y" * 100_001 + "'"])
def test_check_sql_rejects_garbage(bad: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        check_sql(bad)
    assert err.value.name == "sql"


def test_honest_queries(cur: duckdb.DuckDBPyConnection) -> None:
    joined = run(
        cur,
        """
        WITH per_job AS (
            SELECT j.id, j.type, count(l.id) AS log_count
            FROM jobs j LEFT JOIN logs l ON l.job_id = j.id
            GROUP BY ALL
        )
        SELECT id, type, log_count,
               rank() OVER (PARTITION BY type ORDER BY log_count DESC, id) AS rank_in_type
        FROM per_job WHERE type = $type ORDER BY log_count DESC
        """,
        {"type": "import"},
    )
    assert joined.columns == ["id", "type", "log_count", "rank_in_type"]
    assert joined.types == ["VARCHAR", "VARCHAR", "BIGINT", "BIGINT"]
    assert joined.rows[0][:2] == ["import-1", "import"] and joined.rows[0][3] == 1
    source = run(
        cur,
        "SELECT attributes->>'source' AS src, json_extract(attributes, '$.source') AS js, "
        "attributes, result FROM jobs WHERE id = ?",
        ["import-1"],
    )
    assert source.types == ["VARCHAR", "JSON", "JSON", "JSON"]
    assert source.rows == [
        ["s3://bucket/users.csv", "s3://bucket/users.csv", {"source": "s3://bucket/users.csv"},
         {"rows": 300}]
    ]  # fmt: skip
    steps = run(
        cur,
        "SELECT s.name, s.duration_ms FROM steps s JOIN jobs j ON j.id = s.job_id "
        "WHERE j.id = ? ORDER BY s.seq",
        ["import-1"],
    )
    assert [r[0] for r in steps.rows][:2] == ["download", "transform"]
    assert run(cur, "SELECT * FROM error_rate_by_type ORDER BY type").rows
    assert run(cur, "DESCRIBE jobs").rows[0][0] == "id"


def test_values_are_json_ready(cur: duckdb.DuckDBPyConnection) -> None:
    result = run(
        cur,
        "SELECT TIMESTAMP '2026-11-23 19:56:46.123456' AS ts, "
        "TIMESTAMPTZ '2026-11-23 19:56:46+02' AS tstz, DATE '2026-11-23' AS d, "
        "123.45::DECIMAL(10, 2) AS dec, 12345678901234567890.12::DECIMAL(38, 2) AS big_dec, "
        "170141183460469231731687303715884105727::HUGEINT AS huge, '\\xAB\\x01'::BLOB AS b, "
        "INTERVAL 90 MINUTE AS iv, 'nan'::DOUBLE AS nan, [1, 2] AS l, {'k': 'v'} AS s, "
        "MAP {1: 'one'} AS m, '{\"a\": [1]}'::JSON AS j, "
        "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS u, 1 AS same, 2 AS same",
    )
    assert result.columns[-2:] == ["same", "same"]
    assert result.rows == [
        [
            "2026-11-23T19:56:46.123456Z", "2026-11-23T17:56:46.000000Z", "2026-11-23", 123.45,
            "12345678901234567890.12", "170141183460469231731687303715884105727", "ab01",
            5400.0, None, [1, 2], {"k": "v"}, {"1": "one"}, {"a": [1]},
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8", 1, 2,
        ]
    ]  # fmt: skip


def test_arrow_result_keeps_types(cur: duckdb.DuckDBPyConnection) -> None:
    result = run(
        cur,
        "SELECT id, started_at, duration_ms, attributes, 1.5::DECIMAL(4, 1) AS d, "
        "now() AS n FROM jobs ORDER BY id LIMIT 3",
        as_arrow=True,
    )
    assert result.rows == [] and result.arrow is not None
    schema = result.arrow.schema
    assert schema.field("started_at").type == pa.timestamp("us")
    assert schema.field("duration_ms").type == pa.float64()
    assert schema.field("d").type == pa.decimal128(4, 1)
    assert schema.field("n").type == pa.timestamp("us", tz="UTC")
    assert result.arrow.column("d").to_pylist()[0] == Decimal("1.5")
    assert result.arrow.num_rows == 3


def test_limit_truncates(cur: duckdb.DuckDBPyConnection) -> None:
    result = run(cur, "SELECT * FROM range(1000000000000)", limit=5)
    assert result.truncated and result.rows == [[0], [1], [2], [3], [4]]
    exact = run(cur, "SELECT * FROM range(5)", limit=5)
    assert not exact.truncated and len(exact.rows) == 5


def test_timeout_interrupts(cur: duckdb.DuckDBPyConnection) -> None:
    started = time.monotonic()
    with pytest.raises(SqlTimeout):
        run_sql(
            cur,
            "SELECT sum(a.range * b.range % 7) FROM range(1000000) a, range(1000000) b",
            limit=10,
            timeout_s=0.3,
        )
    assert time.monotonic() - started < 5
    assert run(cur, "SELECT 42 AS answer").rows == [[42]]


def test_interrupter_stops_a_statement(cur: duckdb.DuckDBPyConnection) -> None:
    interrupter = SqlInterrupter()
    threading.Timer(0.3, interrupter.interrupt).start()
    with pytest.raises(SqlTimeout):
        run_sql(
            cur,
            "SELECT sum(a.range * b.range % 7) FROM range(1000000) a, range(1000000) b",
            limit=10,
            timeout_s=30,
            interrupter=interrupter,
        )


def test_duckdb_errors_say_why(cur: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(InvalidParameter, match=r"^sql: Binder Error: .*no_such_column"):
        run(cur, "SELECT no_such_column FROM jobs")
    with pytest.raises(InvalidParameter, match=r"^sql: Catalog Error: .*no_such_table"):
        run(cur, "SELECT * FROM no_such_table")
    with pytest.raises(InvalidParameter, match="^sql: Parser Error"):
        run(cur, "SELECT FROM WHERE")
