"""One job's logs as a file: ``GET /api/jobs/{id}/logs?format=csv|jsonl|txt``.

The records are read page by page (by id) and written as they come, so a job with a million
lines is never held in memory whole; the other filters of the route still apply.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from jobtrail.api._keys import READER_KEY
from jobtrail.storage import queries

#: The download formats and their media types (``json`` is the route's normal page).
FORMATS = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "txt": "text/plain",
}
_PAGE = 5_000
_CSV_COLUMNS = (
    "id", "time", "level", "step", "category", "iostream", "message", "exception_type",
    "exception_message", "stack_trace", "data", "trace_id", "span_id", "service",
)  # fmt: skip


def _csv(rows: list[dict[str, Any]], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(_CSV_COLUMNS)
    for row in rows:
        values = [row.get(c) for c in _CSV_COLUMNS]
        values[_CSV_COLUMNS.index("data")] = orjson.dumps(row.get("data") or {}).decode()
        writer.writerow(["" if v is None else v for v in values])
    return out.getvalue()


def _jsonl(rows: list[dict[str, Any]], header: bool) -> str:
    return "".join(orjson.dumps(row).decode() + "\n" for row in rows)


def _txt(rows: list[dict[str, Any]], header: bool) -> str:
    lines = []
    for row in rows:
        step = f" [{row['step']}]" if row.get("step") else ""
        level = (row.get("level") or "").upper()
        lines.append(f"{row.get('time') or '-'} {level:<7}{step} {row.get('message') or ''}\n")
        if row.get("stack_trace"):
            lines.extend(f"    {line}\n" for line in str(row["stack_trace"]).splitlines())
    return "".join(lines)


_WRITERS: dict[str, Callable[[list[dict[str, Any]], bool], str]] = {
    "csv": _csv,
    "jsonl": _jsonl,
    "txt": _txt,
}


async def download(
    request: web.Request,
    job_id: str,
    flt: queries.LogFilter,
    *,
    after_id: int | None,
    fmt: str,
) -> web.StreamResponse:
    """Stream every matching record of the job in ``fmt``.

    Raises:
        JobNotFound: before anything is sent, so the client gets the usual 404.
    """
    reader = request.app[READER_KEY]
    page = await reader.run(queries.job_logs, job_id, flt, after_id=after_id, limit=_PAGE)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{FORMATS[fmt]}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="job-{_safe(job_id)}-logs.{fmt}"',
        }
    )
    await response.prepare(request)
    write = _WRITERS[fmt]
    first = True
    while True:
        rows: list[dict[str, Any]] = page["logs"]  # type: ignore[assignment]
        await response.write(write(rows, first).encode())
        first = False
        if len(rows) < _PAGE:
            break
        page = await reader.run(
            queries.job_logs, job_id, flt, after_id=page["next_after_id"], limit=_PAGE
        )
    await response.write_eof()
    return response


def _safe(job_id: str) -> str:
    """The job id as a file name part (anything unusual becomes ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in job_id)[:100]
