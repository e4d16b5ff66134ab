"""Tracer and logger providers: borrowed from the application or created with OTLP exporters.

Under ``opentelemetry-instrument`` (or any app that set up the SDK itself) the global SDK
providers already export somewhere; the agent reuses them so jobs share the app's traces
and pipeline. Otherwise it creates its own, batching with a large queue (bounded by records and
by bytes) and a short delay so live logs reach the server within about half a second; with
``spool_dir`` its exporters keep what the collector cannot take on disk (:mod:`._spool`).
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry._logs._internal import ProxyLoggerProvider
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from ._config import PROTOCOL_HTTP, AgentConfig
from ._console import ConsoleLogExporter, ConsoleSpanExporter
from ._export import (
    CountingBatchLogRecordProcessor,
    CountingBatchSpanProcessor,
    CountingLogRecordExporter,
    CountingSpanExporter,
    run_bounded,
)
from ._otlp_sender import OtlpSender
from ._spool import Spool, SpoolingLogExporter, SpoolingSpanExporter
from ._stats import Counters

__all__ = ["Pipeline", "build_pipeline"]

_MAX_EXPORT_BATCH_SIZE = 512
_CONSOLE_QUEUE_SIZE = 10_000

#: Providers some agent created. They are never "borrowed" as if the application had set
#: them up, even after they became global.
_OWNED: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass
class Pipeline:
    """The providers an agent emits through, and whether the agent owns them."""

    tracer_provider: trace.TracerProvider
    logger_provider: _logs.LoggerProvider
    owns_tracer_provider: bool
    owns_logger_provider: bool
    uses_otlp: bool
    console_delay_ms: int
    spool: Spool | None = None
    _console: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def borrowed(self) -> bool:
        """True when at least one provider belongs to the application."""
        return not (self.owns_tracer_provider and self.owns_logger_provider)

    def enable_console(self) -> None:
        """Fan records out to stderr as well (idempotent; SDK providers only)."""
        with self._lock:
            if self._console:
                return
            delay = self.console_delay_ms
            if isinstance(self.tracer_provider, SdkTracerProvider):
                span_processor = BatchSpanProcessor(
                    ConsoleSpanExporter(),
                    max_queue_size=_CONSOLE_QUEUE_SIZE,
                    schedule_delay_millis=delay,
                )
                self._console.append(span_processor)
                self.tracer_provider.add_span_processor(span_processor)
            if isinstance(self.logger_provider, SdkLoggerProvider):
                log_processor = BatchLogRecordProcessor(
                    ConsoleLogExporter(),
                    max_queue_size=_CONSOLE_QUEUE_SIZE,
                    schedule_delay_millis=delay,
                )
                self._console.append(log_processor)
                self.logger_provider.add_log_record_processor(log_processor)

    def _flush_console(self) -> None:
        """Flush stderr output first: it is instant, unlike an export to a dead collector."""
        for processor in list(self._console):
            processor.force_flush()

    def force_flush(self, timeout_s: float) -> bool:
        """Flush both providers, waiting at most ``timeout_s`` in total."""
        millis = int(timeout_s * 1000)
        deadline = time.monotonic() + timeout_s

        def flush() -> bool:
            self._flush_console()
            ok = True
            for provider in (self.tracer_provider, self.logger_provider):
                method = getattr(provider, "force_flush", None)
                if method is not None:
                    ok = bool(method(millis)) and ok
            if self.spool is not None and self.spool.holding:
                ok = self.spool.replay(deadline) and ok
            return ok

        return run_bounded(flush, timeout_s, "flush")

    def shutdown(self, timeout_s: float) -> bool:
        """Shut down owned providers and flush borrowed ones, within ``timeout_s``."""
        millis = int(timeout_s * 1000)
        deadline = time.monotonic() + timeout_s
        pairs = (
            (self.tracer_provider, self.owns_tracer_provider),
            (self.logger_provider, self.owns_logger_provider),
        )

        def stop() -> None:
            self._flush_console()
            for provider, owned in pairs:
                if owned:
                    getattr(provider, "shutdown")()  # noqa: B009 - not on the API types
                elif (flush := getattr(provider, "force_flush", None)) is not None:
                    flush(millis)
            if self.spool is not None:  # what stays spooled waits for the next process
                self.spool.close(deadline)

        return run_bounded(stop, timeout_s, "shutdown")


def _resource(config: AgentConfig) -> Resource:
    attrs: dict[str, Any] = dict(config.resource_attributes)
    if config.service_name:
        attrs[SERVICE_NAME] = config.service_name
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME under these.
    return Resource.create(attrs)


def _exporter_kwargs(config: AgentConfig, signal: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if config.endpoint:
        is_http = config.protocol == PROTOCOL_HTTP
        kwargs["endpoint"] = f"{config.endpoint}/v1/{signal}" if is_http else config.endpoint
    if config.headers is not None:
        kwargs["headers"] = dict(config.headers)
    if config.export_timeout_s is not None:
        kwargs["timeout"] = config.export_timeout_s
    if config.insecure is not None and config.protocol != PROTOCOL_HTTP:
        kwargs["insecure"] = config.insecure
    return kwargs


def _otlp_span_exporter(config: AgentConfig) -> SpanExporter:
    # Imported lazily: the gRPC stack is slow to import and unused with http/protobuf.
    if config.protocol == PROTOCOL_HTTP:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPSpanExporter(**_exporter_kwargs(config, "traces"))


def _otlp_log_exporter(config: AgentConfig) -> LogRecordExporter:
    if config.protocol == PROTOCOL_HTTP:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (  # type: ignore[assignment]
            OTLPLogExporter,
        )
    return OTLPLogExporter(**_exporter_kwargs(config, "logs"))


def _batch_kwargs(config: AgentConfig, delay_ms: int) -> dict[str, Any]:
    return {
        "max_queue_size": config.max_queue_size,
        "schedule_delay_millis": delay_ms,
        "max_export_batch_size": min(_MAX_EXPORT_BATCH_SIZE, config.max_queue_size),
        "max_queue_bytes": int(config.max_queue_mib * 1024 * 1024),
    }


def build_pipeline(
    config: AgentConfig,
    counters: Counters,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    logger_provider: _logs.LoggerProvider | None = None,
    span_exporter: SpanExporter | None = None,
    log_exporter: LogRecordExporter | None = None,
    set_global: bool = False,
) -> Pipeline:
    """Borrow or create the providers for one agent.

    Precedence per signal: an explicit provider; else, unless a custom exporter was
    given, the application's global SDK provider; else a new provider with the custom or
    an OTLP exporter, made global only when ``set_global`` and no global was set.
    """
    uses_otlp = False
    spool: Spool | None = None

    def otlp_or_spool(signal: str) -> Any:
        """The spooling exporter when ``spool_dir`` is set (None: the plain OTLP one)."""
        nonlocal spool
        if not config.spool_dir:
            return None
        if spool is None:
            try:
                spool = Spool(config.spool_dir, int(config.spool_max_mib * 2**20),
                              OtlpSender(config), counters)  # fmt: skip
            except Exception as exc:  # an unusable directory: export without a spool
                counters.internal_error("spool directory", exc)
                return None
        cls = SpoolingSpanExporter if signal == "traces" else SpoolingLogExporter
        return cls(spool, counters)

    tp = tracer_provider
    if tp is None and span_exporter is None:
        current = trace.get_tracer_provider()
        if isinstance(current, SdkTracerProvider) and current not in _OWNED:
            tp = current
    owns_tp = tp is None
    span_queue: CountingBatchSpanProcessor | None = None
    log_queue: CountingBatchLogRecordProcessor | None = None
    if tp is None:
        sdk_tp = SdkTracerProvider(resource=_resource(config), shutdown_on_exit=False)
        uses_otlp = span_exporter is None
        spooling = None if span_exporter is not None else otlp_or_spool("traces")
        exporter = span_exporter or spooling or _otlp_span_exporter(config)
        span_queue = CountingBatchSpanProcessor(
            spooling or CountingSpanExporter(exporter, counters),
            counters,
            **_batch_kwargs(config, config.span_export_delay_ms),
        )
        sdk_tp.add_span_processor(span_queue)
        _OWNED.add(sdk_tp)
        if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(sdk_tp)
        tp = sdk_tp

    lp = logger_provider
    if lp is None and log_exporter is None:
        current_lp = _logs.get_logger_provider()
        if isinstance(current_lp, SdkLoggerProvider) and current_lp not in _OWNED:
            lp = current_lp
    owns_lp = lp is None
    if lp is None:
        # Share the tracer provider's resource so both signals name the same service.
        resource = tp.resource if isinstance(tp, SdkTracerProvider) else _resource(config)
        sdk_lp = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
        uses_otlp = uses_otlp or log_exporter is None
        log_spooling = None if log_exporter is not None else otlp_or_spool("logs")
        log_exp = log_exporter or log_spooling or _otlp_log_exporter(config)
        log_queue = CountingBatchLogRecordProcessor(
            log_spooling or CountingLogRecordExporter(log_exp, counters),
            counters,
            **_batch_kwargs(config, config.log_export_delay_ms),
        )
        sdk_lp.add_log_record_processor(log_queue)
        _OWNED.add(sdk_lp)
        if set_global and isinstance(_logs.get_logger_provider(), ProxyLoggerProvider):
            _logs.set_logger_provider(sdk_lp)
        lp = sdk_lp

    if span_queue is not None or log_queue is not None:
        counters.watch_queues(span_queue, log_queue, config.max_queue_size)
    if spool is not None:
        spool.start()
    return Pipeline(
        spool=spool,
        tracer_provider=tp,
        logger_provider=lp,
        owns_tracer_provider=owns_tp,
        owns_logger_provider=owns_lp,
        uses_otlp=uses_otlp,
        console_delay_ms=config.log_export_delay_ms,
    )
