"""Readable one-line console output of job records, on stderr.

With ``console=True``, or when the collector is unreachable at configure, records also go
to stderr (fan-out, like seed 003's stdout + DB handlers), so a developer still sees what a
job did without a server.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from jobtrail.semconv import (
    EVENT_JOB_STARTED,
    EVENT_NAME,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
    JOB_ATTEMPT,
    JOB_ID,
    JOB_NAME,
    JOB_STATUS,
    JOB_STEP,
    JOB_STEP_STATUS,
    JOB_TYPE,
    LOG_CATEGORY,
)

__all__ = ["ConsoleLogExporter", "ConsoleSpanExporter", "format_log_line", "format_span_line"]

_HIDDEN_KEYS = frozenset(
    {
        JOB_ID,
        JOB_STEP,
        EVENT_NAME,
        EXCEPTION_STACKTRACE,
        EXCEPTION_TYPE,
        EXCEPTION_MESSAGE,
        LOG_CATEGORY,
        JOB_NAME,
        JOB_ATTEMPT,
    }
)
_MAX_VALUE_CHARS = 120


def _clock(ns: int | None) -> str:
    seconds = (ns if ns is not None else time.time_ns()) / 1e9
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}"


def _where(attrs: Mapping[str, Any]) -> str:
    job_id = attrs.get(JOB_ID)
    if job_id is None:
        category = attrs.get(LOG_CATEGORY)
        return f"[{category}] " if category else ""
    step = attrs.get(JOB_STEP)
    return f"[job {job_id}{' > ' + str(step) if step else ''}] "


def _data(attrs: Mapping[str, Any]) -> str:
    parts = []
    for key, value in attrs.items():
        if key in _HIDDEN_KEYS:
            continue
        text = str(value)
        if len(text) > _MAX_VALUE_CHARS:
            text = text[: _MAX_VALUE_CHARS - 3] + "..."
        parts.append(f"{key}={text}")
    return ("  " + " ".join(parts)) if parts else ""


def format_log_line(record: ReadableLogRecord) -> str:
    """Format one log record: ``time LEVEL [job id > step] message  key=value ...``.

    Lifecycle records other than ``job.started`` show no data (their body says it all); an
    exception adds its traceback, indented, on the following lines.
    """
    log = record.log_record
    attrs: Mapping[str, Any] = log.attributes or {}
    level = (log.severity_text or "INFO").ljust(7)
    body = log.body.decode(errors="replace") if isinstance(log.body, bytes) else str(log.body)
    event = attrs.get(EVENT_NAME)
    data = _data(attrs) if event in (None, EVENT_JOB_STARTED) else ""
    line = f"{_clock(log.timestamp)} {level} {_where(attrs)}{body}{data}"
    if EXCEPTION_TYPE in attrs:
        trace = str(attrs.get(EXCEPTION_STACKTRACE) or "").rstrip()
        detail = trace or f"{attrs[EXCEPTION_TYPE]}: {attrs.get(EXCEPTION_MESSAGE, '')}"
        line += "\n" + "\n".join("    " + s for s in detail.splitlines())
    return line


def format_span_line(span: ReadableSpan) -> str | None:
    """Format the end of a job or step span; ``None`` for other spans (HTTP, DB...)."""
    attrs: Mapping[str, Any] = span.attributes or {}
    if JOB_TYPE in attrs:
        kind, status = "JOB", attrs.get(JOB_STATUS, "")
        label = f"{span.name} ({attrs[JOB_TYPE]})"
    elif JOB_STEP in attrs:
        kind, status = "STEP", attrs.get(JOB_STEP_STATUS, "")
        label = span.name
    else:
        return None
    elapsed = ""
    if span.start_time is not None and span.end_time is not None:
        elapsed = f" in {(span.end_time - span.start_time) / 1e9:.3f}s"
    where = f"[job {attrs.get(JOB_ID, '?')}] "
    return f"{_clock(span.end_time)} {kind.ljust(7)} {where}{label} {status}{elapsed}"


def _write(lines: Sequence[str]) -> None:
    if lines:
        stream = sys.stderr
        stream.write("\n".join(lines) + "\n")
        stream.flush()


class ConsoleLogExporter(LogRecordExporter):
    """Write log records to stderr, one readable line each."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Write the batch (oldest first)."""
        _write([format_log_line(r) for r in batch])
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Writes are synchronous; nothing to flush."""
        return True


class ConsoleSpanExporter(SpanExporter):
    """Write the end of each job and step span to stderr."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write one line per job/step span; ignore other spans."""
        _write([line for s in spans if (line := format_span_line(s)) is not None])
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Writes are synchronous; nothing to flush."""
        return True
