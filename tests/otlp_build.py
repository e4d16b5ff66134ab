"""Hand-built OTLP requests for tests (what any client in any language would send)."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def new_trace_id() -> bytes:
    return os.urandom(16)


def new_span_id() -> bytes:
    return os.urandom(8)


def kv(attrs: dict[str, Any]) -> list[KeyValue]:
    out = []
    for key, value in attrs.items():
        if isinstance(value, bool):
            v = AnyValue(bool_value=value)
        elif isinstance(value, int):
            v = AnyValue(int_value=value)
        elif isinstance(value, float):
            v = AnyValue(double_value=value)
        else:
            v = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=v))
    return out


def span(
    trace_id: bytes,
    span_id: bytes,
    name: str,
    attrs: dict[str, Any],
    *,
    parent: bytes = b"",
    start_ns: int | None = None,
    duration_ms: float = 10.0,
    error: str | None = None,
) -> Span:
    start = start_ns or time.time_ns()
    status = Status(code=Status.STATUS_CODE_ERROR, message=error) if error else Status()
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(duration_ms * 1e6),
        attributes=kv(attrs),
        status=status,
    )


def log(
    trace_id: bytes | None,
    span_id: bytes | None,
    body: str,
    attrs: dict[str, Any] | None = None,
    *,
    severity: int = 9,
    severity_text: str = "",
) -> LogRecord:
    return LogRecord(
        time_unix_nano=time.time_ns(),
        trace_id=trace_id or b"",
        span_id=span_id or b"",
        severity_number=severity,  # type: ignore[arg-type]
        severity_text=severity_text,
        body=AnyValue(string_value=body),
        attributes=kv(attrs or {}),
    )


def traces_request(spans: list[Span], service: str = "svc") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kv({"service.name": service}))
    rs.scope_spans.add().spans.extend(spans)
    return req


def logs_request(records: list[LogRecord], service: str = "svc") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(kv({"service.name": service}))
    rl.scope_logs.add().log_records.extend(records)
    return req


def varint(n: int) -> bytes:
    """A protobuf base-128 varint, for requests built byte by byte."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (a message, string or bytes) on the wire."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload
