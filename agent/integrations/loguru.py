"""loguru: a sink that exports each message as a jobtrail log record.

``logger.add(jobtrail_sink())`` adds it next to the existing sinks. Inside a job the record
belongs to the job (and step); outside, it is a system log whose category is the module
name loguru reports (``record["name"]``) and whose source is ``module:line``. ``bind()``
extras become data, ``logger.exception`` a stack trace, ``SUCCESS`` the success level.

Keep the sink synchronous (no ``enqueue=True``): the current job is found in the calling
thread's context.

Example:
    >>> from loguru import logger  # doctest: +SKIP
    >>> from jobtrail.agent.integrations.loguru import jobtrail_sink
    >>> logger.add(jobtrail_sink(), level="INFO")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._agent import Agent
from .._emitter import normalise_level
from .._logging_handler import emit_application_log

__all__ = ["jobtrail_sink"]

#: loguru level numbers -> jobtrail levels, for custom level names.
_BY_NUMBER = ((50, "fatal"), (40, "error"), (30, "warn"), (25, "success"), (20, "info"))


def _level(name: str, number: int) -> str:
    if name.lower() in ("trace", "debug", "info", "success", "warning", "error", "critical"):
        return normalise_level(name)
    return next((level for bound, level in _BY_NUMBER if number >= bound), "debug")


def jobtrail_sink(agent: Agent | None = None) -> Callable[[Any], None]:
    """Return a loguru sink exporting through ``agent`` (default: the module-level one).

    Example:
        >>> sink = jobtrail_sink()
        >>> callable(sink)
        True
    """
    if agent is None:
        from jobtrail.agent import DEFAULT_AGENT

        agent = DEFAULT_AGENT
    bound_agent = agent

    def sink(message: Any) -> None:
        record = message.record
        runtime = bound_agent._runtime()
        with runtime.counters.guard("loguru"):
            exception = record.get("exception")
            exc = getattr(exception, "value", None) if exception is not None else None
            level = record["level"]
            emit_application_log(
                runtime,
                level=_level(level.name, level.no),
                message=str(record["message"]),
                data=dict(record.get("extra") or {}),
                exc=exc if isinstance(exc, BaseException) else None,
                category=str(record.get("name") or "loguru"),
                source=f"{record.get('module')}:{record.get('line')}",
                timestamp=int(record["time"].timestamp() * 1e9),
            )

    return sink
