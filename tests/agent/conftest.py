"""Fixtures: an explicit Agent on in-memory exporters with synchronous processors.

Nothing here touches the network or the OTel globals, so tests are fast and independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobtrail.agent import Agent
from jobtrail.semconv import EVENT_NAME


@dataclass
class Recorded:
    """An agent plus what it exported."""

    agent: Agent
    span_exporter: InMemorySpanExporter
    log_exporter: InMemoryLogRecordExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.span_exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        matches = [s for s in self.spans() if s.name == name]
        assert len(matches) == 1, [s.name for s in self.spans()]
        return matches[0]

    def logs(self) -> list[Any]:
        """The API LogRecords, oldest first."""
        return [r.log_record for r in self.log_exporter.get_finished_logs()]

    def events(self, name: str) -> list[Any]:
        return [r for r in self.logs() if (r.attributes or {}).get(EVENT_NAME) == name]

    def plain_logs(self) -> list[Any]:
        """Records that are not lifecycle events."""
        return [r for r in self.logs() if EVENT_NAME not in (r.attributes or {})]


def make_recorded(**options: Any) -> Recorded:
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    agent = Agent()
    options.setdefault("capture_logging", False)
    options.setdefault("heartbeat_interval_s", 0)
    agent.configure(tracer_provider=tracer_provider, logger_provider=logger_provider, **options)
    return Recorded(agent, spans, logs)


@pytest.fixture
def rec() -> Iterator[Recorded]:
    recorded = make_recorded()
    yield recorded
    recorded.agent.shutdown(timeout_s=1)


def attrs(obj: Any) -> dict[str, Any]:
    """Attributes of a span or log record as a plain dict."""
    return dict(obj.attributes or {})


def span_hex(span: Any) -> str:
    return format(span.context.span_id, "016x")
