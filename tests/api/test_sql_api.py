"""``POST /api/sql``: formats round-trip, limits, timeouts, the concurrency cap and 400s."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import jobtrail.api.sql_routes as sql_api

Client = TestClient[web.Request, web.Application]

JOBS_SQL = (
    "SELECT id, type, status, started_at, duration_ms, attributes FROM jobs "
    "WHERE type = ? ORDER BY id"
)
SLOW_SQL = "SELECT sum(a.range * b.range % 7) AS s FROM range(1000000) a, range(1000000) b"


async def post(client: Client, body: Any, *, status: int = 200, **kw: Any) -> Any:
    resp = await client.post("/api/sql", json=body, **kw)
    assert resp.status == status, await resp.text()
    if resp.content_type == "application/json":
        return await resp.json()
    return resp


async def test_json_result(client: Client) -> None:
    data = await post(client, {"sql": JOBS_SQL, "params": ["email"], "limit": 5})
    assert data["columns"] == ["id", "type", "status", "started_at", "duration_ms", "attributes"]
    assert data["types"] == ["VARCHAR", "VARCHAR", "VARCHAR", "TIMESTAMP", "DOUBLE", "JSON"]
    assert len(data["rows"]) == 5 and data["truncated"] is True
    assert all(row[1] == "email" for row in data["rows"])
    assert data["rows"][0][3].endswith("Z") and isinstance(data["rows"][0][5], dict)
    assert data["elapsed_ms"] >= 0


async def test_named_params_and_json_extraction(client: Client) -> None:
    data = await post(
        client,
        {"sql": "SELECT attributes->>'source' AS src FROM jobs WHERE id = $id",
         "params": {"id": "import-1"}},
    )  # fmt: skip
    assert data["rows"] == [["s3://bucket/users.csv"]] and data["truncated"] is False


async def test_csv_round_trip(client: Client) -> None:
    full = await post(client, {"sql": JOBS_SQL, "params": ["import"]})
    for kw in ({"params": {"format": "csv"}}, {"headers": {"Accept": "text/csv"}}):
        resp = await post(client, {"sql": JOBS_SQL, "params": ["import"]}, **kw)
        assert resp.content_type == "text/csv"
        assert resp.headers["X-Jobtrail-Truncated"] == "false"
        rows = list(csv.reader(io.StringIO(await resp.text())))
        assert rows[0] == full["columns"]
        assert [r[0] for r in rows[1:]] == [r[0] for r in full["rows"]]
        assert rows[1][5].startswith("{")  # JSON column as JSON text


async def test_arrow_round_trip(client: Client) -> None:
    full = await post(client, {"sql": JOBS_SQL, "params": ["email"], "limit": 1000})
    resp = await post(client, {"sql": JOBS_SQL, "params": ["email"]}, params={"format": "arrow"})
    assert resp.content_type == "application/vnd.apache.arrow.stream"
    table = pyarrow.ipc.open_stream(await resp.read()).read_all()
    assert table.column_names == full["columns"]
    assert table.column("id").to_pylist() == [r[0] for r in full["rows"]]
    assert table.schema.field("started_at").type == pa.timestamp("us")
    assert table.column("duration_ms").to_pylist() == [r[4] for r in full["rows"]]
    by_accept = await post(
        client, {"sql": "SELECT 1 AS one"},
        headers={"Accept": "application/vnd.apache.arrow.stream"},
    )  # fmt: skip
    assert pyarrow.ipc.open_stream(await by_accept.read()).read_all().to_pylist() == [{"one": 1}]


async def test_parquet_round_trip(client: Client) -> None:
    full = await post(client, {"sql": JOBS_SQL, "params": ["import"]})
    resp = await post(
        client, {"sql": JOBS_SQL, "params": ["import"], "limit": 1}, params={"format": "parquet"}
    )
    assert resp.content_type == "application/vnd.apache.parquet"
    assert resp.headers["X-Jobtrail-Truncated"] == ("true" if len(full["rows"]) > 1 else "false")
    table = pq.read_table(io.BytesIO(await resp.read()))
    assert table.num_rows == 1 and table.column("id").to_pylist() == [full["rows"][0][0]]
    dup = await post(client, {"sql": "SELECT 1 AS a, 2 AS a"}, params={"format": "parquet"})
    assert pq.read_table(io.BytesIO(await dup.read())).column_names == ["a", "a_1"]


async def test_limit_truncates(client: Client) -> None:
    data = await post(client, {"sql": "SELECT * FROM range(1000000000)", "limit": 3})
    assert data["rows"] == [[0], [1], [2]] and data["truncated"] is True


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("DROP TABLE jobs", "only SELECT statements"),
        ("SELECT 1; DROP TABLE jobs", "single statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
        ("SELECT nextval('x')", "nextval() is not allowed"),
        ("SELECT no_such_column FROM jobs", "Binder Error"),
        ("SELEC 1", "Parser Error"),
        ("SELECT * FROM no_such_table", "Catalog Error"),
    ],
)
async def test_rejected_sql_is_400(client: Client, sql: str, words: str) -> None:
    data = await post(client, {"sql": sql}, status=400)
    assert data["error"]["code"] == "invalid_sql" and data["error"]["parameter"] == "sql"
    assert words in data["error"]["message"] and "\n" not in data["error"]["message"]


@pytest.mark.parametrize(
    ("body", "query", "parameter"),
    [
        ({"sql": "SELECT 1", "limit": 0}, {}, "limit"),
        ({"sql": "SELECT 1", "limit": "10"}, {}, "limit"),
        ({"sql": "SELECT 1", "timeout_s": -1}, {}, "timeout_s"),
        ({"sql": "SELECT 1", "params": "x"}, {}, "params"),
        ({"sql": "SELECT 1", "query": "x"}, {}, "query"),
        ({"params": []}, {}, "sql"),
        ([1, 2], {}, "body"),
        ({"sql": "SELECT 1"}, {"format": "xml"}, "format"),
        ({"sql": "SELECT 1"}, {"limit": "5"}, "limit"),
    ],
)
async def test_bad_request_is_400(
    client: Client, body: Any, query: dict[str, str], parameter: str
) -> None:
    data = await post(client, body, status=400, params=query)
    assert data["error"]["code"] == "invalid_parameter"
    assert data["error"]["parameter"] == parameter


async def test_not_json_is_400(client: Client) -> None:
    resp = await client.post(
        "/api/sql", data=b"SELECT 1", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["parameter"] == "body"
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        resp = await client.post(
            "/api/sql", data=b'{"sql": "SELECT 1"}', headers={"Content-Type": content_type}
        )
        assert resp.status == 400
        assert (await resp.json())["error"]["parameter"] == "Content-Type"


async def test_get_is_405(client: Client) -> None:
    resp = await client.get("/api/sql")
    assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_timeout_is_503_and_the_server_still_answers(client: Client) -> None:
    data = await post(client, {"sql": SLOW_SQL, "timeout_s": 0.3}, status=503)
    assert data["error"]["code"] == "query_timeout"
    assert (await post(client, {"sql": "SELECT 42 AS answer"}))["rows"] == [[42]]
    assert (await client.get("/api/jobs?limit=1")).status == 200


async def test_concurrency_cap(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_api, "MAX_CONCURRENT_SQL", 1)
    slow = asyncio.create_task(client.post("/api/sql", json={"sql": SLOW_SQL, "timeout_s": 1.5}))
    for _ in range(100):  # until the slow one holds the slot
        await asyncio.sleep(0.02)
        if sql_api._running.get(client.app, 0):
            break
    busy = await client.post("/api/sql", json={"sql": "SELECT 1"})
    assert busy.status == 503 and busy.headers["Retry-After"] == "1"
    assert (await busy.json())["error"]["code"] == "sql_busy"
    assert (await client.get("/api/jobs?limit=1")).status == 200  # the API is not starved
    resp = await slow
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "query_timeout"
    assert (await post(client, {"sql": "SELECT 1 AS one"}))["rows"] == [[1]]
