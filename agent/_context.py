"""The current job and step, carried in ``contextvars``.

``contextvars`` follow asyncio tasks natively and threads through
``contextvars.copy_context().run``, exactly like the OTel context they travel beside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context

if TYPE_CHECKING:
    from ._job import Job
    from ._step import Step

__all__ = [
    "CANCELLATION_EXCEPTIONS",
    "CURRENT_JOB",
    "CURRENT_STEP",
    "ContextTokens",
    "ON_JOB_STARTED",
    "current_job",
    "current_step",
    "restore_context",
]

CURRENT_JOB: ContextVar[Job | None] = ContextVar("jobtrail_current_job", default=None)
CURRENT_STEP: ContextVar[Step | None] = ContextVar("jobtrail_current_step", default=None)
#: Called with every job started in this context (and contexts copied from it): how an
#: HTTP middleware learns the id of a job a handler started, even in a background task.
ON_JOB_STARTED: ContextVar[Callable[[Job], None] | None] = ContextVar(
    "jobtrail_on_job_started", default=None
)

#: Exceptions that mean "stopped from outside": recorded as ``cancelled``, not ``failed``.
CANCELLATION_EXCEPTIONS: tuple[type[BaseException], ...] = (
    KeyboardInterrupt,
    asyncio.CancelledError,
    GeneratorExit,
)

ContextTokens = list[tuple[ContextVar[Any], Token[Any]]]


def current_job() -> Job | None:
    """Return the innermost running job of this context, or ``None`` outside any job.

    Example:
        >>> import jobtrail
        >>> jobtrail.current_job() is None
        True
    """
    return CURRENT_JOB.get()


def current_step() -> Step | None:
    """Return the running step of the current job in this context, or ``None``.

    Example:
        >>> import jobtrail
        >>> jobtrail.current_step() is None
        True
    """
    return CURRENT_STEP.get()


def restore_context(
    tokens: ContextTokens,
    otel_token: Token[Context] | None,
    fallback: dict[ContextVar[Any], Any],
) -> None:
    """Undo what entering a job/step set, tolerating an exit from another context.

    ``ContextVar.reset`` refuses tokens created in another context (a block entered in one
    task and exited in another); the previous values are then set directly instead.
    """
    for var, token in reversed(tokens):
        try:
            var.reset(token)
        except (ValueError, RuntimeError):
            var.set(fallback.get(var))
    if otel_token is not None:
        otel_context.detach(otel_token)  # logs on failure, never raises
