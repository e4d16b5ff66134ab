"""The JSON API over the sample database: shapes, filters, paging and errors."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from sample_jobs import BULK, JOB_IMPORT_LOG_IDS, LOG_COUNT, TRACE_IMPORT

import jobtrail.api
from jobtrail.api import DB_KEY, Broker, QueryTimeout, Reader, create_app
from jobtrail.storage import Database

Client = TestClient[web.Request, web.Application]

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
JOB_FIELDS = {
    "id", "trace_id", "span_id", "parent_job_id", "type", "name", "operation", "owner",
    "service", "status", "progress", "current_step", "total_steps", "attempt", "started_at",
    "ended_at", "duration_ms", "error", "result", "attributes", "last_seen", "queued_at",
    "child_count",
}  # fmt: skip
LOG_FIELDS = {
    "id", "time", "level", "severity_number", "severity_text", "message", "data", "job_id",
    "step", "step_span_id", "category", "iostream", "exception_type", "exception_message",
    "stack_trace", "trace_id", "span_id", "event_name", "service",
}  # fmt: skip


async def get(client: Client, path: str, expect: int = 200, /, **params: Any) -> Any:
    response = await client.get(path, params={k: str(v) for k, v in params.items()})
    assert response.status == expect, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def error(client: Client, path: str, expect: int, /, **params: Any) -> dict[str, str]:
    body = await get(client, path, expect, **params)
    assert set(body) == {"error"}
    return body["error"]  # type: ignore[no-any-return]


# --- health and documents -------------------------------------------------------------------


async def test_health_and_readiness(client: Client, db: Database) -> None:
    assert await get(client, "/healthz") == {"status": "ok"}
    assert await get(client, "/readyz") == {"status": "ok"}
    db.close()
    err = await error(client, "/readyz", 503)
    assert err["code"] == "unavailable"
    assert await get(client, "/healthz") == {"status": "ok"}


async def test_openapi_documents_every_route(client: Client, tmp_path: Path) -> None:
    doc = await get(client, "/api/openapi.json")
    assert doc["openapi"].startswith("3.1")
    full = jobtrail.api.create_app(
        Database(tmp_path / "full.duckdb"), broker=Broker(client.app[DB_KEY])
    )
    served = {
        (route.method, route.resource.canonical)
        for route in full.router.routes()
        if route.method not in ("HEAD", "*")
        and route.resource is not None
        and (route.resource.canonical.startswith("/api/") or route.resource.canonical.endswith("z"))
    }
    served.add(("GET", "/metrics"))  # added by the server next to the collector's counters
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    assert served == documented
    for path, ops in doc["paths"].items():
        for op in ops.values():
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"{(\w+)}", path))


def test_public_names() -> None:
    assert jobtrail.api.__all__ == [
        "DB_KEY", "READER_KEY", "ApiSettings", "Broker", "QueryTimeout", "Reader", "create_app",
        "error_body", "json_response",
    ]  # fmt: skip


async def test_unknown_route_and_wrong_method_are_json(client: Client) -> None:
    err = await error(client, "/api/nope", 404)
    assert err["code"] == "not_found" and "/api/nope" in err["message"]
    response = await client.post("/api/jobs")
    assert response.status == 405 and response.headers["Allow"]
    assert (await response.json())["error"]["code"] == "method_not_allowed"


# --- jobs -----------------------------------------------------------------------------------


async def test_jobs_list_shape_and_order(client: Client) -> None:
    page = await get(client, "/api/jobs")
    jobs = page["jobs"]
    assert len(jobs) == 36 and page["next_cursor"] is None
    assert all(set(j) == JOB_FIELDS for j in jobs)
    started = [j["started_at"] for j in jobs if j["started_at"]]
    assert started == sorted(started, reverse=True)
    assert all(RFC3339.fullmatch(s) for s in started)
    assert jobs[-1]["id"] == "pending-1"  # not started yet: last
    imp = next(j for j in jobs if j["id"] == "import-1")
    assert imp["result"] == {"rows": 300}
    assert imp["attributes"] == {"source": "s3://bucket/users.csv"}
    assert imp["child_count"] == 1 and imp["progress"] == 100


async def test_jobs_cursor_paging_visits_every_job_once(client: Client) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = await get(client, "/api/jobs", **params)
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = [j["id"] for j in (await get(client, "/api/jobs"))["jobs"]]
    assert seen == everything and len(set(seen)) == 36
    # email jobs share started_at in pairs: ties are broken by id, descending
    emails = [j for j in seen if j.startswith("email-")]
    assert emails == sorted(emails, reverse=True)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "import"}, {"import-1", "cancel-1"}),
        ({"status": "failed,cancelled", "owner": "ann"}, {"cancel-1"}),
        ({"status": "running"}, {"report-live"}),
        ({"service": "worker-b", "q": "DISK"}, {"export-1"}),
        ({"q": "index"}, {"index-1"}),
        ({"parent": "import-1"}, {"index-1"}),
        ({"q": "import", "parent": "none"}, {"import-1", "cancel-1"}),
        ({"since": "2026-11-23T08:00:00Z", "until": "2026-11-23T11:00:00+01:00"}, {"import-1",
         "index-1"}),
        ({"since": "2026-11-22", "until": "2026-11-23", "type": "import"}, {"cancel-1"}),
        ({"since": "2h"}, {"report-live"}),
    ],
)  # fmt: skip
async def test_jobs_filters(client: Client, params: dict[str, Any], expected: set[str]) -> None:
    params = {k: v for k, v in params.items() if v is not None}
    jobs = (await get(client, "/api/jobs", **params))["jobs"]
    assert {j["id"] for j in jobs} == expected


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"status": "done"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-23", "until": "2026-11-22"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"stauts": "failed"}, "stauts"),
    ],
)
async def test_jobs_bad_parameters_are_400s_naming_them(
    client: Client, params: dict[str, str], name: str
) -> None:
    err = await error(client, "/api/jobs", 400, **params)
    assert err["code"] == "invalid_parameter" and err["parameter"] == name
    assert err["message"].startswith(f"{name}: ")


async def test_job_detail(client: Client) -> None:
    job = await get(client, "/api/jobs/import-1")
    assert JOB_FIELDS <= set(job)
    assert [(s["seq"], s["name"], s["status"]) for s in job["steps"]] == [
        (1, "download", "completed"),
        (2, "transform", "completed"),
        (3, "load", "skipped"),
    ]
    assert job["children"] == [
        {"id": "index-1", "name": "rebuild index", "type": "index", "status": "completed",
         "started_at": "2026-11-23T09:01:00.000000Z", "duration_ms": 20000.0}
    ]  # fmt: skip
    assert job["log_counts"] == {"info": 12, "debug": 4, "warn": 2, "success": 1}
    failed = await get(client, "/api/jobs/export-1")
    assert failed["status"] == "failed" and failed["error_type"] == "ValueError"
    assert 'raise ValueError("disk full")' in failed["stack_trace"]
    assert failed["attempt"] == 2 and failed["steps"] == [] and failed["children"] == []
    cancelled = await get(client, "/api/jobs/cancel-1")
    assert cancelled["cancel_reason"] == "user asked"


async def test_unknown_job_is_404_json(client: Client) -> None:
    for path in ("/api/jobs/nope", "/api/jobs/nope/logs"):
        err = await error(client, path, 404)
        assert err["code"] == "job_not_found" and "nope" in err["message"]


# --- logs -----------------------------------------------------------------------------------


async def test_job_logs(client: Client) -> None:
    page = await get(client, "/api/jobs/import-1/logs")
    assert page["job"]["id"] == "import-1" and page["job"]["child_count"] == 1
    logs = page["logs"]
    assert [e["id"] for e in logs] == JOB_IMPORT_LOG_IDS
    assert page["next_after_id"] == JOB_IMPORT_LOG_IDS[-1]
    assert all(set(e) == LOG_FIELDS for e in logs)
    lines = {e["message"]: e for e in logs}
    assert lines["download line 4"]["data"] == {"line": 4}
    assert lines["download line 4"]["step"] == "download"
    assert lines["transform line 2"]["data"] == {"row": 2}  # job.* keys dropped
    assert lines["import done"]["level"] == "success" and lines["import done"]["step"] is None
    assert lines["Progress: 100%"]["iostream"] == "stdout" and lines["Progress: 100%"]["data"] == {}
    with_events = await get(client, "/api/jobs/import-1/logs", events="true")
    assert with_events["logs"][0]["event_name"] == "job.started"


async def test_job_logs_filters_and_polling(client: Client) -> None:
    path = "/api/jobs/import-1/logs"
    warns = (await get(client, path, level="warn", step="transform"))["logs"]
    assert [e["message"] for e in warns] == ["transform line 2", "transform line 5"]
    both = (await get(client, path, level="warn,success"))["logs"]
    assert {e["level"] for e in both} == {"warn", "success"}
    found = (await get(client, path, q="DOWNLOAD line 7"))["logs"]
    assert [e["message"] for e in found] == ["download line 7"]
    by_data = (await get(client, path, q="users.CSV"))["logs"]
    assert [e["message"] for e in by_data] == ["import starting"]
    assert (await get(client, path, q="100%"))["logs"][0]["message"] == "Progress: 100%"
    first = await get(client, path, limit=5)
    rest = await get(client, path, after_id=first["next_after_id"], limit=10_000)
    assert [e["id"] for e in first["logs"] + rest["logs"]] == JOB_IMPORT_LOG_IDS
    idle = await get(client, path, after_id=rest["next_after_id"])
    assert idle["logs"] == [] and idle["next_after_id"] == rest["next_after_id"]


async def test_job_logs_bad_level_names_level(client: Client) -> None:
    err = await error(client, "/api/jobs/import-1/logs", 400, level="info,verbose")
    assert err["parameter"] == "level" and "verbose" in err["message"]
    err = await error(client, "/api/jobs/import-1/logs", 400, events="maybe")
    assert err["parameter"] == "events"


async def test_all_logs(client: Client) -> None:
    newest = await get(client, "/api/logs", limit=3)
    assert [e["id"] for e in newest["logs"]] == [LOG_COUNT - 2, LOG_COUNT - 1, LOG_COUNT]
    everything = (await get(client, "/api/logs"))["logs"]
    assert len(everything) == LOG_COUNT - 1  # the lifecycle record is left out
    older = await get(client, "/api/logs", before_id=LOG_COUNT - 2, limit=2)
    assert [e["id"] for e in older["logs"]] == [LOG_COUNT - 4, LOG_COUNT - 3]
    system = (await get(client, "/api/logs", type="system"))["logs"]
    assert [e["message"] for e in system] == ["scheduler woke up", "disk almost full"]
    steps = (await get(client, "/api/logs", type="step"))["logs"]
    assert {e["step"] for e in steps} == {"download", "transform", "load"}
    own = (await get(client, "/api/logs", type="job", job="import-1"))["logs"]
    assert {e["message"] for e in own} == {"import starting", "import done"}
    exporter = (await get(client, "/api/logs", category="exporter", level="error"))["logs"]
    (failure,) = exporter
    assert failure["exception_type"] == "ValueError" and failure["exception_message"] == "disk full"
    assert failure["data"] == {"Disk": "SDA1"}
    assert (await get(client, "/api/logs", q="sda1"))["logs"] == [failure]
    cron = (await get(client, "/api/logs", service="cron", since="2026-11-23T09:00:10Z"))["logs"]
    assert [e["message"] for e in cron] == ["disk almost full"]
    tail = await get(client, "/api/logs", after_id=LOG_COUNT - 1)
    assert [e["id"] for e in tail["logs"]] == [LOG_COUNT]
    err = await error(client, "/api/logs", 400, type="jobs")
    assert err["parameter"] == "type"


# --- stats and traces -----------------------------------------------------------------------


async def test_stats(client: Client) -> None:
    stats = await get(client, "/api/stats")
    jobs = stats["jobs"]
    assert jobs["total"] == 36
    assert jobs["by_status"] == {
        "cancelled": 1, "completed": 26, "failed": 7, "pending": 1, "running": 1
    }  # fmt: skip
    assert jobs["by_type"]["email"] == {"total": BULK, "completed": 24, "failed": 6}
    assert jobs["success_rate"] == pytest.approx(26 / 33)
    assert jobs["duration_ms"]["p50"] is not None
    assert stats["logs"]["total"] == LOG_COUNT - 1
    assert stats["logs"]["by_level"]["warn"] == 3
    assert stats["logs"]["by_category"] == {"exporter": 2, "scheduler": 1, "monitor": 1}
    assert stats["recent_errors"][0]["id"] == "export-1"
    assert len(stats["recent_errors"]) == 7
    assert sum(b["total"] for b in stats["buckets"]) == 35  # pending-1 has not started


async def test_stats_with_range_and_bucket(client: Client) -> None:
    stats = await get(
        client, "/api/stats", since="2026-11-21", until="2026-11-24", bucket="1d", type="email"
    )
    assert stats["bucket"] == "1d"
    assert [(b["start"], b["total"], b["failed"]) for b in stats["buckets"]] == [
        ("2026-11-21T00:00:00.000000Z", BULK, 6),
        ("2026-11-22T00:00:00.000000Z", 0, 0),
        ("2026-11-23T00:00:00.000000Z", 0, 0),
    ]
    assert stats["jobs"]["by_status"] == {"completed": 24, "failed": 6}
    assert stats["logs"]["total"] == 0  # email jobs logged nothing


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"bucket": "hourly"}, "bucket"),
        ({"bucket": "0m"}, "bucket"),
        ({"bucket": "1s", "since": "2026-01-01", "until": "2026-11-01"}, "bucket"),
        ({"until": "soon"}, "until"),
        ({"owner": "ann", "project": "x"}, "project"),
    ],
)
async def test_stats_bad_parameters(client: Client, params: dict[str, str], name: str) -> None:
    assert (await error(client, "/api/stats", 400, **params))["parameter"] == name


async def test_trace(client: Client) -> None:
    trace = await get(client, f"/api/traces/{TRACE_IMPORT.upper()}")
    assert trace["trace_id"] == TRACE_IMPORT and trace["truncated"] is False
    spans = trace["spans"]
    assert [s["name"] for s in spans] == [
        "nightly import", "download", "GET /users.csv", "transform", "rebuild index"
    ]  # fmt: skip
    transform = spans[3]
    assert transform["attributes"]["copy"] == 2  # the retried copy, once
    assert transform["parent_span_id"] == "a1a1a1a1a1a1a1a1" and transform["events"] == []
    assert RFC3339.fullmatch(transform["start_time"])
    assert (await error(client, "/api/traces/" + "0" * 32, 404))["code"] == "trace_not_found"
    assert (await error(client, "/api/traces/xyz", 400))["parameter"] == "trace_id"


# --- app plumbing ---------------------------------------------------------------------------


async def test_extra_routes_and_error_mapping(db: Database, aiohttp_client: AiohttpClient) -> None:
    routes = web.RouteTableDef()

    @routes.get("/api/slow")
    async def slow(request: web.Request) -> web.Response:
        raise QueryTimeout(timeout_s=1)

    @routes.get("/api/boom")
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail")

    @routes.get("/api/redirect")
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/healthz")

    client = await aiohttp_client(create_app(db, extra_routes=routes))
    assert (await error(client, "/api/slow", 503))["code"] == "query_timeout"
    err = await error(client, "/api/boom", 500)
    assert err["code"] == "internal" and "secret" not in err["message"]
    assert await get(client, "/api/redirect") == {"status": "ok"}


async def test_reader_interrupts_a_query_over_its_time(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    reader = Reader(db, max_workers=1, timeout_s=0.2)
    reader.start()

    def endless(cur: Any) -> Any:
        return cur.execute("SELECT count(*) FROM range(1000000000000) a").fetchall()

    def answer(cur: Any) -> Any:
        return cur.execute("SELECT 42").fetchall()

    try:
        with pytest.raises(QueryTimeout):
            await reader.run(endless)
        # the single worker is free again (the query was interrupted, not left running)
        assert await asyncio.wait_for(reader.run(answer), 5) == [(42,)]
    finally:
        reader.close()
        db.close()


async def test_json_is_compact_utf8(client: Client) -> None:
    response = await client.get("/api/jobs/import-1")
    raw = await response.read()
    assert json.loads(raw)["id"] == "import-1"
    assert response.charset in (None, "utf-8")
