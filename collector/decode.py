"""Decoding OTLP Export requests into storage batches.

Each decoder walks one request, checks every record (ids, timestamps) and returns the rows
of the records that can be stored plus how many were rejected and why, so the receivers
can answer with ``partial_success`` while storing the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from jobtrail import semconv as sc
from jobtrail.collector import conventions as conv
from jobtrail.collector.log_columns import log_columns
from jobtrail.collector.span_columns import span_columns
from jobtrail.collector.values import (
    InvalidRecord,
    any_value,
    attributes,
    enum_value,
    hex_id,
    micros,
    service_of,
    to_json,
)
from jobtrail.storage.model import LOG_SCHEMA, METRIC_SCHEMA, SPAN_SCHEMA, Batch


@dataclass(slots=True)
class Decoded:
    """A decoded request: what to store, and what was rejected."""

    batch: Batch
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, exc: InvalidRecord) -> None:
        """Count one rejected record, keeping the first few reasons for the response."""
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(str(exc))

    @property
    def message(self) -> str:
        """The ``partial_success.error_message`` for this request."""
        if not self.rejected:
            return ""
        return f"{self.rejected} record(s) rejected: " + "; ".join(self.errors)


def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1e6)


def _columns(schema: pa.Schema) -> dict[str, list[Any]]:
    return {name: [] for name in schema.names}


def _as_received(request: Message, body: bytes | None, received: int | None) -> tuple[bytes, int]:
    """The bytes and receive time (µs) the column decoders read: as given, else serialized
    again and now."""
    return (
        request.SerializeToString() if body is None else body,
        _now_us() if received is None else received,
    )


#: The job/step fields of a candidate span from ``span_columns``, in its tuple's order
#: (the service comes last).
_CANDIDATE_FIELDS = (
    "trace_id", "span_id", "parent_span_id", "name", "start_us", "end_us", "status_code",
    "status_message", "attrs", "events",
)  # fmt: skip


def decode_traces(
    request: ExportTraceServiceRequest, body: bytes | None = None, *, received: int | None = None
) -> Decoded:
    """Spans to ``spans`` rows, plus job and step updates for spans that follow conventions.

    ``body`` is the request as received (serialized again when not given): its rows are
    built column-wise (:mod:`jobtrail.collector.span_columns`) when the request allows,
    span by span otherwise. ``received`` (µs since the epoch) defaults to now.
    """
    body, received = _as_received(request, body, received)
    columns = span_columns(body, received)
    if columns is None:
        return decode_traces_per_span(request, received)
    out = Decoded(Batch(spans=columns.table))
    if columns.candidates:
        seen_at = conv.ts(received)
        for *fields, service in columns.candidates:
            common = dict(zip(_CANDIDATE_FIELDS, fields, strict=True), seen_at=seen_at)
            _convention_span(out, common, service)
    return out


def _convention_span(out: Decoded, common: dict[str, Any], service: str | None) -> None:
    """The job or step update a span that follows the conventions makes."""
    attrs = common["attrs"]
    if conv.is_job_span(attrs):
        out.batch.jobs.append(conv.job_from_span(service=service, **common))
    elif conv.is_step_span(attrs):
        out.batch.steps.append(conv.step_from_span(**common))


def decode_traces_per_span(
    request: ExportTraceServiceRequest, received: int | None = None
) -> Decoded:
    """The reference decoder: every span walked in Python (any request, any value)."""
    out = Decoded(Batch())
    cols = _columns(SPAN_SCHEMA)
    if received is None:
        received = _now_us()
    seen_at = conv.ts(received)
    assert seen_at is not None
    for rs in request.resource_spans:
        res_attrs = attributes(rs.resource.attributes)
        resource = to_json(res_attrs)
        service = service_of(res_attrs)
        for ss in rs.scope_spans:
            for span in ss.spans:
                try:
                    trace_id = hex_id(span.trace_id, 16, "trace_id", required=True)
                    span_id = hex_id(span.span_id, 8, "span_id", required=True)
                    parent = hex_id(span.parent_span_id, 8, "parent_span_id", required=False)
                    start = micros(span.start_time_unix_nano, "start_time_unix_nano")
                    end = micros(span.end_time_unix_nano, "end_time_unix_nano")
                    enum_value(span.kind, "span kind", 5)
                    enum_value(span.status.code, "status code", 2)
                except InvalidRecord as exc:
                    out.reject(exc)
                    continue
                assert trace_id is not None and span_id is not None
                attrs = attributes(span.attributes)
                events = [
                    {
                        "name": e.name,
                        "time_unix_nano": e.time_unix_nano,
                        "attributes": attributes(e.attributes),
                    }
                    for e in span.events
                ]
                cols["trace_id"].append(trace_id)
                cols["span_id"].append(span_id)
                cols["parent_span_id"].append(parent)
                cols["name"].append(span.name)
                cols["kind"].append(span.kind)
                cols["start_time"].append(start)
                cols["end_time"].append(end)
                cols["duration_ms"].append((end - start) / 1000 if start and end else None)
                cols["status_code"].append(span.status.code)
                cols["status_message"].append(span.status.message or None)
                cols["service"].append(service)
                cols["attributes"].append(to_json(attrs))
                cols["events"].append(to_json(events) if events else None)
                cols["links"].append(
                    to_json(
                        [
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": attributes(link.attributes),
                            }
                            for link in span.links
                        ]
                    )
                    if span.links
                    else None
                )
                cols["resource"].append(resource)
                cols["scope_name"].append(ss.scope.name or None)
                cols["scope_version"].append(ss.scope.version or None)
                cols["received_at"].append(received)
                common = {
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "parent_span_id": parent,
                    "name": span.name,
                    "start_us": start,
                    "end_us": end,
                    "status_code": span.status.code,
                    "status_message": span.status.message,
                    "attrs": attrs,
                    "events": events,
                    "seen_at": seen_at,
                }
                _convention_span(out, common, service)
    if cols["span_id"]:
        out.batch.spans = pa.table(cols, schema=SPAN_SCHEMA)
    return out


def _body(value: Any) -> str | None:
    body = any_value(value)
    if body is None or isinstance(body, str):
        return body
    return to_json(body)


def decode_logs(
    request: ExportLogsServiceRequest, body: bytes | None = None, *, received: int | None = None
) -> Decoded:
    """Log records to ``logs`` rows, plus job/step updates for lifecycle records.

    ``body`` is the request as received (serialized again when not given): its rows are
    built column-wise (:mod:`jobtrail.collector.log_columns`) when the request allows,
    record by record otherwise. ``received`` (µs since the epoch) defaults to now.
    """
    body, received = _as_received(request, body, received)
    columns = log_columns(body, received)
    if columns is None:
        return decode_logs_per_record(request, received)
    out = Decoded(Batch(logs=columns.table))
    if columns.lifecycle:
        seen_at = conv.ts(received)
        assert seen_at is not None
        for event, trace_id, span_id, time_us, attrs, service in columns.lifecycle:
            _lifecycle(out, event, trace_id, span_id, time_us, attrs, service, seen_at)
    return out


def _lifecycle(
    out: Decoded,
    event: str,
    trace_id: str | None,
    span_id: str | None,
    time_us: int | None,
    attrs: dict[str, Any],
    service: str | None,
    seen_at: datetime,
) -> None:
    """The job and step updates one lifecycle record makes."""
    job, step_update = conv.lifecycle_updates(
        event=event,
        trace_id=trace_id,
        span_id=span_id,
        time_us=time_us,
        attrs=attrs,
        service=service,
        seen_at=seen_at,
    )
    if job is not None:
        out.batch.jobs.append(job)
    if step_update is not None:
        out.batch.steps.append(step_update)


def decode_logs_per_record(
    request: ExportLogsServiceRequest, received: int | None = None
) -> Decoded:
    """The reference decoder: every record walked in Python (any request, any value)."""
    out = Decoded(Batch())
    cols = _columns(LOG_SCHEMA)
    if received is None:
        received = _now_us()
    seen_at = conv.ts(received)
    assert seen_at is not None
    for rl in request.resource_logs:
        res_attrs = attributes(rl.resource.attributes)
        resource = to_json(res_attrs)
        service = service_of(res_attrs)
        for sl in rl.scope_logs:
            for record in sl.log_records:
                try:
                    trace_id = hex_id(record.trace_id, 16, "trace_id", required=False)
                    span_id = hex_id(record.span_id, 8, "span_id", required=False)
                    time_us = micros(record.time_unix_nano, "time_unix_nano")
                    observed = micros(record.observed_time_unix_nano, "observed_time_unix_nano")
                    enum_value(record.severity_number, "severity_number", 24)
                except InvalidRecord as exc:
                    out.reject(exc)
                    continue
                attrs = attributes(record.attributes)
                event = record.event_name or attrs.get(sc.EVENT_NAME)
                event = str(event) if event else None
                step = attrs.get(sc.JOB_STEP)
                job_id = attrs.get(sc.JOB_ID)
                cols["time"].append(time_us or observed or received)
                cols["observed_time"].append(observed)
                cols["trace_id"].append(trace_id)
                cols["span_id"].append(span_id)
                cols["severity_number"].append(record.severity_number)
                cols["severity_text"].append(record.severity_text or None)
                cols["level"].append(sc.level_for(record.severity_number, record.severity_text))
                cols["body"].append(_body(record.body))
                cols["attributes"].append(to_json(attrs))
                cols["event_name"].append(event)
                cols["job_id"].append(None if job_id is None else str(job_id))
                cols["step"].append(None if step is None else str(step))
                cols["step_span_id"].append(span_id if step is not None else None)
                category = attrs.get(sc.LOG_CATEGORY)
                cols["category"].append(None if category is None else str(category))
                iostream = attrs.get(sc.LOG_IOSTREAM)
                cols["iostream"].append(None if iostream is None else str(iostream))
                for col, key in (
                    ("exception_type", sc.EXCEPTION_TYPE),
                    ("exception_message", sc.EXCEPTION_MESSAGE),
                    ("stack_trace", sc.EXCEPTION_STACKTRACE),
                ):
                    value = attrs.get(key)
                    cols[col].append(None if value is None else str(value))
                cols["service"].append(service)
                cols["resource"].append(resource)
                cols["scope_name"].append(sl.scope.name or None)
                cols["received_at"].append(received)
                if event in sc.LIFECYCLE_EVENTS:
                    _lifecycle(
                        out, event, trace_id, span_id, time_us or observed, attrs, service,
                        seen_at,
                    )  # fmt: skip
    if cols["time"]:
        out.batch.logs = pa.table(cols, schema=LOG_SCHEMA)
    return out


_METRIC_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def decode_metrics(request: ExportMetricsServiceRequest) -> Decoded:
    """Metric data points to ``metrics`` rows (one row per data point)."""
    out = Decoded(Batch())
    cols = _columns(METRIC_SCHEMA)
    received = _now_us()
    for rm in request.resource_metrics:
        res_attrs = attributes(rm.resource.attributes)
        resource = to_json(res_attrs)
        service = service_of(res_attrs)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind not in _METRIC_KINDS:
                    continue
                for point in getattr(metric, kind).data_points:
                    try:
                        time_us = micros(point.time_unix_nano, "time_unix_nano")
                        start_us = micros(point.start_time_unix_nano, "start_time_unix_nano")
                    except InvalidRecord as exc:
                        out.reject(exc)
                        continue
                    value, data = _point_value(kind, point)
                    cols["time"].append(time_us or received)
                    cols["start_time"].append(start_us)
                    cols["name"].append(metric.name)
                    cols["description"].append(metric.description or None)
                    cols["unit"].append(metric.unit or None)
                    cols["type"].append(kind)
                    cols["value"].append(value)
                    cols["attributes"].append(to_json(attributes(point.attributes)))
                    cols["data"].append(to_json(data) if data else None)
                    cols["service"].append(service)
                    cols["resource"].append(resource)
                    cols["scope_name"].append(sm.scope.name or None)
                    cols["received_at"].append(received)
    if cols["name"]:
        out.batch.metrics = pa.table(cols, schema=METRIC_SCHEMA)
    return out


def _point_value(kind: str, point: Any) -> tuple[float | None, dict[str, Any] | None]:
    if kind in ("gauge", "sum"):
        which = point.WhichOneof("value")
        return (float(getattr(point, which)) if which else None), None
    if kind == "histogram":
        data = {
            "count": point.count,
            "sum": point.sum,
            "bucket_counts": list(point.bucket_counts),
            "explicit_bounds": list(point.explicit_bounds),
        }
        return point.sum, data
    if kind == "summary":
        data = {
            "count": point.count,
            "sum": point.sum,
            "quantiles": [[q.quantile, q.value] for q in point.quantile_values],
        }
        return point.sum, data
    return point.sum, {"count": point.count, "sum": point.sum, "scale": point.scale}
