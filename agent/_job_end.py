"""How a job ends: its final status, and the attributes and status its span closes with.

The span is what settles a job's row at the collector, whatever lifecycle records said
before, so everything it must carry at the end (status, progress, current step, result,
retry flag, error) is decided here in one place; :mod:`._job` keeps the running job.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from jobtrail.semconv import (
    JOB_CANCEL_REASON,
    JOB_CURRENT_STEP,
    JOB_ID,
    JOB_PROGRESS,
    JOB_RESULT,
    JOB_STATUS,
    JOB_WILL_RETRY,
)

from ._context import CANCELLATION_EXCEPTIONS
from ._encode import describe_exception, exception_attributes, json_text
from ._runtime import Runtime

__all__ = ["UNSET", "JobEnd"]

#: ``Job.result`` before anything was assigned (``None`` is a result like any other).
UNSET: Any = object()


class JobEnd:
    """The ending half of :class:`~jobtrail.agent.Job` (its state lives there)."""

    _rt: Runtime
    _id: str
    _percent: float
    _current_step: str | None
    _result: Any
    _cancel_reason: str | None
    _cancelled: bool
    _failure: str | BaseException | None
    will_retry: bool

    @property
    def span(self) -> trace.Span:
        """The job's span; :class:`~._scope.Scope`'s, which comes first in Job's bases."""
        raise NotImplementedError

    def _final_status(self, exc: BaseException | None) -> str:
        if self._cancelled:
            return "cancelled"
        if exc is None:
            return "completed" if self._failure is None else "failed"
        if isinstance(exc, CANCELLATION_EXCEPTIONS):
            if self._cancel_reason is None:
                self._cancel_reason = type(exc).__name__
            return "cancelled"
        return "failed"

    def _end_span(self, status: str, exc: BaseException | None) -> None:
        span = self.span
        if status == "completed":
            self._percent = 100.0
        span.set_attribute(JOB_STATUS, status)
        span.set_attribute(JOB_PROGRESS, self._percent)
        if self._current_step is not None:  # the span settles the row: say it last
            span.set_attribute(JOB_CURRENT_STEP, self._current_step)
        if self._result is not UNSET:
            span.set_attribute(JOB_RESULT, json_text(self._result))
        if status == "failed" and self.will_retry:
            span.set_attribute(JOB_WILL_RETRY, True)
        if status == "failed" and exc is not None:
            span.record_exception(exc, escaped=True)
            span.set_status(Status(StatusCode.ERROR, describe_exception(exc)))
            self._rt.emitter.emit(
                level="error",
                body=f"job failed: {describe_exception(exc)}",
                attributes={**exception_attributes(exc), JOB_ID: self._id},
                span=span,
            )
        elif status == "failed":  # fail() with a message
            message = str(self._failure)
            span.set_status(Status(StatusCode.ERROR, message))
            self._rt.emitter.emit(
                level="error",
                body=f"job failed: {message}",
                attributes={JOB_ID: self._id},
                span=span,
            )
        elif status == "cancelled":
            if self._cancel_reason is not None:
                span.set_attribute(JOB_CANCEL_REASON, self._cancel_reason)
        else:
            span.set_status(Status(StatusCode.OK))
        span.end()
