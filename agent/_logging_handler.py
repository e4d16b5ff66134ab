"""Capture stdlib ``logging`` as OTel log records attached to the current job and step.

Applications already log with ``logging``; inside a job those records should land in the
job's log view without code changes. The handler adds ``job.id``/``job.step`` from the
context variables, uses the current span context (so the record links to the step's span),
and sets ``log.category`` to the logger name so records outside jobs still group as
"system" logs; those also carry ``log.source`` (``module:lineno``). ``exc_info`` becomes
``exception.*`` with the stack trace, ``extra`` fields become data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value

from jobtrail.semconv import EXCEPTION_STACKTRACE, JOB_ID, JOB_STEP, LOG_CATEGORY, LOG_SOURCE

from ._context import CURRENT_JOB, CURRENT_STEP
from ._encode import AttributeValue, encode_value, exception_attributes
from ._runtime import Runtime

__all__ = [
    "JobtrailLoggingHandler",
    "emit_application_log",
    "find_exporting_handler",
    "instrument_logger",
    "level_number",
]

_logger = logging.getLogger(__name__)

#: Loggers never exported: our own and the SDK's (their records about exporting would
#: otherwise be exported, fail, and be logged again).
_EXCLUDED_PREFIXES = ("jobtrail", "opentelemetry")
_STANDARD_RECORD_KEYS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


def _is_excluded(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in _EXCLUDED_PREFIXES)


def _level_for(record: logging.LogRecord) -> str:
    if record.levelname.upper() == "SUCCESS":
        return "success"
    levelno = record.levelno
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def emit_application_log(
    runtime: Runtime,
    *,
    level: str,
    message: str,
    data: Mapping[str, Any],
    exc: BaseException | None = None,
    stack: str | None = None,
    category: str,
    source: str | None = None,
    timestamp: int | None = None,
) -> None:
    """Emit a record from a logging library (stdlib, structlog, loguru) where it belongs.

    Inside a job the record carries ``job.id`` (and ``job.step``) and the current span
    context; outside any job it is a system log of ``category`` with ``log.source``.
    """
    if not runtime.sends(level):
        return
    max_len = runtime.max_data_len
    attrs: dict[str, AttributeValue] = {}
    for key, value in data.items():
        attrs[str(key)] = encode_value(value, max_len)
    if exc is not None:
        attrs.update(exception_attributes(exc))
    elif stack:
        attrs[EXCEPTION_STACKTRACE] = stack
    attrs[LOG_CATEGORY] = category
    job = CURRENT_JOB.get()
    if job is None:  # an application/system log (seed 000's category and source)
        if source:
            attrs[LOG_SOURCE] = source
    elif job.id:
        attrs[JOB_ID] = job.id
        step = CURRENT_STEP.get()
        if step is not None:
            attrs[JOB_STEP] = step.name
    runtime.emitter.emit(
        level=level, body=message, attributes=attrs, timestamp=timestamp, scope=category or "root"
    )


class JobtrailLoggingHandler(logging.Handler):
    """A ``logging.Handler`` emitting each record through the agent's LoggerProvider.

    The logger's level still filters before any handler runs: with the root logger at its
    default ``WARNING``, ``logger.info`` inside a job is not captured until the application
    lowers the level (``logging.basicConfig(level=logging.INFO)``).
    """

    def __init__(self, runtime: Runtime, level: int = logging.NOTSET) -> None:
        """Bind the handler to the agent runtime it emits through."""
        super().__init__(level)
        self._rt = runtime
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        """Translate and emit ``record``; never raises, never recurses."""
        self._keep_last_resort(record)
        if _is_excluded(record.name) or get_value(_SUPPRESS_INSTRUMENTATION_KEY):
            return
        if getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            with self._rt.counters.guard("logging.emit"):
                self._emit(record)
        finally:
            self._local.busy = False

    def _keep_last_resort(self, record: logging.LogRecord) -> None:
        """Print to stderr what ``logging.lastResort`` would have printed without us.

        In an app that never configured logging, warnings reach stderr through
        ``logging.lastResort`` only while no handler exists; installing this handler must
        not silence them (including the agent's own warnings).
        """
        last_resort = logging.lastResort
        if last_resort is None or record.levelno < last_resort.level:
            return
        logger: logging.Logger | None = (
            logging.getLogger(record.name) if record.name != "root" else logging.getLogger()
        )
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return
            logger = logger.parent if logger.propagate else None
        with self._rt.counters.guard("logging.last_resort"):
            last_resort.handle(record)

    def _emit(self, record: logging.LogRecord) -> None:
        data = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_")
        }
        emit_application_log(
            self._rt,
            level=_level_for(record),
            message=self._body(record),
            data=data,
            exc=record.exc_info[1] if record.exc_info else None,
            stack=record.stack_info,
            category=record.name,
            source=f"{record.module}:{record.lineno}",
            timestamp=int(record.created * 1e9),
        )

    @staticmethod
    def _body(record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except Exception:  # bad %-format args: keep the template rather than lose the record
            return str(record.msg)

    def __repr__(self) -> str:
        """Short representation for ``logging`` introspection."""
        return f"<{type(self).__name__} level={logging.getLevelName(self.level)}>"


def _exports_logging(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith(("opentelemetry", "jobtrail"))


def find_exporting_handler(logger: logging.Logger) -> logging.Handler | None:
    """Return a handler that already exports what ``logger`` logs (ours or OTel's).

    Looks at ``logger`` and, while records propagate, its ancestors: a record reaching
    two exporting handlers would be exported twice.
    """
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if _exports_logging(handler):
                return handler
        current = current.parent if current.propagate else None
    return None


def level_number(level: int | str) -> int:
    """A logging level as a number (``"info"`` -> 20); ``ValueError`` for unknown names."""
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(str(level).upper())
    if number is None:
        raise ValueError(f"unknown logging level {level!r}")
    return number


def instrument_logger(
    installed: list[tuple[logging.Logger, logging.Handler]],
    runtime: Runtime,
    target: logging.Logger,
    level: int | None,
) -> None:
    """Make sure ``target``'s records at ``level`` and above are exported (idempotent).

    Adds a handler to ``target`` (remembered in ``installed``) unless an exporting handler
    already receives its records; with a ``level``, sets the handler's level and lowers
    the logger's (and a covering ancestor handler's) when needed, never raising them.
    """
    covering = find_exporting_handler(target)
    if covering is None:
        ours = JobtrailLoggingHandler(runtime)
        target.addHandler(ours)
        installed.append((target, ours))
        covering = ours
    elif not any(h is covering for _, h in installed):
        # Another agent's or an OTel handler already exports these records.
        _logger.debug("jobtrail: %r already captures logging; not adding ours", covering)
    if level is None:
        return
    for logger, handler in installed:
        if logger is target:
            handler.setLevel(level)
        elif handler is covering and handler.level > level:
            handler.setLevel(level)  # an ancestor's handler: only ever lowered
    if target.getEffectiveLevel() > level:
        target.setLevel(level)
