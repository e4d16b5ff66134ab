"""Running each call of a sync or async function as a job, keeping its signature.

With a :class:`RetryPolicy`, a call that raises is run again as a new attempt of the same
job (same ``job.id``, ``job.attempt`` + 1) after a growing delay; every attempt is its own
span, so each attempt's error and duration are recorded. A failed attempt that will be
retried says so (``job.will_retry``), which the collector shows as ``retrying``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from ._job import Job

__all__ = ["RetryPolicy", "job_decorator"]

P = ParamSpec("P")
R = TypeVar("R")

#: make_job(job name, attempt number, job id of earlier attempts, will another attempt follow)
MakeJob = Callable[[str, int, "str | None", bool], Job]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how soon a failing job is tried again.

    Args:
        retries: Attempts after the first (0: no retry).
        delay_s: Wait before the first retry.
        backoff: Multiplier of the wait after each retry.
        max_delay_s: Upper bound of the wait.
        retry_on: Exception types that are retried; others fail at once.
    """

    retries: int = 0
    delay_s: float = 1.0
    backoff: float = 2.0
    max_delay_s: float = 60.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.delay_s < 0 or self.backoff < 1 or self.max_delay_s < 0:
            raise ValueError(
                "retries and delays must be >= 0 and backoff >= 1, got "
                f"retries={self.retries}, delay_s={self.delay_s}, backoff={self.backoff}"
            )

    def attempts(self) -> Iterator[tuple[int, float | None]]:
        """``(attempt, wait before the next one or None for the last)`` pairs."""
        delay = self.delay_s
        for attempt in range(1, self.retries + 2):
            if attempt > self.retries:
                yield attempt, None
            else:
                yield attempt, min(delay, self.max_delay_s)
                delay *= self.backoff


def _retryable(policy: RetryPolicy, job: Job, exc: BaseException, wait: float | None) -> bool:
    return wait is not None and job.status == "failed" and isinstance(exc, policy.retry_on)


def job_decorator(
    make_job: MakeJob, name: str | None, policy: RetryPolicy | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Build a decorator that wraps each call in a job (and its retries).

    ``functools.wraps`` sets ``__wrapped__``, so ``inspect.signature`` of the wrapper is
    the function's own; coroutine functions get an ``async def`` wrapper so
    ``inspect.iscoroutinefunction`` stays true and the job spans the awaited body.
    """
    policy = policy or RetryPolicy()

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        job_name = name or getattr(fn, "__qualname__", None) or repr(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                job_id: str | None = None
                for attempt, wait in policy.attempts():
                    job = make_job(job_name, attempt, job_id, wait is not None)
                    try:
                        async with job:
                            return await fn(*args, **kwargs)
                    except BaseException as exc:
                        if not _retryable(policy, job, exc, wait):
                            raise
                        job_id = job.id
                    await asyncio.sleep(wait or 0)
                raise AssertionError("unreachable")  # pragma: no cover

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            job_id: str | None = None
            for attempt, wait in policy.attempts():
                job = make_job(job_name, attempt, job_id, wait is not None)
                try:
                    with job:
                        return fn(*args, **kwargs)
                except BaseException as exc:
                    if not _retryable(policy, job, exc, wait):
                        raise
                    job_id = job.id
                time.sleep(wait or 0)
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper

    return decorate
