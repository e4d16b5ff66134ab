"""Exporter and processor wrappers that count what happens to every span and record.

The SDK logs export failures and queue drops but keeps no numbers an application can read;
these thin wrappers feed :class:`~jobtrail.agent.AgentStats`. They also turn an exporter
that raises into a plain ``FAILURE`` result, so a broken exporter costs one counter bump, and
bound each batch queue by bytes as well as records (:mod:`._queue_bound`).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ._queue_bound import QueueBound, ReleasingExporter, estimate_log_record, estimate_span
from ._stats import Counters, queue_length

__all__ = [
    "CountingBatchLogRecordProcessor",
    "CountingBatchSpanProcessor",
    "CountingLogRecordExporter",
    "CountingSpanExporter",
    "run_bounded",
]


def _shutdown_inner(exporter: Any, timeout_millis: float) -> None:
    """Shut down ``exporter``, passing the time bound when its signature accepts one."""
    if "timeout_millis" in inspect.signature(exporter.shutdown).parameters:
        exporter.shutdown(timeout_millis=timeout_millis)
    else:
        exporter.shutdown()


class CountingSpanExporter(SpanExporter):
    """Delegate to ``inner``; count exported and failed spans; never raise."""

    def __init__(self, inner: SpanExporter, counters: Counters) -> None:
        """Wrap ``inner``."""
        self._inner = inner
        self._counters = counters

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export and count; an exception counts as a failed batch."""
        try:
            result = self._inner.export(spans)
        except Exception as exc:
            self._counters.add("spans_export_failed", len(spans))
            self._counters.internal_error("span exporter", exc)
            return SpanExportResult.FAILURE
        name = "spans_exported" if result is SpanExportResult.SUCCESS else "spans_export_failed"
        self._counters.add(name, len(spans))
        return result

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut down the wrapped exporter."""
        with self._counters.guard("span exporter shutdown"):
            _shutdown_inner(self._inner, timeout_millis)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        with self._counters.guard("span exporter flush"):
            return self._inner.force_flush(timeout_millis)
        return False


class CountingLogRecordExporter(LogRecordExporter):
    """Delegate to ``inner``; count exported and failed log records; never raise."""

    def __init__(self, inner: LogRecordExporter, counters: Counters) -> None:
        """Wrap ``inner``."""
        self._inner = inner
        self._counters = counters

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export and count; an exception counts as a failed batch."""
        try:
            result = self._inner.export(batch)
        except Exception as exc:
            self._counters.add("logs_export_failed", len(batch))
            self._counters.internal_error("log exporter", exc)
            return LogRecordExportResult.FAILURE
        ok = result is LogRecordExportResult.SUCCESS
        self._counters.add("logs_exported" if ok else "logs_export_failed", len(batch))
        return result

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut down the wrapped exporter."""
        with self._counters.guard("log exporter shutdown"):
            _shutdown_inner(self._inner, timeout_millis)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        with self._counters.guard("log exporter flush"):
            return self._inner.force_flush(timeout_millis)
        return False


def _queue_full(processor: Any) -> bool:
    """Whether the SDK batch queue is at capacity (the next item evicts the oldest).

    Reads the SDK's private ``BatchProcessor`` state; if a future SDK renames it, drops
    simply stop being counted.
    """
    capacity = getattr(getattr(processor, "_batch_processor", None), "_max_queue_size", None)
    return capacity is not None and queue_length(processor) >= capacity


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """``BatchSpanProcessor`` that counts evicted spans and bounds its queue by bytes too."""

    def __init__(
        self,
        exporter: SpanExporter,
        counters: Counters,
        *,
        max_queue_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the processor; ``kwargs`` go to ``BatchSpanProcessor``."""
        self._bound = (
            QueueBound(max_queue_bytes, estimate_span, counters, "spans_dropped", "span")
            if max_queue_bytes
            else None
        )
        if self._bound is not None:
            exporter = ReleasingExporter(exporter, self._bound)  # type: ignore[assignment]
        super().__init__(exporter, **kwargs)
        self._counters = counters
        self._enqueue = partial(BatchSpanProcessor.on_end, self)

    @property
    def queued_bytes(self) -> int:
        """Estimated bytes of the spans queued or being exported (0 when not bounded)."""
        return self._bound.queued_bytes if self._bound is not None else 0

    def on_end(self, span: ReadableSpan) -> None:
        """Queue ``span``, making room (and counting drops) when the queue is full."""
        if span.context is None or not span.context.trace_flags.sampled:
            return
        if self._bound is not None:
            batch = getattr(self, "_batch_processor", None)
            self._bound.admit(span, batch, self._enqueue)
            return
        if _queue_full(self):
            self._counters.add("spans_dropped")
        super().on_end(span)


class CountingBatchLogRecordProcessor(BatchLogRecordProcessor):
    """``BatchLogRecordProcessor`` that counts evicted records and bounds its queue by bytes."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        counters: Counters,
        *,
        max_queue_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the processor; ``kwargs`` go to ``BatchLogRecordProcessor``."""
        self._bound = (
            QueueBound(max_queue_bytes, estimate_log_record, counters, "logs_dropped", "log")
            if max_queue_bytes
            else None
        )
        if self._bound is not None:
            exporter = ReleasingExporter(exporter, self._bound)  # type: ignore[assignment]
        super().__init__(exporter, **kwargs)
        self._counters = counters

    @property
    def queued_bytes(self) -> int:
        """Estimated bytes of the records queued or being exported (0 when not bounded)."""
        return self._bound.queued_bytes if self._bound is not None else 0

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue ``log_record``, making room (and counting drops) when the queue is full."""
        if self._bound is not None:
            batch = getattr(self, "_batch_processor", None)
            emit = getattr(batch, "emit", None)
            if emit is not None and type(log_record.log_record) is LogRecord:
                self._bound.admit(_readable(log_record), batch, emit)
            else:  # an SDK of another shape: its own conversion
                self._bound.admit(log_record, batch, partial(BatchLogRecordProcessor.on_emit, self))
            return
        if _queue_full(self):
            self._counters.add("logs_dropped")
        super().on_emit(log_record)


#: The context queued records carry: none (as the SDK's own processor does), shared.
_NO_CONTEXT = Context()


def _readable(record: ReadWriteLogRecord) -> ReadableLogRecord:
    """What the SDK's ``BatchLogRecordProcessor.on_emit`` queues, without ``copy.copy``.

    The SDK queues a shallow copy of the API record without its context (which can hold
    large values) through ``copy.copy``, the generic protocol (~3 us a record, a tenth of
    the record's cost). The copy here is the same: a new object sharing the same fields.
    """
    api = record.log_record
    clone = object.__new__(LogRecord)
    clone.__dict__.update(api.__dict__)
    clone.context = _NO_CONTEXT
    return ReadableLogRecord(
        log_record=clone,
        resource=record.resource if record.resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )


def run_bounded(fn: Callable[[], object], timeout_s: float, name: str) -> bool:
    """Run ``fn`` on a daemon thread and wait at most ``timeout_s`` seconds.

    The SDK's flush and shutdown ignore their timeouts in places (an export blocked on an
    unreachable collector), so the caller's wait is bounded here instead; a daemon thread
    left behind cannot keep the interpreter alive.

    Returns:
        True if ``fn`` finished in time and returned a truthy value or ``None``.
    """
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(fn())
        except Exception:
            outcome.append(False)

    thread = threading.Thread(target=target, name=f"jobtrail-{name}", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout_s))
    if thread.is_alive():
        return False
    return bool(outcome) and (outcome[0] is None or bool(outcome[0]))
