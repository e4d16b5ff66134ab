"""Function-shaped ways to run jobs: ``job_fn``, ``execute_job``, ``start_job``, ``attach_job``.

Seed 000's ``executeJob(options, fn(executionId, updateProgress))`` hands the job function
its id and a progress callback; ``start_job`` does the same in the background and returns
at once (an HTTP handler answering ``202 Accepted`` with the job id); ``attach_job`` joins
a job that runs elsewhere. They are mixed into :class:`~jobtrail.agent.Agent`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from ._attach import AttachedJob, span_context_from_traceparent
from ._decorator import RetryPolicy, job_decorator
from ._job import Job
from ._runtime import Runtime

__all__ = ["ExecuteMixin", "ProgressCallback"]

P = ParamSpec("P")
R = TypeVar("R")

#: ``update_progress(percent, step=None)``; awaitable for async job functions.
ProgressCallback = Callable[..., Any]

_BACKGROUND: set[asyncio.Task[None]] = set()  # strong references until the tasks finish


def _async_progress(job: Job) -> Callable[..., Awaitable[None]]:
    async def update_progress(percent: float, step: str | None = None) -> None:
        job.progress(percent, step)

    return update_progress


def _set_result(job: Job, result: Any) -> None:
    if result is not None:
        job.result = result


def _run_sync(job: Job, fn: Callable[..., Any]) -> None:
    """Body of a background thread: run ``fn`` and end the job (entered by the caller)."""
    try:
        result = fn(job.id, job.progress)
    except BaseException as exc:
        job.__exit__(type(exc), exc, exc.__traceback__)
    else:
        _set_result(job, result)
        job.__exit__(None, None, None)


async def _run_async(job: Job, fn: Callable[..., Awaitable[Any]]) -> None:
    """Body of a background task: await ``fn`` and end the job; only cancellation raises."""
    try:
        result = await fn(job.id, _async_progress(job))
    except BaseException as exc:
        job.__exit__(type(exc), exc, exc.__traceback__)
        if not isinstance(exc, Exception):
            raise
    else:
        _set_result(job, result)
        job.__exit__(None, None, None)


class ExecuteMixin:
    """``job_fn``/``execute_job``/``start_job``/``attach_job`` on ``job`` and ``_runtime``."""

    def job(self, name: str, /, *, type: str, **options: Any) -> Job:
        raise NotImplementedError

    def _runtime(self) -> Runtime:
        raise NotImplementedError

    def job_fn(
        self,
        name: str | None = None,
        /,
        *,
        type: str,
        owner: str | None = None,
        operation: str | None = None,
        total_steps: int | None = None,
        retries: int = 0,
        retry_delay_s: float = 1.0,
        retry_backoff: float = 2.0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        **metadata: Any,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a sync or async function so that each call runs as a job.

        The wrapper keeps the function's signature; inside, use
        :func:`jobtrail.current_job` to log, report progress or set the result. With
        ``retries``, a call that raises one of ``retry_on`` runs again as the next attempt
        of the same job after ``retry_delay_s`` (times ``retry_backoff`` each time); the
        last attempt's exception is re-raised.

        Args:
            name: Job name; default: the function's qualified name.
            type: Job type; the other options are as for :meth:`job`.
            owner: See :meth:`job`.
            operation: See :meth:`job`.
            total_steps: See :meth:`job`.
            retries: Attempts after the first.
            retry_delay_s: Wait before the first retry.
            retry_backoff: Multiplier of the wait after each retry (>= 1).
            retry_on: Exception types worth retrying.
            **metadata: See :meth:`job`.

        Raises:
            ValueError: A retry option is out of range.

        Example:
            >>> import jobtrail
            >>> @jobtrail.job_fn(type="report", retries=2, retry_delay_s=0.5)
            ... async def build_report(day: str) -> int:
            ...     jobtrail.current_job().info("building", day=day)
            ...     return 3
        """
        policy = RetryPolicy(
            retries=retries, delay_s=retry_delay_s, backoff=retry_backoff, retry_on=retry_on
        )
        options: dict[str, Any] = dict(
            type=type, owner=owner, operation=operation, total_steps=total_steps, **metadata
        )

        def make_job(job_name: str, attempt: int, job_id: str | None, will_retry: bool) -> Job:
            job = self.job(job_name, id=job_id, attempt=attempt, **options)
            job.will_retry = will_retry
            return job

        return job_decorator(make_job, name, policy)

    @overload
    def execute_job(
        self,
        fn: Callable[[str, ProgressCallback], Coroutine[Any, Any, R]],
        /,
        *,
        name: str,
        type: str,
        **options: Any,
    ) -> Coroutine[Any, Any, R]: ...

    @overload
    def execute_job(
        self, fn: Callable[[str, ProgressCallback], R], /, *, name: str, type: str, **options: Any
    ) -> R: ...

    def execute_job(
        self, fn: Callable[[str, ProgressCallback], Any], /, *, name: str, type: str, **options: Any
    ) -> Any:
        """Run ``fn(job_id, update_progress)`` as a job and return its result.

        ``update_progress(percent, step=None)`` reports progress (awaitable when ``fn`` is
        a coroutine function, which makes ``execute_job`` return an awaitable too). A
        result other than ``None`` is stored as the job's result; an exception fails the
        job and propagates.

        Args:
            fn: The job function.
            name: Job name.
            type: Job type.
            **options: Further :meth:`job` options (``owner``, ``total_steps``...) and
                metadata.

        Example:
            >>> import jobtrail
            >>> def backup(job_id, update_progress):
            ...     update_progress(50, "copying")
            ...     return {"files": 3}
            >>> jobtrail.execute_job(backup, name="daily backup", type="backup")
            {'files': 3}
        """
        if inspect.iscoroutinefunction(fn):
            return self._execute_async(fn, name, type, options)
        with self.job(name, type=type, **options) as job:
            result = fn(job.id, job.progress)
            _set_result(job, result)
            return result

    async def _execute_async(
        self, fn: Callable[..., Awaitable[Any]], name: str, type: str, options: dict[str, Any]
    ) -> Any:
        async with self.job(name, type=type, **options) as job:
            result = await fn(job.id, _async_progress(job))
            _set_result(job, result)
            return result

    def start_job(
        self, fn: Callable[[str, ProgressCallback], Any], /, *, name: str, type: str, **options: Any
    ) -> Job:
        """Start ``fn(job_id, update_progress)`` as a job in the background; return the job.

        The job is running (and its id known) when this returns, so a request handler can
        answer with the id at once. A coroutine function runs as an asyncio task on the
        running loop (or, without one, on its own thread); a plain function on a new
        thread. Either way it inherits the caller's context (current job, OTel span), and
        the job ends when ``fn`` returns or raises (the exception fails the job and is
        not raised again).

        Example:
            >>> import jobtrail
            >>> def reindex(job_id, update_progress):
            ...     update_progress(100)
            >>> job = jobtrail.start_job(reindex, name="reindex", type="index")
            >>> len(job.id)
            16
        """
        job = self.job(name, type=type, **options)
        ctx = contextvars.copy_context()
        ctx.run(job.__enter__)
        target: Callable[[], None]
        if inspect.iscoroutinefunction(fn):
            coroutine = _run_async(job, fn)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                target = lambda: asyncio.run(coroutine)  # noqa: E731
            else:
                task = loop.create_task(coroutine, name=f"jobtrail job {job.id}", context=ctx)
                _BACKGROUND.add(task)
                task.add_done_callback(_BACKGROUND.discard)
                return job
        else:
            target = lambda: _run_sync(job, fn)  # noqa: E731
        thread = threading.Thread(target=ctx.run, args=(target,), name=f"jobtrail job {job.id}")
        thread.start()
        return job

    def attach_job(self, job_id: str | None = None, /, *, traceparent: str | None = None) -> Job:
        """Return a handle that makes a job running elsewhere the current job.

        Use it as ``with``/``async with``: records logged inside (through the handle,
        ``current_job()`` or stdlib ``logging``) belong to that job, and jobs started
        inside become its child jobs. Give the job id, a W3C ``traceparent`` of the job's
        span, or both (the id links records even before the job's span is stored).
        Entering and leaving record nothing; the job's owner ends it.

        Example:
            >>> import jobtrail
            >>> with jobtrail.attach_job("4bf92f3577b34da6") as job:
            ...     job.info("request handled for this job")
        """
        span_context = span_context_from_traceparent(traceparent)
        return AttachedJob(self._runtime(), job_id, span_context)
