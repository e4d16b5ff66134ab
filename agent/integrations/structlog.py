"""structlog: a processor that exports each event as a jobtrail log record.

Put :class:`JobtrailProcessor` in the processor chain before the renderer; it passes the
event dict on unchanged, so console output stays as it was. Inside a job the record
belongs to the job (and step); outside, it is a system log whose category is the event's
``logger`` key (``structlog.stdlib.add_logger_name``) or ``structlog``.

Example:
    >>> import structlog  # doctest: +SKIP
    >>> from jobtrail.agent.integrations.structlog import JobtrailProcessor
    >>> structlog.configure(processors=[
    ...     structlog.processors.add_log_level,
    ...     JobtrailProcessor(),
    ...     structlog.dev.ConsoleRenderer(),
    ... ])  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any

from .._agent import Agent
from .._emitter import normalise_level
from .._logging_handler import emit_application_log

__all__ = ["JobtrailProcessor"]

_DEFAULT_CATEGORY = "structlog"
#: Keys with a meaning of their own, not exported as data.
_CONSUMED = frozenset({"event", "level", "logger", "exc_info", "exception", "stack", "timestamp"})


class JobtrailProcessor:
    """A structlog processor exporting every event through a jobtrail agent.

    Args:
        agent: The agent to export through (default: the module-level one).
    """

    def __init__(self, agent: Agent | None = None) -> None:
        """Bind the processor to ``agent``."""
        if agent is None:
            from jobtrail.agent import DEFAULT_AGENT

            agent = DEFAULT_AGENT
        self._agent = agent

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Export ``event_dict`` and return it unchanged."""
        runtime = self._agent._runtime()
        with runtime.counters.guard("structlog"):
            level = normalise_level(str(event_dict.get("level", method_name)))
            if method_name == "exception" and "level" not in event_dict:
                level = "error"
            exc = _exception(event_dict.get("exc_info"))
            stack = event_dict.get("exception") if exc is None else None
            emit_application_log(
                runtime,
                level=level,
                message=str(event_dict.get("event", "")),
                data={k: v for k, v in event_dict.items() if k not in _CONSUMED},
                exc=exc,
                stack=stack if isinstance(stack, str) else None,
                category=str(event_dict.get("logger") or _DEFAULT_CATEGORY),
                source=_source(event_dict),
            )
        return event_dict


def _exception(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    if exc_info is True:
        return sys.exc_info()[1]
    return None


def _source(event_dict: MutableMapping[str, Any]) -> str | None:
    """``module:lineno`` when ``CallsiteParameterAdder`` put them in the event."""
    module, line = event_dict.get("module"), event_dict.get("lineno")
    return f"{module}:{line}" if module and line else None
