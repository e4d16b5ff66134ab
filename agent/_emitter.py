"""Emitting OTel log records for job logs, lifecycle events and captured stdlib logging.

All records go through :class:`Emitter` so severity mapping, span linkage and the optional
``event_name`` field are decided once.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger as ApiLogger
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context

from jobtrail.semconv import EVENT_NAME, SEVERITY_BY_LEVEL, SUCCESS_SEVERITY_TEXT

from ._encode import AttributeValue

__all__ = ["SCOPE_NAME", "Emitter", "normalise_level", "severity_text"]

SCOPE_NAME = "jobtrail.agent"

#: ``LogRecord.event_name`` appeared in the logs API around 1.35; older SDKs reject it.
_HAS_EVENT_NAME = "event_name" in inspect.signature(ApiLogger.emit).parameters

#: Other names for the levels, as logging libraries spell them.
LEVEL_ALIASES = {"warning": "warn", "critical": "fatal", "err": "error", "trace": "debug"}


def normalise_level(level: str) -> str:
    """Map a level name (case-insensitive, stdlib aliases allowed) to a jobtrail level.

    Unknown names map to ``"info"`` rather than raising: a typo must not crash the job.

    Example:
        >>> normalise_level("WARNING")
        'warn'
    """
    name = str(level).lower()
    name = LEVEL_ALIASES.get(name, name)
    return name if name in SEVERITY_BY_LEVEL else "info"


def severity_text(level: str) -> str:
    """Return the OTel ``severity_text`` for a jobtrail level (``SUCCESS``, ``WARN``, ...)."""
    return SUCCESS_SEVERITY_TEXT if level == "success" else level.upper()


#: No extra ``emit`` keywords (a log line, or an SDK without ``event_name``).
_NO_EXTRA: dict[str, Any] = {}

#: ``(severity_number, severity_text)`` per jobtrail level, built once: this runs per record.
_SEVERITY = {
    level: (SeverityNumber(number), severity_text(level))
    for level, number in SEVERITY_BY_LEVEL.items()
}


class Emitter:
    """Build and emit OTel log records on one LoggerProvider.

    Records carry the span context of the job or step they belong to, which is how the
    collector links them (trace_id/span_id), independent of the caller's current context.
    """

    def __init__(self, provider: ApiLoggerProvider, version: str = "") -> None:
        """Create the emitter and the agent's own OTel logger."""
        self._provider = provider
        self._version = version
        self._logger = provider.get_logger(SCOPE_NAME, version)

    def emit(
        self,
        *,
        level: str,
        body: str,
        attributes: Mapping[str, AttributeValue],
        span: trace.Span | None = None,
        context: Context | None = None,
        event_name: str | None = None,
        timestamp: int | None = None,
        scope: str | None = None,
    ) -> None:
        """Emit one record.

        Args:
            level: A jobtrail level (``debug`` ... ``fatal``).
            body: The message.
            attributes: Already-encoded attributes; the SDK copies them, so the caller's
                dict is neither copied here nor changed.
            span: The job/step span to link to; wins over ``context``.
            context: An OTel context to take the span from (default: the current one);
                a job or step passes the one it keeps, cheaper than a ``span`` per record.
            event_name: Lifecycle event name; also written to ``event.name``.
            timestamp: Nanoseconds since the epoch (default: now).
            scope: Instrumentation scope name (stdlib logger name) instead of the agent's.
        """
        if span is not None:
            context = trace.set_span_in_context(span)
        number, text = _SEVERITY[level]
        logger = self._logger if scope is None else self._provider.get_logger(scope)
        extra = _NO_EXTRA
        if event_name is not None:
            attributes = {**attributes, EVENT_NAME: event_name}
            if _HAS_EVENT_NAME:
                extra = {"event_name": event_name}
        logger.emit(  # keywords spelled out: no dict built per log line
            timestamp=time_ns() if timestamp is None else timestamp,
            context=context,
            severity_number=number,
            severity_text=text,
            body=body,
            attributes=attributes,
            **extra,
        )
