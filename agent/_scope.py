"""Behaviour shared by jobs and steps: leveled logging linked to their span.

A job and a step both own a span and both log the same way; only the attributes that
identify them differ (``job.id``, plus ``job.step`` on a step).
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context

from jobtrail.semconv import EXCEPTION_STACKTRACE

from ._emitter import normalise_level
from ._encode import AttributeValue, caller_stack, encode_data, exception_attributes
from ._runtime import Runtime

__all__ = ["Scope"]

_STACK_LEVELS = frozenset({"error", "fatal"})


class Scope:
    """Base of :class:`~jobtrail.agent.Job` and :class:`~jobtrail.agent.Step`.

    Every public method swallows its own failures (counted in ``agent_stats()``), so
    logging can never break the job it describes.
    """

    _rt: Runtime
    _span: trace.Span | None
    #: The span and an OTel context holding it, made once per span rather than per record.
    _span_context: tuple[trace.Span, Context] | None = None

    def _log_attributes(self) -> dict[str, AttributeValue]:
        raise NotImplementedError

    @property
    def span(self) -> trace.Span:
        """The OTel span of this job/step (a non-recording span before it starts)."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    def log(
        self, level: str, message: str, /, *, exc: BaseException | None = None, **data: Any
    ) -> None:
        """Emit a log record at ``level`` (``debug|info|success|warn|error|fatal``).

        Args:
            level: Level name; ``warning``/``critical`` are accepted as aliases, unknown
                names become ``info``.
            message: The record body.
            exc: An exception to attach (``exception.*`` attributes).
            **data: Structured data, one attribute each; non-primitive values are
                JSON-encoded and long strings truncated in the middle.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("nightly export", type="export") as job:
            ...     job.log("warn", "slow page", page=3, elapsed_ms=950)
        """
        try:
            self._log(normalise_level(level), message, exc, data)
        except Exception as err:  # what counters.guard does, without an object per line
            self._rt.counters.internal_error("log", err)

    def debug(self, message: str, /, **data: Any) -> None:
        """Log at ``debug``; see :meth:`log`.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("sync", type="sync") as job:
            ...     job.debug("cursor", offset=100)
        """
        try:
            self._log("debug", message, None, data)
        except Exception as err:  # what counters.guard does, without an object per line
            self._rt.counters.internal_error("log", err)

    def info(self, message: str, /, **data: Any) -> None:
        """Log at ``info``; see :meth:`log`.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("sync", type="sync") as job:
            ...     job.info("fetched users", count=42)
        """
        try:
            self._log("info", message, None, data)
        except Exception as err:  # what counters.guard does, without an object per line
            self._rt.counters.internal_error("log", err)

    def success(self, message: str, /, **data: Any) -> None:
        """Log at ``success`` (INFO2, severity text ``SUCCESS``); see :meth:`log`.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("sync", type="sync") as job:
            ...     job.success("all users imported")
        """
        try:
            self._log("success", message, None, data)
        except Exception as err:  # what counters.guard does, without an object per line
            self._rt.counters.internal_error("log", err)

    def warn(self, message: str, /, **data: Any) -> None:
        """Log at ``warn``; see :meth:`log`.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("sync", type="sync") as job:
            ...     job.warn("retrying", attempt=2)
        """
        try:
            self._log("warn", message, None, data)
        except Exception as err:  # what counters.guard does, without an object per line
            self._rt.counters.internal_error("log", err)

    def error(self, message: str, /, *, exc: BaseException | None = None, **data: Any) -> None:
        """Log at ``error`` with a stack trace; see :meth:`log`.

        The trace is ``exc``'s, else the exception being handled, else the caller's stack.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("sync", type="sync") as job:
            ...     try:
            ...         1 / 0
            ...     except ZeroDivisionError:
            ...         job.error("bad ratio", row=7)
        """
        try:
            self._log("error", message, exc, data)
        except Exception as err:  # what counters.guard does, without an object per line
            self._rt.counters.internal_error("log", err)

    def fatal(self, message: str, /, *, exc: BaseException | None = None, **data: Any) -> None:
        """Log at ``fatal`` with a stack trace, like :meth:`error`.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("sync", type="sync") as job:
            ...     job.fatal("disk full", free_bytes=0)
        """
        try:
            self._log("fatal", message, exc, data)
        except Exception as err:  # what counters.guard does, without an object per line
            self._rt.counters.internal_error("log", err)

    def _log(
        self, level: str, message: str, exc: BaseException | None, data: dict[str, Any]
    ) -> None:
        if not self._rt.sends(level):
            return
        attrs = encode_data(data, self._rt.max_data_len, {})
        if exc is None and level in _STACK_LEVELS:
            exc = sys.exc_info()[1]
        if exc is not None:
            attrs.update(exception_attributes(exc))
        elif level in _STACK_LEVELS:
            attrs[EXCEPTION_STACKTRACE] = caller_stack()
        attrs.update(self._log_attributes())
        self._rt.emitter.emit(
            level=level, body=str(message), attributes=attrs, context=self._record_context()
        )

    def _record_context(self) -> Context | None:
        """The context linking records to this scope's span (``None`` before it starts)."""
        span = self._span
        if span is None:
            return None
        cached = self._span_context
        if cached is None or cached[0] is not span:
            cached = self._span_context = (span, trace.set_span_in_context(span))
        return cached[1]
