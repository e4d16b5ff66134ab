"""The ingest workload: realistic job traces as prebuilt OTLP request bodies.

One *unit* is ``jobs`` jobs as the jobtrail agent would export them: per job a job span and
10 step spans (8 attributes each), 20 log records per step (4 attributes each) plus the
agent's 11 lifecycle records (``job.started`` and a ``step.started`` per step; the steps are
quick, so each step's progress rides on the next ``step.started`` and the job span carries
the last). Spans go in one traces request, log records in requests of at most 512 (the
SDK's export batch size).

The bodies are serialised once. Every send patches a fresh 8-byte marker into the trace
ids and its hex form into the job ids (same length, so the protobuf framing stays valid),
so each unit is a new set of jobs to the server while the client spends no CPU building
messages. The server does all of its normal work on every request.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

STEPS_PER_JOB = 10
LOGS_PER_STEP = 20
LOG_BATCH = 512
SPANS_PER_JOB = 1 + STEPS_PER_JOB
#: user log records + job.started + step.started per step
LOGS_PER_JOB = STEPS_PER_JOB * LOGS_PER_STEP + 1 + STEPS_PER_JOB
RECORDS_PER_JOB = SPANS_PER_JOB + LOGS_PER_JOB

_SCOPE = "jobtrail.agent"


def _kv(attrs: dict[str, object]) -> list[KeyValue]:
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


def _resource(service: str) -> list[KeyValue]:
    return _kv(
        {
            "service.name": service,
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": "1.38.0",
        }
    )


@dataclass(frozen=True, slots=True)
class Unit:
    """Serialised requests of one unit, with the marker to patch before each send."""

    traces: list[bytes]
    logs: list[bytes]
    marker: bytes
    spans: int
    log_records: int

    @property
    def records(self) -> int:
        """Spans + log records in the unit."""
        return self.spans + self.log_records

    @property
    def nbytes(self) -> int:
        """Bytes of all request bodies of the unit."""
        return sum(map(len, self.traces)) + sum(map(len, self.logs))

    def patched(self, fresh: bytes) -> tuple[list[bytes], list[bytes]]:
        """The unit's bodies with ``fresh`` (8 bytes) in place of the marker."""
        old_hex, new_hex = self.marker.hex().encode(), fresh.hex().encode()

        def patch(body: bytes) -> bytes:
            return body.replace(self.marker, fresh).replace(old_hex, new_hex)

        return [patch(b) for b in self.traces], [patch(b) for b in self.logs]


def fresh_marker(generator: int, counter: int) -> bytes:
    """A per-send marker: unique per (generator, counter), random high bits per process."""
    return struct.pack(">HHI", _SALT, generator & 0xFFFF, counter & 0xFFFFFFFF)


_SALT = int.from_bytes(os.urandom(2), "big")


def build_unit(jobs: int = 40, *, service: str = "bench-worker") -> Unit:
    """Build one unit of ``jobs`` jobs (see the module docstring)."""
    marker = os.urandom(8)
    marker_hex = marker.hex()
    now = time.time_ns()
    spans: list[Span] = []
    logs: list[LogRecord] = []
    for j in range(jobs):
        trace_id = marker + os.urandom(8)
        job_span_id = os.urandom(8)
        job_id = f"{marker_hex}-{j:04d}"
        start = now - 60_000_000_000 + j * 1_000_000
        job_attrs = {
            "job.type": ("import", "export", "sync", "report")[j % 4],
            "job.name": f"nightly import {j}",
            "job.attempt": 1,
            "job.owner": ("ann", "bob", "cy")[j % 3],
            "job.total_steps": STEPS_PER_JOB,
            "job.id": job_id,
        }
        logs.append(
            LogRecord(
                time_unix_nano=start,
                observed_time_unix_nano=start,
                trace_id=trace_id,
                span_id=job_span_id,
                severity_number=9,
                severity_text="INFO",
                body=AnyValue(string_value="job started"),
                attributes=_kv({**job_attrs, "event.name": "job.started"}),
                event_name="job.started",
            )
        )
        t = start + 1_000
        for s in range(STEPS_PER_JOB):
            step_span_id = os.urandom(8)
            step = f"step-{s}"
            step_start = t
            logs.append(
                LogRecord(
                    time_unix_nano=t,
                    observed_time_unix_nano=t,
                    trace_id=trace_id,
                    span_id=step_span_id,
                    severity_number=9,
                    severity_text="INFO",
                    body=AnyValue(string_value="step started"),
                    attributes=_kv(
                        {
                            "job.id": job_id,
                            "job.type": job_attrs["job.type"],
                            "job.name": job_attrs["job.name"],
                            "job.step": step,
                            "job.step.seq": s + 1,
                            "event.name": "step.started",
                            **({"job.progress": float(s * 10)} if s else {}),
                        }
                    ),
                    event_name="step.started",
                )
            )
            for i in range(LOGS_PER_STEP):
                t += 100_000
                level = (9, 9, 9, 5, 13)[i % 5] if i != 7 or s != 3 else 17
                logs.append(
                    LogRecord(
                        time_unix_nano=t,
                        observed_time_unix_nano=t,
                        trace_id=trace_id,
                        span_id=step_span_id,
                        severity_number=level,  # type: ignore[arg-type]
                        severity_text={5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR"}[level],
                        body=AnyValue(
                            string_value=f"processed batch {i} of {step}: {i * 250} rows ok"
                        ),
                        attributes=_kv(
                            {"row": i * 250, "table": "users", "job.id": job_id, "job.step": step}
                        ),
                    )
                )
            t += 100_000
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=step_span_id,
                    parent_span_id=job_span_id,
                    name=step,
                    kind=Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=step_start,
                    end_time_unix_nano=t,
                    attributes=_kv(
                        {
                            "job.step": step,
                            "job.step.seq": s + 1,
                            "job.id": job_id,
                            "job.step.status": "completed",
                            "rows": 5000,
                            "table": "users",
                            "source": "s3://bucket/users.csv",
                            "bytes": 1_048_576,
                        }
                    ),
                    status=Status(),
                )
            )
            t += 1_000
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=job_span_id,
                name=job_attrs["job.name"],  # type: ignore[arg-type]
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start,
                end_time_unix_nano=t,
                attributes=_kv({**job_attrs, "job.status": "completed", "job.progress": 100.0}),
                status=Status(),
            )
        )
    traces_req = ExportTraceServiceRequest()
    rs = traces_req.resource_spans.add()
    rs.resource.attributes.extend(_resource(service))
    ss = rs.scope_spans.add()
    ss.scope.name = _SCOPE
    ss.spans.extend(spans)
    log_bodies = []
    for i in range(0, len(logs), LOG_BATCH):
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        rl.resource.attributes.extend(_resource(service))
        sl = rl.scope_logs.add()
        sl.scope.name = _SCOPE
        sl.log_records.extend(logs[i : i + LOG_BATCH])
        log_bodies.append(req.SerializeToString())
    return Unit(
        traces=[traces_req.SerializeToString()],
        logs=log_bodies,
        marker=marker,
        spans=len(spans),
        log_records=len(logs),
    )


def build_span_unit(spans_per_request: int = 1000, requests: int = 1) -> Unit:
    """Spans only (PERF-NOTES's workload): 4 string + 4 int attributes and 1 event each.

    Plain spans without job conventions, so this measures the span path alone.
    """
    marker = os.urandom(8)
    now = time.time_ns()
    bodies = []
    for r in range(requests):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(_resource("bench-spans"))
        ss = rs.scope_spans.add()
        ss.scope.name = "bench"
        for i in range(spans_per_request):
            trace_id = marker + struct.pack(">II", r, i // 10)
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = os.urandom(8)
            span.name = f"op-{i % 20}"
            span.kind = Span.SPAN_KIND_SERVER
            span.start_time_unix_nano = now + i * 1000
            span.end_time_unix_nano = now + i * 1000 + 5_000_000
            span.attributes.extend(
                _kv(
                    {
                        "http.method": "GET",
                        "http.route": f"/api/items/{i % 50}",
                        "net.peer.name": "10.0.0.7",
                        "user.tier": "gold",
                        "http.status_code": 200,
                        "http.response_size": 1000 + i,
                        "retry": i % 3,
                        "items": 42,
                    }
                )
            )
            event = span.events.add()
            event.name = "cache.miss"
            event.time_unix_nano = now + i * 1000 + 1000
            event.attributes.extend(_kv({"key": f"item:{i}"}))
        bodies.append(req.SerializeToString())
    return Unit(
        traces=bodies, logs=[], marker=marker, spans=spans_per_request * requests, log_records=0
    )
