"""The reference job sent with the bare OpenTelemetry SDK: only the attribute conventions.

Prints a JSON map of job name -> job id (the job span's id in hex, the conventions' default).
"""

from __future__ import annotations

import json
import os
import traceback

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "http/protobuf":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

resource = Resource.create()
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(
    BatchLogRecordProcessor(OTLPLogExporter(), max_queue_size=100_000)
)
tracer = tracer_provider.get_tracer("plain-sdk-app")
logger = logger_provider.get_logger("plain-sdk-app")

SEVERITY = {
    "debug": (SeverityNumber.DEBUG, "DEBUG"),
    "info": (SeverityNumber.INFO, "INFO"),
    "success": (SeverityNumber.INFO2, "SUCCESS"),
    "warn": (SeverityNumber.WARN, "WARN"),
    "error": (SeverityNumber.ERROR, "ERROR"),
    "fatal": (SeverityNumber.FATAL, "FATAL"),
}


def emit(level: str, message: str, **attrs: object) -> None:
    number, text = SEVERITY[level]
    logger.emit(severity_number=number, severity_text=text, body=message, attributes=attrs or None)


ids: dict[str, str] = {}
with tracer.start_as_current_span(
    "nightly import",
    attributes={
        "job.type": "import", "job.owner": "ann", "job.total_steps": 3,
        "job.metadata.source": "s3://bucket/users.csv",
    },
) as job:  # fmt: skip
    ids["nightly import"] = format(job.get_span_context().span_id, "016x")
    emit("info", "import starting", rows_expected=300)
    for seq, name in enumerate(["download", "transform"], start=1):
        with tracer.start_as_current_span(name, attributes={"job.step": name, "job.step.seq": seq}) as step:
            for i in range(100):
                level = ["debug", "info", "warn"][i % 3]
                emit(level, f"{name} line {i}", line=i)
            step.set_attribute("job.step.status", "completed")
    with tracer.start_as_current_span("load", attributes={"job.step": "load", "job.step.seq": 3}) as step:
        emit("warn", "nothing to load, skipping")
        step.set_attribute("job.step.status", "skipped")
    with tracer.start_as_current_span(
        "rebuild index", attributes={"job.type": "index", "job.owner": "ann"}
    ) as child:
        ids["rebuild index"] = format(child.get_span_context().span_id, "016x")
        emit("success", "index rebuilt", entries=300)
    emit("success", "import done", rows=300)
    job.set_attribute("job.result", json.dumps({"rows": 300}))

with tracer.start_as_current_span("broken export", attributes={"job.type": "export"}) as job:
    ids["broken export"] = format(job.get_span_context().span_id, "016x")
    try:
        raise ValueError("disk full")
    except ValueError as exc:
        job.record_exception(exc)
        job.set_status(Status(StatusCode.ERROR, "ValueError: disk full"))
        emit(
            "error", "export failed",
            **{"exception.type": "ValueError", "exception.message": "disk full",
               "exception.stacktrace": traceback.format_exc()},
        )  # fmt: skip

tracer_provider.shutdown()
logger_provider.shutdown()
print(json.dumps(ids))
