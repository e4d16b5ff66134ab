"""Attaching to a job that runs elsewhere (another request, process or service).

An HTTP request carrying ``X-Job-ID`` or a task message naming a job should log *into* that
job. :class:`AttachedJob` is a :class:`~jobtrail.agent.Job` handle that starts no span: it
makes the job current (so ``current_job()``, stdlib logging and child jobs see it) and
links every record to the job by ``job.id`` and, given a W3C ``traceparent``, by span
context too.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from jobtrail.semconv import JOB_ID

from ._context import CURRENT_JOB, CURRENT_STEP, restore_context
from ._encode import AttributeValue
from ._job import Job
from ._runtime import Runtime

__all__ = ["AttachedJob", "span_context_from_traceparent"]

_PROPAGATOR = TraceContextTextMapPropagator()


def span_context_from_traceparent(traceparent: str | None) -> trace.SpanContext | None:
    """Parse a W3C ``traceparent`` header; ``None`` when absent or invalid.

    Example:
        >>> sc = span_context_from_traceparent(
        ...     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        >>> format(sc.span_id, "016x")
        'b7ad6b7169203331'
    """
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent.strip()})
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


class AttachedJob(Job):
    """A running job of which this code is only a part; create it with ``attach_job``.

    Entering makes it the current job without starting a span or emitting lifecycle
    records; exiting only restores the context (the job's owner ends it), and its
    ``status`` becomes ``detached``. Logging, ``progress`` and steps work as on a job
    started here.
    """

    def __init__(
        self,
        runtime: Runtime,
        job_id: str | None,
        span_context: trace.SpanContext | None = None,
    ) -> None:
        """Prepare a handle on job ``job_id`` (and/or the span ``span_context``)."""
        super().__init__(runtime, "", type="", id=job_id or "")
        self._remote = span_context

    def _identity(self) -> dict[str, AttributeValue]:
        return self._log_attributes()

    def _log_attributes(self) -> dict[str, AttributeValue]:
        return {JOB_ID: self._id} if self._id else {}

    def _start(self) -> None:
        if self._status != "pending":
            raise RuntimeError("attached job entered twice")
        self._status = "running"
        self._parent = CURRENT_JOB.get()
        self._tokens = [
            (CURRENT_JOB, CURRENT_JOB.set(self)),
            (CURRENT_STEP, CURRENT_STEP.set(None)),
        ]
        if self._remote is not None:
            self._span = trace.NonRecordingSpan(self._remote)
            self._otel_token = otel_context.attach(trace.set_span_in_context(self._span))

    def __enter__(self) -> AttachedJob:
        """Make the job current (no span, no ``job.started``)."""
        with self._rt.counters.guard("job.attach"):
            self._start()
        return self

    def _finish(self, exc: BaseException | None) -> None:
        if self._status != "running":
            return
        self._status = "detached"
        with self._rt.counters.guard("job.detach"):
            restore_context(self._tokens, self._otel_token, {CURRENT_JOB: self._parent})
            self._tokens, self._otel_token = [], None
