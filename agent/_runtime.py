"""What a running job needs from its agent, bundled so a job never sees a half-configured agent."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.context import Context

from jobtrail.semconv import SEVERITY_BY_LEVEL

from ._config import AgentConfig
from ._emitter import Emitter
from ._heartbeat import Heartbeat
from ._stats import Counters

__all__ = ["Runtime"]


@dataclass(frozen=True)
class Runtime:
    """Tracer, log emitter, counters and options captured by a job when it is created."""

    tracer: trace.Tracer
    emitter: Emitter
    counters: Counters
    max_data_len: int
    heartbeat: Heartbeat | None = None
    #: Span context top-level jobs start under (``TRACEPARENT`` at configure).
    parent_context: Context | None = None
    #: ``job.parent_id`` of top-level jobs (``JOBTRAIL_PARENT_JOB_ID`` at configure).
    parent_job_id: str | None = None
    #: Severity number below which application log records are not sent (``min_level``).
    min_severity: int = 0

    def sends(self, level: str) -> bool:
        """Whether an application record at ``level`` is sent (lifecycle records always are)."""
        return SEVERITY_BY_LEVEL.get(level, 0) >= self.min_severity

    @classmethod
    def noop(cls, counters: Counters) -> Runtime:
        """A runtime that records nothing, used after shutdown or when configure failed."""
        return cls(
            tracer=trace.NoOpTracer(),
            emitter=Emitter(NoOpLoggerProvider(), ""),
            counters=counters,
            max_data_len=AgentConfig().max_data_len,
        )
