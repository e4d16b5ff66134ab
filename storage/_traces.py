"""``get_trace``: every span of one trace, for the job's waterfall."""

from __future__ import annotations

import re
from typing import cast

import duckdb

from jobtrail.storage._query_model import InvalidParameter, SpanRow, Trace, TraceNotFound
from jobtrail.storage._sql import fetch_dicts, parse_json, ts

_MAX_SPANS = 10_000
_TRACE_ID = re.compile(r"[0-9a-f]{32}")

Cursor = duckdb.DuckDBPyConnection


def get_trace(cur: Cursor, trace_id: str, *, max_spans: int = _MAX_SPANS) -> Trace:
    """Every span of a trace by start time, for the job's waterfall.

    ``spans`` is a raw table and client retries can store a span twice; the latest copy
    of each span id wins.

    Raises:
        InvalidParameter: ``trace_id`` is not 32 hex digits.
        TraceNotFound: No span of the trace is stored.
    """
    trace_id = trace_id.lower()
    if not _TRACE_ID.fullmatch(trace_id):
        raise InvalidParameter("expected 32 hexadecimal digits", name="trace_id")
    rows = fetch_dicts(
        cur,
        f"SELECT s.span_id, s.parent_span_id, s.name, s.kind, {ts('s.start_time')}, "
        f"{ts('s.end_time')}, s.duration_ms, s.status_code, s.status_message, s.service, "
        "s.attributes, s.events FROM spans s WHERE s.trace_id = $trace_id "
        "QUALIFY row_number() OVER (PARTITION BY s.span_id ORDER BY s.received_at DESC) = 1 "
        "ORDER BY s.start_time NULLS LAST, s.span_id LIMIT $limit",
        {"trace_id": trace_id, "limit": max_spans + 1},
    )
    if not rows:
        raise TraceNotFound(trace_id=trace_id)
    truncated = len(rows) > max_spans
    rows = rows[:max_spans]
    for row in rows:
        row["attributes"] = parse_json(row["attributes"], {})
        row["events"] = parse_json(row["events"], [])
    return {"trace_id": trace_id, "spans": cast(list[SpanRow], rows), "truncated": truncated}
