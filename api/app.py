"""``create_app``: the aiohttp application of the JSON API.

The app reads a :class:`~jobtrail.storage.Database` it does not own (the server opens and
closes it); the thread pool of read cursors is opened and closed with the app
(``cleanup_ctx``). Errors are mapped to HTTP in exactly one place, :func:`error_middleware`:
every error response, including unknown routes and wrong methods, is
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import duckdb
from aiohttp import web

from jobtrail.api._keys import (
    BROKER_KEY,
    DB_KEY,
    OPENAPI_KEY,
    READER_KEY,
    SETTINGS_KEY,
    ApiSettings,
)
from jobtrail.api._reader import QueryTimeout, Reader
from jobtrail.api.broker import Broker
from jobtrail.api.routes import error_body, json_response, routes
from jobtrail.api.sql_routes import sql_routes
from jobtrail.api.streams import stream_routes
from jobtrail.storage import Database, DatabaseError
from jobtrail.storage.queries import InvalidParameter, JobNotFound, NotFound, TraceNotFound

log = logging.getLogger(__name__)

_OPENAPI_PATH = Path(__file__).with_name("openapi.json")

#: Domain error -> (HTTP status, error code); the first matching class wins.
_ERROR_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (InvalidParameter, 400, "invalid_parameter"),
    (JobNotFound, 404, "job_not_found"),
    (TraceNotFound, 404, "trace_not_found"),
    (NotFound, 404, "not_found"),
    (QueryTimeout, 503, "query_timeout"),
    (DatabaseError, 503, "database_unavailable"),
    # Storage that cannot be read right now (a lake's catalog or object store is down).
    (duckdb.IOException, 503, "storage_unavailable"),
)
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        message = f"no such resource: {request.path}"
    elif exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        message = f"{request.method} not allowed on {request.path} (allowed: {allowed})"
    else:
        message = exc.text if exc.text and exc.content_type == "text/plain" else exc.reason
    code = _HTTP_CODES.get(exc.status, "http_error")
    response = json_response(error_body(code, message), status=exc.status)
    for name in ("Allow", "WWW-Authenticate"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors and HTTP errors into JSON error responses."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except Exception as exc:
        for kind, status, code in _ERROR_STATUS:
            if isinstance(exc, kind):
                extra = {"parameter": exc.name} if isinstance(exc, InvalidParameter) else {}
                return json_response(error_body(code, str(exc), **extra), status=status)
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_response(
            error_body("internal", "internal server error; see the server log"), status=500
        )


async def _reader_ctx(app: web.Application) -> AsyncIterator[None]:
    reader = app[READER_KEY]
    reader.start()
    try:
        yield
    finally:
        reader.close()


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    broker = app[BROKER_KEY]
    broker.start()
    try:
        yield
    finally:
        await broker.stop()


async def _end_streams(app: web.Application) -> None:
    app[BROKER_KEY].end_streams()


def create_app(
    db: Database,
    *,
    broker: Broker | None = None,
    extra_routes: Iterable[web.AbstractRouteDef] | None = None,
    query_timeout_s: float = 30.0,
    max_workers: int = 4,
) -> web.Application:
    """The API application on ``db``.

    Args:
        db: The database to read; the caller opens and closes it (after the app's cleanup).
        broker: Live fan-out fed by the writer's commits; when given, the SSE and
            WebSocket streams are served.
        extra_routes: More routes (live streams, web page, ``/metrics``), added after the
            API's own so a catch-all static route cannot shadow them.
        query_timeout_s: Longest a read may run before it is interrupted (answered 503).
        max_workers: Reads running at once.

    Example:
        >>> app = create_app(Database("jobtrail.duckdb"))  # doctest: +SKIP
        >>> web.run_app(app, port=8080)  # doctest: +SKIP
    """
    app = web.Application(middlewares=[error_middleware])
    app[DB_KEY] = db
    app[SETTINGS_KEY] = ApiSettings(query_timeout_s=query_timeout_s)
    app[READER_KEY] = Reader(db, max_workers=max_workers, timeout_s=query_timeout_s)
    app[OPENAPI_KEY] = _OPENAPI_PATH.read_bytes()
    app.cleanup_ctx.append(_reader_ctx)
    if broker is not None:
        app[BROKER_KEY] = broker
        app.cleanup_ctx.append(_broker_ctx)
        app.on_shutdown.append(_end_streams)
        app.router.add_routes(stream_routes)  # before /api/jobs/{id}, which would match them
    app.router.add_routes(routes)
    app.router.add_routes(sql_routes)
    if extra_routes is not None:
        app.router.add_routes(extra_routes)
    return app
