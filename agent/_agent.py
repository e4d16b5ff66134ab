"""The :class:`Agent`: providers, configuration and the job factory.

Module-level functions (``jobtrail.job``, ``jobtrail.configure``...) delegate to one default
instance, as Logfire does; build another ``Agent`` when you need two independent pipelines
(or, in tests, in-memory exporters).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.trace.export import SpanExporter

from ._config import AgentConfig, resolve_config
from ._enqueue import EnqueueMixin
from ._execute import ExecuteMixin
from ._job import Job
from ._logging_handler import instrument_logger, level_number
from ._pipeline import Pipeline, build_pipeline
from ._runtime import Runtime
from ._startup import AgentState, probe_collector, start_state
from ._stats import AgentStats, Counters

__all__ = ["Agent"]

_logger = logging.getLogger(__name__)

_DEFAULT_TIMEOUT_S = 5.0
_DEAD_COLLECTOR_EXIT_TIMEOUT_S = 0.5


class Agent(ExecuteMixin, EnqueueMixin):
    """One jobtrail pipeline: OTel providers, options, and the jobs started through it.

    An agent configures itself from the environment on first use; call :meth:`configure`
    first to pass options. ``configure`` takes effect once: later calls are ignored with a
    warning until :meth:`shutdown` (reconfiguring under running jobs would lose their
    spans, and a global provider cannot be replaced anyway).

    Args:
        set_global: Install created providers as the OTel globals when none are set. The
            default agent does; explicit instances default to staying private.
        console_fallback: Print records on stderr when the collector is unreachable at
            configure (``jobtrail run`` turns this off to keep the command's output as is).

    Example:
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter)
        >>> from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        >>> agent = Agent()
        >>> agent.configure(span_exporter=InMemorySpanExporter(),
        ...                 log_exporter=InMemoryLogRecordExporter(), capture_logging=False)
        >>> with agent.job("reindex", type="maintenance") as job:
        ...     job.info("done")
        >>> agent.shutdown()
        True
    """

    def __init__(self, *, set_global: bool = False, console_fallback: bool = True) -> None:
        """Create an unconfigured agent (nothing starts until first use or configure)."""
        self._set_global = set_global
        self._console_fallback = console_fallback
        self._lock = threading.RLock()
        self._counters = Counters()
        self._noop = Runtime.noop(self._counters)
        self._state: AgentState | None = None
        self._shut_down = False

    # -- configuration ----------------------------------------------------------------------
    def configure(
        self,
        *,
        service_name: str | None = None,
        endpoint: str | None = None,
        protocol: str | None = None,
        headers: Mapping[str, str] | None = None,
        resource_attributes: Mapping[str, str | bool | int | float] | None = None,
        console: bool | None = None,
        capture_logging: bool | None = None,
        log_export_delay_ms: int | None = None,
        span_export_delay_ms: int | None = None,
        max_queue_size: int | None = None,
        max_queue_mib: float | None = None,
        max_data_len: int | None = None,
        insecure: bool | None = None,
        export_timeout_s: float | None = None,
        heartbeat_interval_s: float | None = None,
        shutdown_timeout_s: float | None = None,
        spool_dir: str | None = None,
        spool_max_mib: float | None = None,
        min_level: str | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        logger_provider: _logs.LoggerProvider | None = None,
        span_exporter: SpanExporter | None = None,
        log_exporter: LogRecordExporter | None = None,
    ) -> None:
        """Set up export. Every option falls back to its env variable, then its default.

        Args:
            service_name: ``service.name`` (env ``OTEL_SERVICE_NAME``).
            endpoint: Collector base URL (env ``OTEL_EXPORTER_OTLP_ENDPOINT``; default
                ``http://localhost:4317``, or ``:4318`` for HTTP). A bare ``host:port``
                gets ``http://``.
            protocol: ``grpc`` or ``http/protobuf`` (env ``OTEL_EXPORTER_OTLP_PROTOCOL``).
            headers: Export headers (env ``OTEL_EXPORTER_OTLP_HEADERS``).
            resource_attributes: Extra resource attributes, merged over
                ``OTEL_RESOURCE_ATTRIBUTES``.
            console: Also print records on stderr (env ``JOBTRAIL_CONSOLE``; default off,
                switched on automatically if the endpoint is unreachable at configure).
            capture_logging: Install a root ``logging`` handler (env
                ``JOBTRAIL_CAPTURE_LOGGING``; default on).
            log_export_delay_ms: Log batch delay (env ``JOBTRAIL_LOG_EXPORT_DELAY_MS``,
                ``OTEL_BLRP_SCHEDULE_DELAY``; default 200).
            span_export_delay_ms: Span batch delay (env ``JOBTRAIL_SPAN_EXPORT_DELAY_MS``,
                ``OTEL_BSP_SCHEDULE_DELAY``; default 200).
            max_queue_size: Per-signal export queue (env ``JOBTRAIL_MAX_QUEUE_SIZE``;
                default 100000); overflow drops the oldest and is counted.
            max_queue_mib: Per-signal bound of the same queue in (estimated) MiB (env
                ``JOBTRAIL_MAX_QUEUE_MIB``; default 32): records with large attributes
                reach it before the record count does.
            max_data_len: Longest string attribute from log data and metadata before
                middle truncation (env ``JOBTRAIL_MAX_DATA_LEN``; default 1024, min 16).
            insecure: gRPC without TLS (default: from the endpoint scheme).
            export_timeout_s: Per-export timeout (default: the exporter's, 10 s).
            heartbeat_interval_s: ``job.heartbeat`` period for running jobs (env
                ``JOBTRAIL_HEARTBEAT_INTERVAL_S``; default 30; 0 disables, and then
                ``job.started``/``step.started`` are sent at once, for every job and step,
                rather than only for those still running 0.2 s later).
            shutdown_timeout_s: Bound of the flush at interpreter exit (env
                ``JOBTRAIL_SHUTDOWN_TIMEOUT_S``; default 5).
            spool_dir: Directory where OTLP export batches wait, on disk, while the
                collector is unreachable; sent in order when it is back, also by the next
                process (env ``JOBTRAIL_SPOOL_DIR``; default: no spool).
            spool_max_mib: Size cap of ``spool_dir``; the oldest batches go first (env
                ``JOBTRAIL_SPOOL_MAX_MIB``; default 128).
            min_level: Lowest level of application records sent: job and step log calls,
                records from logging libraries and captured program output (env
                ``JOBTRAIL_MIN_LEVEL``; ``debug|info|success|warn|error|fatal``, default
                ``debug``). Lifecycle records and the records of failed jobs and steps are
                always sent. A record below it is dropped before anything is encoded.
            tracer_provider: Use this provider (never shut down by the agent).
            logger_provider: Use this provider (never shut down by the agent).
            span_exporter: Export spans here instead of OTLP (agent-owned provider).
            log_exporter: Export log records here instead of OTLP (agent-owned provider).

        Raises:
            ValueError: An explicit option is invalid (bad env values only warn).

        Example:
            >>> import jobtrail
            >>> jobtrail.configure(service_name="billing-worker", console=True)  # doctest: +SKIP
        """
        config = resolve_config(
            service_name=service_name,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            resource_attributes=resource_attributes,
            console=console,
            capture_logging=capture_logging,
            log_export_delay_ms=log_export_delay_ms,
            span_export_delay_ms=span_export_delay_ms,
            max_queue_size=max_queue_size,
            max_queue_mib=max_queue_mib,
            max_data_len=max_data_len,
            insecure=insecure,
            export_timeout_s=export_timeout_s,
            heartbeat_interval_s=heartbeat_interval_s,
            shutdown_timeout_s=shutdown_timeout_s,
            spool_dir=spool_dir,
            spool_max_mib=spool_max_mib,
            min_level=min_level,
        )
        explicit = (tracer_provider, logger_provider, span_exporter, log_exporter)
        with self._lock:
            if self._state is not None:
                if config != self._state.config or any(x is not None for x in explicit):
                    _logger.warning(
                        "jobtrail: configure() called again with other options; ignored "
                        "(call shutdown() first to reconfigure)"
                    )
                return
            try:
                pipeline = build_pipeline(
                    config,
                    self._counters,
                    tracer_provider=tracer_provider,
                    logger_provider=logger_provider,
                    span_exporter=span_exporter,
                    log_exporter=log_exporter,
                    set_global=self._set_global,
                )
                self._state = self._start(config, pipeline)
            except Exception as exc:
                self._counters.internal_error("configure", exc)
                self._state = AgentState(config=config, runtime=self._noop)
            self._shut_down = False

    def _start(self, config: AgentConfig, pipeline: Pipeline) -> AgentState:
        state = start_state(config, pipeline, self._counters)
        if pipeline.owns_tracer_provider or pipeline.owns_logger_provider:
            atexit.register(self._atexit)
        if pipeline.uses_otlp and not config.console:
            probe_collector(
                config,
                pipeline,
                self._counters,
                console_fallback=self._console_fallback,
                logger=_logger,
            )
        return state

    def instrument_logging(
        self, level: int | str | None = logging.INFO, *, logger: logging.Logger | str | None = None
    ) -> None:
        """Export stdlib ``logging`` records: the one call that captures an app's logs.

        Idempotent. Installs the agent's handler on ``logger`` (default: the root logger)
        unless a jobtrail or OTel handler already receives its records (``configure``
        installs one on the root logger unless ``capture_logging=False``), and makes sure
        records at ``level`` get through: the handler's level becomes ``level`` and the
        logger's is lowered to it if needed (never raised). Inside a job, records belong
        to the job and step; outside, they are system logs with ``log.category`` (the
        logger name) and ``log.source`` (``module:lineno``). ``exc_info`` becomes a stack
        trace, ``extra`` fields become data.

        Args:
            level: Lowest level captured (``None``: leave levels alone).
            logger: The logger (or its name) whose records to capture.

        Raises:
            ValueError: ``level`` is not a level name or number.

        Example:
            >>> import logging, jobtrail
            >>> jobtrail.instrument_logging(logging.INFO)
            >>> logging.getLogger("billing").info("invoice sent", extra={"invoice": 42})
        """
        target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        levelno = None if level is None else level_number(level)
        self._runtime()  # configure from the environment on first use
        with self._lock, self._counters.guard("instrument_logging"):
            state = self._state
            if state is not None and state.pipeline is not None:
                instrument_logger(state.handlers, state.runtime, target, levelno)

    def _runtime(self) -> Runtime:
        state = self._state
        if state is None and not self._shut_down:
            with self._counters.guard("auto-configure"):
                self.configure()
            state = self._state
        return state.runtime if state is not None else self._noop

    # -- jobs ----------------------------------------------------------------------------------
    def job(
        self,
        name: str,
        /,
        *,
        type: str,
        owner: str | None = None,
        operation: str | None = None,
        total_steps: int | None = None,
        id: str | None = None,
        attempt: int = 1,
        **metadata: Any,
    ) -> Job:
        """Create a job; run it with ``with``/``async with``.

        Args:
            name: Job name (span name, ``job.name``); positional-only so ``name`` stays
                free as a metadata key.
            type: Job type (``job.type``); required, it is what makes a span a job.
            owner: Who started it (``job.owner``).
            operation: Finer classification than type (``job.operation``).
            total_steps: Expected step count; enables automatic progress per step.
            id: Job id (``job.id``); default: the span id as 16 hex digits.
            attempt: 1-based attempt number for retries (``job.attempt``).
            **metadata: Exported as ``job.metadata.<key>`` (non-primitives as JSON).

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("import users", type="import", owner="ops", source="crm") as job:
            ...     job.progress(50)
        """
        try:
            return Job(
                self._runtime(),
                name,
                type=type,
                owner=owner,
                operation=operation,
                total_steps=total_steps,
                id=id,
                attempt=attempt,
                metadata=metadata,
            )
        except Exception as exc:
            self._counters.internal_error("job", exc)
            return Job(self._noop, str(name), type=str(type))

    # -- lifecycle --------------------------------------------------------------------------------
    def force_flush(self, timeout_s: float = _DEFAULT_TIMEOUT_S) -> bool:
        """Export everything queued so far, waiting at most ``timeout_s``.

        Returns:
            True if everything was exported in time.

        Example:
            >>> import jobtrail
            >>> jobtrail.force_flush(timeout_s=1.0)  # doctest: +SKIP
            True
        """
        with self._counters.guard("force_flush"):
            state = self._state
            if state is None or state.pipeline is None:
                return True
            if state.runtime.heartbeat is not None:  # lifecycle records still waiting
                state.runtime.heartbeat.flush_now()
            ok = state.pipeline.force_flush(timeout_s)
            if not ok:
                self._counters.add("flush_timeouts")
            return ok
        return False

    def shutdown(self, timeout_s: float = _DEFAULT_TIMEOUT_S) -> bool:
        """Flush and stop: shut down providers the agent created, flush borrowed ones.

        Bounded by ``timeout_s``. Jobs started afterwards record nothing until
        :meth:`configure` is called again. Also runs at interpreter exit.

        Returns:
            True if everything was flushed in time.

        Example:
            >>> import jobtrail
            >>> jobtrail.shutdown(timeout_s=2.0)  # doctest: +SKIP
            True
        """
        with self._lock:
            state, self._state = self._state, None
            self._shut_down = True
        if state is None:
            return True
        with self._counters.guard("shutdown"):
            atexit.unregister(self._atexit)
            for logger, handler in state.handlers:
                logger.removeHandler(handler)
            if state.runtime.heartbeat is not None:
                state.runtime.heartbeat.stop()
                state.runtime.heartbeat.flush_now()
            if state.pipeline is None:
                return True
            ok = state.pipeline.shutdown(timeout_s)
            if not ok:
                self._counters.add("flush_timeouts")
            return ok
        return False

    def _atexit(self) -> None:
        state = self._state
        if state is None:
            return
        timeout_s = state.config.shutdown_timeout_s
        stats = self._counters.snapshot()
        if stats.endpoint_reachable is False and not (stats.spans_exported or stats.logs_exported):
            # Nothing ever reached the collector: don't hold the exit for an export that
            # will time out (records already went to stderr).
            timeout_s = min(timeout_s, _DEAD_COLLECTOR_EXIT_TIMEOUT_S)
        self.shutdown(timeout_s)

    def stats(self) -> AgentStats:
        """Return a snapshot of export, drop and internal-error counters.

        Example:
            >>> import jobtrail
            >>> jobtrail.agent_stats().spans_dropped
            0
        """
        return self._counters.snapshot()
