"""Running each call of a sync or async function as a job, keeping its signature."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from ._job import Job

__all__ = ["job_decorator"]

P = ParamSpec("P")
R = TypeVar("R")


def job_decorator(
    make_job: Callable[[str], Job], name: str | None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Build a decorator that wraps each call in ``make_job(job_name)``.

    ``functools.wraps`` sets ``__wrapped__``, so ``inspect.signature`` of the wrapper is
    the function's own; coroutine functions get an ``async def`` wrapper so
    ``inspect.iscoroutinefunction`` stays true and the job spans the awaited body.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        job_name = name or getattr(fn, "__qualname__", None) or repr(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with make_job(job_name):
                    return await fn(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with make_job(job_name):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
