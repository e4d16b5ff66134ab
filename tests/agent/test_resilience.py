"""The agent never raises into the application and counts what it loses."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import jobtrail
from jobtrail.agent import Agent

from .conftest import Recorded, attrs, make_recorded


class RaisingSpanExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("collector down")


class RaisingLogExporter(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        raise ConnectionError("collector down")

    def shutdown(self) -> None:
        raise RuntimeError("shutdown failed too")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class RaisingSpanProcessor(SpanProcessor):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("on_start")


class RaisingLogProcessor(LogRecordProcessor):
    def on_emit(self, log_record: Any) -> None:
        raise RuntimeError("on_emit")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_raising_exporters_are_counted_not_raised() -> None:
    agent = Agent()
    agent.configure(
        span_exporter=RaisingSpanExporter(),
        log_exporter=RaisingLogExporter(),
        capture_logging=False,
        heartbeat_interval_s=0,
    )
    with agent.job("doomed export", type="t") as job:
        with job.step("s"):
            job.info("hello")
    assert agent.force_flush(timeout_s=2) is True
    stats = agent.stats()
    assert stats.spans_export_failed == 2 and stats.spans_exported == 0
    assert stats.logs_export_failed == 3  # job.started, step.started, hello
    assert stats.internal_errors >= 2
    assert agent.shutdown(timeout_s=2) is True


def test_raising_processors_do_not_break_the_job() -> None:
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(RaisingSpanProcessor())
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(RaisingLogProcessor())
    agent = Agent()
    agent.configure(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        capture_logging=False,
        heartbeat_interval_s=0,
    )
    ran = []
    with agent.job("j", type="t") as job:
        assert jobtrail.current_job() is job  # the failed span start left the job usable
        assert len(job.id) == 16
        job.info("x")
        job.progress(10)
        with job.step("s") as step:
            step.error("y")
        ran.append(True)
    assert ran == [True]
    assert job.status == "completed"
    assert agent.stats().internal_errors >= 4
    agent.shutdown(timeout_s=1)


def test_application_exception_survives_internal_failures() -> None:
    agent = Agent()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(RaisingSpanProcessor())
    agent.configure(
        tracer_provider=tracer_provider,
        capture_logging=False,
        log_exporter=InMemoryLogRecordExporter(),
        heartbeat_interval_s=0,
    )
    error = LookupError("app bug")
    with pytest.raises(LookupError) as caught:
        with agent.job("j", type="t"):
            raise error
    assert caught.value is error
    agent.shutdown(timeout_s=1)


class BlockingSpanExporter(InMemorySpanExporter):
    """Holds the first export until released, so the queue can be filled deterministically."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(5)
        return super().export(spans)


def test_queue_overflow_is_counted() -> None:
    spans = BlockingSpanExporter()
    agent = Agent()
    agent.configure(
        span_exporter=spans,
        log_exporter=InMemoryLogRecordExporter(),
        max_queue_size=2,
        span_export_delay_ms=60_000,
        capture_logging=False,
        heartbeat_interval_s=0,
    )

    def run(name: str) -> None:
        with agent.job(name, type="t"):
            pass

    run("j0")
    run("j1")  # a full batch wakes the worker, which blocks inside export
    assert spans.entered.wait(5)
    for name in ("j2", "j3", "j4", "j5"):  # the queue holds 2: j4 and j5 evict the oldest
        run(name)
    spans.release.set()
    assert agent.force_flush(timeout_s=5)
    stats = agent.stats()
    assert stats.spans_dropped == 2
    assert stats.spans_exported == 4
    assert [s.name for s in spans.get_finished_spans()] == ["j0", "j1", "j4", "j5"]
    agent.shutdown(timeout_s=1)


def test_jobs_after_shutdown_record_nothing(rec: Recorded) -> None:
    assert rec.agent.shutdown(timeout_s=1) is True
    with rec.agent.job("late", type="t") as job:
        job.info("ignored")
    assert rec.spans() == [] and rec.logs() == []
    assert job.status == "completed" and len(job.id) == 16


def test_second_configure_is_ignored_with_warning(
    rec: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobtrail.agent._agent"):
        rec.agent.configure(max_data_len=64)
    assert "configure() called again" in caplog.text
    with rec.agent.job("still recorded", type="t"):
        pass
    assert rec.span("still recorded")


def test_console_fan_out(capsys: pytest.CaptureFixture[str]) -> None:
    rec = make_recorded(console=True, log_export_delay_ms=10)
    with rec.agent.job("printed", type="demo") as job:
        with job.step("part") as step:
            step.warn("careful", n=1)
    rec.agent.force_flush(timeout_s=2)
    rec.agent.shutdown(timeout_s=1)
    err = capsys.readouterr().err
    assert f"WARN    [job {job.id} > part] careful  n=1" in err
    assert f"[job {job.id}] printed (demo) completed in" in err
    assert "STEP" in err and "part completed" in err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_is_probed_and_falls_back_to_console(
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = Agent()
    agent.configure(
        endpoint=f"127.0.0.1:{_closed_port()}",
        capture_logging=False,
        heartbeat_interval_s=0,
        export_timeout_s=0.2,
        log_export_delay_ms=10,
    )
    assert agent.stats().endpoint_reachable is False
    with agent.job("offline", type="t") as job:
        job.info("still visible")
    agent.shutdown(timeout_s=1)
    assert "still visible" in capsys.readouterr().err


def test_auto_configure_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.2")
    monkeypatch.setenv("JOBTRAIL_CAPTURE_LOGGING", "false")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "auto-svc")
    agent = Agent()
    with agent.job("auto", type="t") as job:
        pass
    state = agent._state
    assert state is not None and state.pipeline is not None
    assert state.config.protocol == "http/protobuf" and state.handlers == []
    resource = state.pipeline.tracer_provider.resource  # type: ignore[attr-defined]
    assert resource.attributes["service.name"] == "auto-svc"
    assert job.status == "completed"
    agent.shutdown(timeout_s=0.5)


def test_borrows_the_applications_sdk_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    app_provider = TracerProvider(shutdown_on_exit=False)
    spans = InMemorySpanExporter()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    app_provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: app_provider)
    agent = Agent()
    agent.configure(
        log_exporter=InMemoryLogRecordExporter(), capture_logging=False, heartbeat_interval_s=0
    )
    with agent.job("borrowed", type="t"):
        pass
    assert attrs(spans.get_finished_spans()[0])["job.type"] == "t"
    state = agent._state
    assert state is not None and state.pipeline is not None
    assert not state.pipeline.owns_tracer_provider and state.pipeline.owns_logger_provider
    agent.shutdown(timeout_s=1)
    with app_provider.get_tracer("still").start_as_current_span("alive"):
        pass  # the borrowed provider was not shut down
    assert len(spans.get_finished_spans()) == 2
