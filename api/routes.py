"""Request handlers: parse and check parameters, run one query off the loop, return JSON.

Handlers stay thin on purpose: validation lives in :mod:`jobtrail.api.params`, SQL in
:mod:`jobtrail.storage.queries`, error mapping in the app's middleware.
"""

from __future__ import annotations

import asyncio
from typing import Any

import duckdb
import orjson
from aiohttp import web

from jobtrail.api import log_download
from jobtrail.api import params as p
from jobtrail.api._keys import OPENAPI_KEY, READER_KEY
from jobtrail.semconv import JOB_STATUSES, LEVELS
from jobtrail.storage import DatabaseError, queries

routes = web.RouteTableDef()

_JOB_LIST_PARAMS = frozenset(
    {"type", "status", "owner", "service", "since", "until", "q", "parent", "limit", "cursor"}
)
_JOB_LOG_PARAMS = frozenset(
    {"after_id", "level", "step", "span_id", "q", "limit", "events", "format"}
)
_LOG_PARAMS = frozenset(
    {"type", "level", "category", "service", "since", "until", "q", "limit", "after_id",
     "before_id", "job", "step", "span_id", "events"}
)  # fmt: skip
_STATS_PARAMS = frozenset({"type", "owner", "service", "since", "until", "bucket"})
_LOG_KINDS = ("job", "step", "system")
_READY_TIMEOUT_S = 5.0


def error_body(code: str, message: str, **extra: str) -> dict[str, dict[str, str]]:
    """The JSON error shape every error response uses."""
    return {"error": {"code": code, "message": message, **extra}}


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """A JSON response serialised with orjson (fast, and NaN/inf become null)."""
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers a query within a few seconds."""
    try:
        await asyncio.wait_for(request.app[READER_KEY].run(queries.ping), _READY_TIMEOUT_S)
    except (TimeoutError, queries.QueryError, DatabaseError, duckdb.Error) as exc:
        message = f"database not ready: {exc or type(exc).__name__}"
        return json_response(error_body("unavailable", message), status=503)
    return json_response({"status": "ok"})


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return web.Response(body=request.app[OPENAPI_KEY], content_type="application/json")


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """Jobs, newest first, filtered, one page per call."""
    q = request.query
    p.check_known(q, _JOB_LIST_PARAMS)
    since, until = p.get_range(q, now=p.utcnow())
    parent = p.get_str(q, "parent")
    flt = queries.JobFilter(
        type=p.get_str(q, "type"),
        statuses=p.get_list(q, "status", JOB_STATUSES),
        owner=p.get_str(q, "owner"),
        service=p.get_str(q, "service"),
        since=since,
        until=until,
        q=p.get_str(q, "q"),
        parent=None if parent == "none" else parent,
        top_level_only=parent == "none",
    )
    page = await request.app[READER_KEY].run(
        queries.list_jobs,
        flt,
        limit=p.get_limit(q, default=50, maximum=1000),
        cursor=p.get_str(q, "cursor"),
    )
    return json_response(page)


@routes.get("/api/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    """One job with steps, children, error, result and log counts."""
    p.check_known(request.query, ())
    job = await request.app[READER_KEY].run(queries.get_job, request.match_info["id"])
    return json_response(job)


@routes.get("/api/jobs/{id}/logs")
async def job_logs(request: web.Request) -> web.StreamResponse:
    """A job's logs in id order; poll with ``after_id``; ``format`` downloads them all."""
    q = request.query
    p.check_known(q, _JOB_LOG_PARAMS)
    flt = queries.LogFilter(
        levels=p.get_list(q, "level", LEVELS),
        step=p.get_str(q, "step"),
        span_id=p.get_span_id(q),
        q=p.get_str(q, "q"),
        include_events=p.get_bool(q, "events"),
    )
    after_id = p.get_int(q, "after_id", default=None, minimum=0)
    fmt = p.get_str(q, "format") or "json"
    if fmt not in ("json", *log_download.FORMATS):
        raise p.InvalidParameter(
            f"unknown format {fmt!r} (expected one of: json, {', '.join(log_download.FORMATS)})",
            name="format",
        )
    if fmt != "json":
        return await log_download.download(
            request, request.match_info["id"], flt, after_id=after_id, fmt=fmt
        )
    page = await request.app[READER_KEY].run(
        queries.job_logs,
        request.match_info["id"],
        flt,
        after_id=after_id,
        limit=p.get_limit(q, default=1000, maximum=10_000),
    )
    return json_response(page)


@routes.get("/api/logs")
async def list_logs(request: web.Request) -> web.Response:
    """All logs (job, step and system), newest page or after ``after_id``."""
    q = request.query
    p.check_known(q, _LOG_PARAMS)
    flt = p.log_filter(q, with_range=True)
    page = await request.app[READER_KEY].run(
        queries.list_logs,
        flt,
        after_id=p.get_int(q, "after_id", default=None, minimum=0),
        before_id=p.get_int(q, "before_id", default=None, minimum=1),
        limit=p.get_limit(q, default=1000, maximum=10_000),
    )
    return json_response(page)


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.Response:
    """Counts, success rate, durations, recent errors and time buckets."""
    q = request.query
    p.check_known(q, _STATS_PARAMS)
    now = p.utcnow()
    since, until = p.get_range(q, now=now)
    bucket = p.get_str(q, "bucket")
    result = await request.app[READER_KEY].run(
        queries.get_stats,
        queries.StatsFilter(
            type=p.get_str(q, "type"),
            owner=p.get_str(q, "owner"),
            service=p.get_str(q, "service"),
            since=since,
            until=until,
        ),
        bucket_s=None if bucket is None else p.parse_duration_s(bucket, name="bucket"),
        now=now,
    )
    return json_response(result)


@routes.get("/api/traces/{trace_id}")
async def get_trace(request: web.Request) -> web.Response:
    """Every span of a trace, by start time."""
    p.check_known(request.query, ())
    trace = await request.app[READER_KEY].run(queries.get_trace, request.match_info["trace_id"])
    return json_response(trace)
