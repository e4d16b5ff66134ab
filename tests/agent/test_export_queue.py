"""The agent's log processor queues the same record the SDK's own processor would."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobtrail.agent import Agent
from jobtrail.agent._export import CountingBatchLogRecordProcessor
from jobtrail.agent._stats import Counters


def _queued(processor: Any) -> list[ReadableLogRecord]:
    return list(processor._batch_processor._queue)


def _fields(record: ReadableLogRecord) -> dict[str, Any]:
    api = dict(record.log_record.__dict__)
    api["attributes"] = dict(api["attributes"])
    return {
        "api": api,
        "resource": record.resource.attributes,
        "scope": record.instrumentation_scope,
        "limits": record.limits,
        "type": (type(record), type(record.log_record)),
    }


def test_queued_record_matches_the_sdk_processors() -> None:
    delay = {"schedule_delay_millis": 60_000}  # nothing leaves the queue during the test
    sdk = BatchLogRecordProcessor(InMemoryLogRecordExporter(), **delay)
    ours = CountingBatchLogRecordProcessor(
        InMemoryLogRecordExporter(), Counters(), max_queue_bytes=1 << 20, **delay
    )
    provider = LoggerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_log_record_processor(sdk)
    provider.add_log_record_processor(ours)
    span = TracerProvider().get_tracer("t").start_span("job")
    context = trace.set_span_in_context(span)
    try:
        provider.get_logger("scope", "1.0").emit(
            timestamp=1,
            context=context,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body="slow page",
            attributes={"page": 3, "who": "ann"},
            event_name="job.progress",
        )
        (expected,), (got,) = _queued(sdk), _queued(ours)
        assert _fields(got) == _fields(expected)
        assert got.log_record.context == {}  # the span's context is not kept while queued
        assert got.log_record.span_id == span.get_span_context().span_id
        assert got.log_record is not expected.log_record
    finally:
        provider.shutdown()


def test_stats_show_what_waits_in_the_export_queues() -> None:
    """Seeds 000 and 003 ask their loggers how much is queued and how much fits."""
    agent = Agent()
    agent.configure(
        span_exporter=InMemorySpanExporter(), log_exporter=InMemoryLogRecordExporter(),
        capture_logging=False, heartbeat_interval_s=0, max_queue_size=1000,
        log_export_delay_ms=60_000, span_export_delay_ms=60_000,
    )  # fmt: skip
    try:
        with agent.job("queued up", type="t") as job:
            for i in range(40):
                job.info("line", i=i)
        stats = agent.stats()
        # 40 lines plus job.started, sent at once without a heartbeat thread
        assert (stats.logs_queued, stats.spans_queued, stats.queue_capacity) == (41, 1, 1000)
        assert agent.force_flush(timeout_s=5)
        stats = agent.stats()
        assert (stats.logs_queued, stats.spans_queued) == (0, 0)
        assert stats.logs_exported == 41 and stats.spans_exported == 1
    finally:
        agent.shutdown(timeout_s=1)
