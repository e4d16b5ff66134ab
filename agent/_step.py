"""A step: a child span of its job, numbered in start order, ``completed|failed|skipped``."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextvars import Token
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from jobtrail.semconv import (
    EVENT_STEP_STARTED,
    JOB_ID,
    JOB_METADATA_PREFIX,
    JOB_NAME,
    JOB_PROGRESS,
    JOB_STEP,
    JOB_STEP_SEQ,
    JOB_STEP_SKIP_REASON,
    JOB_STEP_STATUS,
    JOB_TYPE,
)

from ._context import (
    CANCELLATION_EXCEPTIONS,
    CURRENT_JOB,
    CURRENT_STEP,
    ContextTokens,
    restore_context,
)
from ._encode import AttributeValue, describe_exception, encode_data, exception_attributes
from ._scope import Scope

if TYPE_CHECKING:
    from ._job import Job

__all__ = ["Step", "run_step"]


class Step(Scope):
    """One step of a job; create it with :meth:`Job.step`.

    Use it as ``with``/``async with``. It logs like a job (``step.info(...)``), its records
    carrying ``job.step`` as well as ``job.id``. Single-use, like a job.

    Example:
        >>> import jobtrail
        >>> with jobtrail.job("deploy", type="deploy") as job:
        ...     with job.step("migrate database") as step:
        ...         step.skip("no pending migrations")
        >>> step.status
        'skipped'
    """

    def __init__(self, job: Job, name: str, metadata: dict[str, Any]) -> None:
        """Prepare a step of ``job``; nothing is recorded until it is entered."""
        self._job = job
        self._rt = job._rt
        self._span: trace.Span | None = None
        self._name = str(name)
        self._metadata = metadata
        self._seq = 0
        self._status = "pending"
        self._skipped = False
        self._skip_reason: str | None = None
        self._failure: str | BaseException | None = None
        self._tokens: ContextTokens = []
        self._otel_token: Token[Context] | None = None
        self._started_record: tuple[dict[str, AttributeValue], int] | None = None

    @property
    def name(self) -> str:
        """The step name (``job.step``, also the span name)."""
        return self._name

    @property
    def seq(self) -> int:
        """The 1-based position of this step in its job (0 before start)."""
        return self._seq

    @property
    def status(self) -> str:
        """``pending``, ``running``, then ``completed``, ``failed`` or ``skipped``."""
        return self._status

    @property
    def skip_reason(self) -> str | None:
        """The reason given to :meth:`skip` (sent as ``job.step.skip_reason``)."""
        return self._skip_reason

    @property
    def job(self) -> Job:
        """The job this step belongs to."""
        return self._job

    def skip(self, reason: str | None = None) -> None:
        """Mark the step skipped; it still ends normally when its block exits.

        ``skip`` does not interrupt the code; an exception leaving the block still makes
        the step ``failed``.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("deploy", type="deploy") as job:
            ...     with job.step("notify") as step:
            ...         step.skip("no subscribers")
        """
        self._skipped = True
        self._skip_reason = None if reason is None else str(reason)

    def fail(self, error: str | BaseException) -> None:
        """Mark the step failed with ``error``; it ends as ``failed`` when its block exits.

        For failures that are not Python exceptions, as :meth:`Job.fail`: the code goes on
        and the job is not failed by it (a job decides its own status). A string becomes
        the step's error as is; an exception is recorded with its stack trace. ``fail``
        wins over :meth:`skip`.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("import", type="import") as job:
            ...     with job.step("validate") as step:
            ...         step.fail("3 rows without an id")
            >>> step.status
            'failed'
        """
        self._failure = error if isinstance(error, BaseException) else str(error)

    def __enter__(self) -> Step:
        """Start the step span as a child of the job and emit ``step.started``."""
        with self._rt.counters.guard("step.start"):
            self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the step with its final status; any exception propagates unchanged."""
        self._finish(exc)

    async def __aenter__(self) -> Step:
        """Same as ``__enter__``, for ``async with``."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Same as ``__exit__``, for ``async with``."""
        self._finish(exc)

    def _log_attributes(self) -> dict[str, AttributeValue]:
        return {JOB_ID: self._job.id, JOB_STEP: self._name}

    def _parent_context(self) -> Context | None:
        """The current context, unless it is outside the job's trace (then the job span)."""
        job_span = self._job.span
        job_trace = job_span.get_span_context().trace_id
        current_trace = trace.get_current_span().get_span_context().trace_id
        if job_span.get_span_context().is_valid and current_trace != job_trace:
            return trace.set_span_in_context(job_span)
        return None

    def _start(self) -> None:
        if self._status != "pending":
            raise RuntimeError(f"step {self._name!r} entered twice")
        self._status = "running"
        job = self._job
        self._tokens = [(CURRENT_JOB, CURRENT_JOB.set(job)), (CURRENT_STEP, CURRENT_STEP.set(self))]
        self._seq = job._next_seq(self._name)
        attrs: dict[str, AttributeValue] = {
            JOB_STEP: self._name,
            JOB_STEP_SEQ: self._seq,
            JOB_ID: job.id,
        }
        encode_data(self._metadata, self._rt.max_data_len, attrs, JOB_METADATA_PREFIX)
        span = self._rt.tracer.start_span(
            self._name, context=self._parent_context(), attributes=attrs
        )
        self._span = span
        self._otel_token = otel_context.attach(trace.set_span_in_context(span))
        record: dict[str, AttributeValue] = {
            JOB_ID: job.id,
            JOB_TYPE: job.type,
            JOB_NAME: job.name,
            JOB_STEP: self._name,
            JOB_STEP_SEQ: self._seq,
        }
        self._started_record = (record, time_ns())
        heartbeat = self._rt.heartbeat
        if heartbeat is not None and job._defer_step_start(self):
            heartbeat.soon(job)  # sent a moment later, unless the step has ended by then
        else:
            self._emit_started()

    def _emit_started(self) -> None:
        """Send ``step.started`` (once), carrying the job's progress not sent yet."""
        job = self._job
        with job._lock:
            pending, self._started_record = self._started_record, None
            if job._pending_step is self:
                job._pending_step = None
        if pending is None:
            return
        record, at = pending
        progress = job._progress_for_step_record()
        if progress is not None:
            record[JOB_PROGRESS] = progress
        self._rt.emitter.emit(
            level="info",
            body="step started",
            attributes=record,
            span=self._span,
            event_name=EVENT_STEP_STARTED,
            timestamp=at,
        )

    def _finish(self, exc: BaseException | None) -> None:
        if self._status != "running":
            return
        job = self._job
        with job._lock:  # a step.started not sent yet: the span says it all
            self._started_record = None
            if job._pending_step is self:
                job._pending_step = None
        with self._rt.counters.guard("step.finish"):
            if exc is None and isinstance(self._failure, BaseException):
                exc = self._failure
            if exc is not None or self._failure is not None:
                self._status = "failed"
            else:
                self._status = "skipped" if self._skipped else "completed"
            self._end_span(exc)
        with self._rt.counters.guard("step.restore_context"):
            restore_context(self._tokens, self._otel_token, {CURRENT_JOB: self._job})
            self._tokens, self._otel_token = [], None
        with self._rt.counters.guard("step.progress"):
            self._job._step_finished(self)

    def _end_span(self, exc: BaseException | None) -> None:
        span = self.span
        span.set_attribute(JOB_STEP_STATUS, self._status)
        if exc is not None:
            span.record_exception(exc, escaped=True)
            span.set_status(Status(StatusCode.ERROR, describe_exception(exc)))
            if not isinstance(exc, CANCELLATION_EXCEPTIONS):
                self._rt.emitter.emit(
                    level="error",
                    body=f"step {self._name!r} failed: {describe_exception(exc)}",
                    attributes={**exception_attributes(exc), **self._log_attributes()},
                    span=span,
                )
        elif self._failure is not None:  # fail() with a message
            message = str(self._failure)
            span.set_status(Status(StatusCode.ERROR, message))
            self._rt.emitter.emit(
                level="error",
                body=f"step {self._name!r} failed: {message}",
                attributes=self._log_attributes(),
                span=span,
            )
        else:
            if self._status == "skipped" and self._skip_reason is not None:
                span.set_attribute(JOB_STEP_SKIP_REASON, self._skip_reason)
            span.set_status(Status(StatusCode.OK))
        span.end()


def run_step(step: Step, fn: Callable[[Step], Any], reraise: bool) -> Any:
    """Run ``fn(step)`` inside ``step`` (see ``Job.run_step``); awaitable for coroutines."""
    if inspect.iscoroutinefunction(fn):
        return _run_step_async(step, fn, reraise)
    try:
        with step:
            return fn(step)
    except Exception:
        if reraise:
            raise
        return None


async def _run_step_async(step: Step, fn: Callable[[Step], Awaitable[Any]], reraise: bool) -> Any:
    try:
        async with step:
            return await fn(step)
    except Exception:
        if reraise:
            raise
        return None
