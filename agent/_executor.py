"""A thread pool whose tasks run in the submitter's context (current job, step and span).

``asyncio`` tasks copy the context by themselves; threads do not. Work submitted from a
job to a plain ``ThreadPoolExecutor`` logs as system logs, outside the job. This pool runs
each task in a copy of the submitting context, as ``contextvars.copy_context().run``
would, so steps and logs in worker threads land in the job (seed 003's context
propagation into goroutines).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["ContextThreadPoolExecutor", "context_executor"]

P = ParamSpec("P")
R = TypeVar("R")


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """``ThreadPoolExecutor`` running every task in a copy of the submitter's context."""

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` in a copy of the current context."""
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)  # type: ignore[arg-type]


def context_executor(max_workers: int | None = None, **kwargs: Any) -> ThreadPoolExecutor:
    """Return a thread pool whose tasks see the current job, step and OTel span.

    Arguments are those of :class:`concurrent.futures.ThreadPoolExecutor`; ``map`` goes
    through ``submit`` and propagates too.

    Example:
        >>> import jobtrail
        >>> def part(n):
        ...     jobtrail.current_job().info("part done", part=n)
        ...     return n
        >>> with jobtrail.job("fan out", type="batch"), jobtrail.context_executor(4) as pool:
        ...     sorted(pool.map(part, range(3)))
        [0, 1, 2]
    """
    return ContextThreadPoolExecutor(max_workers, **kwargs)
