"""``POST /api/sql``: one read-only SELECT of the user's, as JSON, CSV, Arrow or Parquet.

The statement is checked and run by :mod:`jobtrail.storage.sql` (single SELECT, no file,
setting or state-changing function, read-only transaction, row and time limits). Here:
the request body, the response format, and a concurrency limit — at most
:data:`MAX_CONCURRENT_SQL` statements run at once per app, the rest get a 503 with
``Retry-After`` at once, so ad-hoc queries cannot take every read worker from the API
(the writer has its own connection and thread).

Register with ``app.router.add_routes(sql_routes)``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import weakref
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from aiohttp import web

from jobtrail.api._keys import READER_KEY, SETTINGS_KEY
from jobtrail.api._reader import QueryTimeout
from jobtrail.api.params import check_known, get_str
from jobtrail.api.routes import error_body, json_response
from jobtrail.storage.queries import InvalidParameter
from jobtrail.storage.sql import SqlInterrupter, SqlResult, SqlTimeout, run_sql

sql_routes = web.RouteTableDef()

#: Statements running at once per app; more are answered 503 immediately.
MAX_CONCURRENT_SQL = 2
_DEFAULT_LIMIT = 1000
_MAX_LIMIT = 100_000
_RETRY_AFTER_S = 1
_BODY_HINT = 'expected a JSON object like {"sql": "SELECT ...", "params": [], "limit": 1000}'
_BODY_KEYS = frozenset({"sql", "params", "limit", "timeout_s"})

ARROW_TYPE = "application/vnd.apache.arrow.stream"
PARQUET_TYPE = "application/vnd.apache.parquet"
#: ``format=`` value -> response content type.
FORMATS = {"json": "application/json", "csv": "text/csv", "arrow": ARROW_TYPE,
           "parquet": PARQUET_TYPE}  # fmt: skip
_ACCEPT = {"text/csv": "csv", ARROW_TYPE: "arrow", PARQUET_TYPE: "parquet",
           "application/x-parquet": "parquet"}  # fmt: skip

_running: weakref.WeakKeyDictionary[web.Application, int] = weakref.WeakKeyDictionary()


def _format(request: web.Request) -> str:
    """``?format=`` wins; else the first ``Accept`` type we serve; else JSON."""
    check_known(request.query, ("format",))
    name = get_str(request.query, "format")
    if name is not None:
        if name not in FORMATS:
            raise InvalidParameter(
                f"unknown format {name!r} (expected one of: {', '.join(FORMATS)})", name="format"
            )
        return name
    for part in request.headers.get("Accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPT:
            return _ACCEPT[media]
    return "json"


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidParameter(_BODY_HINT, name="body") from None
    if not isinstance(body, dict):
        raise InvalidParameter(_BODY_HINT, name="body")
    for key in body:
        if key not in _BODY_KEYS:
            expected = ", ".join(sorted(_BODY_KEYS))
            raise InvalidParameter(f"unknown field (expected: {expected})", name=str(key))
    if not isinstance(body.get("sql"), str):
        raise InvalidParameter("required: one SELECT statement as a string", name="sql")
    params = body.get("params")
    if params is not None and not isinstance(params, list | dict):
        raise InvalidParameter("expected a list (for ? / $1) or an object (for $name)",
                               name="params")  # fmt: skip
    return body


def _number(body: dict[str, Any], name: str, *, default: float, maximum: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise InvalidParameter(f"expected a number in (0, {maximum:g}], got {value!r}", name=name)
    return value


def _busy() -> web.Response:
    message = f"{MAX_CONCURRENT_SQL} SQL queries are already running; retry in {_RETRY_AFTER_S}s"
    response = json_response(error_body("sql_busy", message), status=503)
    response.headers["Retry-After"] = str(_RETRY_AFTER_S)
    return response


@sql_routes.post("/api/sql")
async def post_sql(request: web.Request) -> web.Response:
    """Run one read-only SELECT; rows as JSON (default), CSV, Arrow IPC stream or Parquet."""
    fmt = _format(request)
    if request.content_type != "application/json":
        # Also keeps other web pages from posting SQL with a simple (preflight-free) request.
        raise InvalidParameter("expected application/json", name="Content-Type")
    body = _body(await request.read())
    limit = body.get("limit", _DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
        raise InvalidParameter(f"expected an integer in [1, {_MAX_LIMIT}], got {limit!r}",
                               name="limit")  # fmt: skip
    max_timeout_s = request.app[SETTINGS_KEY].query_timeout_s
    timeout_s = _number(body, "timeout_s", default=max_timeout_s, maximum=max_timeout_s)

    app = request.app
    if _running.get(app, 0) >= MAX_CONCURRENT_SQL:
        return _busy()
    _running[app] = _running.get(app, 0) + 1
    interrupter = SqlInterrupter()
    try:
        result = await app[READER_KEY].run(
            run_sql, body["sql"], body.get("params"), limit=limit, timeout_s=timeout_s,
            as_arrow=fmt in ("arrow", "parquet"), interrupter=interrupter,
        )  # fmt: skip
    except InvalidParameter as exc:
        if exc.name != "sql":
            raise
        return json_response(error_body("invalid_sql", str(exc), parameter="sql"), status=400)
    except SqlTimeout as exc:
        raise QueryTimeout(timeout_s=exc.timeout_s) from None
    except (QueryTimeout, asyncio.CancelledError):
        interrupter.interrupt()  # the reader gave up first, or the client went away
        raise
    finally:
        _running[app] -= 1
    return await asyncio.get_running_loop().run_in_executor(None, _render, result, fmt)


def _render(result: SqlResult, fmt: str) -> web.Response:
    """The response body in ``fmt`` (off the event loop: Parquet and CSV take CPU)."""
    headers = {
        "X-Jobtrail-Truncated": "true" if result.truncated else "false",
        "X-Jobtrail-Elapsed-Ms": f"{result.elapsed_ms:.3f}",
    }
    if fmt == "json":
        data = {
            "columns": result.columns,
            "types": result.types,
            "rows": result.rows,
            "elapsed_ms": round(result.elapsed_ms, 3),
            "truncated": result.truncated,
        }
        return web.Response(body=orjson.dumps(data), content_type="application/json",
                            headers=headers)  # fmt: skip
    if fmt == "csv":
        return web.Response(body=_csv(result), headers={**headers, "Content-Type": "text/csv"})
    table = result.arrow if result.arrow is not None else pa.table({})
    sink = io.BytesIO()
    if fmt == "arrow":
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        pq.write_table(_unique_names(table), sink)
    return web.Response(body=sink.getvalue(), headers={**headers, "Content-Type": FORMATS[fmt]})


def _csv(result: SqlResult) -> bytes:
    """RFC 4180 CSV with a header row; nulls empty, nested values as JSON text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _unique_names(table: pa.Table) -> pa.Table:
    """Parquet readers want distinct column names: ``a, a`` becomes ``a, a_1``."""
    seen: dict[str, int] = {}
    names = []
    for name in table.column_names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}_{count}")
    return table.rename_columns(names)
