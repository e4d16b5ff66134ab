"""One Celery task execution: what its job is made from, and how Celery's outcome ends it.

These are the parts that know the shapes of Celery's request, task states and the prefork
pool (billiard); :mod:`.celery` keeps the signal wiring that calls them.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from billiard import common as billiard_common
from celery import states
from celery.exceptions import Retry
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._job import Job

__all__ = [
    "CURRENT_RUN",
    "TaskRun",
    "current_traceparent",
    "end_run",
    "pool_terminating",
    "request_attempt",
    "request_header",
    "request_metadata",
]

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class TaskRun:
    """One execution of a task in this process: its job and the headers it came with."""

    task_id: str
    job: Job
    attached: Job | None
    parent_job_id: str | None
    traceparent: str | None
    token: Token[TaskRun | None] | None = None


CURRENT_RUN: ContextVar[TaskRun | None] = ContextVar("jobtrail_celery_run", default=None)


def request_header(request: Any, name: str) -> str | None:
    """A custom message header: Celery exposes them as request attributes."""
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return str(value) if value else None


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, if any."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def request_metadata(request: Any) -> dict[str, Any]:
    """``queue`` and ``worker`` (node name) of a task request, where known."""
    delivery = getattr(request, "delivery_info", None) or {}
    pairs = (("queue", delivery.get("routing_key")), ("worker", getattr(request, "hostname", None)))
    return {key: str(value) for key, value in pairs if value}


def request_attempt(request: Any) -> int:
    """The 1-based attempt number of a task request (retries + 1)."""
    try:
        return int(getattr(request, "retries", 0) or 0) + 1
    except (TypeError, ValueError):
        return 1


def pool_terminating() -> bool:
    """Whether the pool's terminate signal handler ran in this (child) process."""
    fired = getattr(billiard_common, "terminate_handler_fired", None)
    return bool(fired()) if callable(fired) else False


def end_run(run: TaskRun, retval: Any, state: str | None, *, record_result: bool) -> None:
    """End ``run``'s job (and the job it attached to) with the outcome Celery recorded."""
    job, exc = run.job, None
    if state == states.SUCCESS:
        if record_result and retval is not None:
            job.result = retval
    elif state == states.RETRY:
        job.will_retry = True
        reason = retval.exc if isinstance(retval, Retry) and retval.exc else retval
        job.fail(reason if isinstance(reason, BaseException) else str(reason or "retry"))
    elif state in (states.FAILURE, states.REJECTED):
        if state == states.REJECTED and getattr(retval, "requeue", False):
            job.will_retry = True
        job.fail(retval if isinstance(retval, BaseException) else f"task {str(state).lower()}")
    elif state is None:
        if pool_terminating():
            # The pool kills this child in a moment (hard time limit, cold shutdown) and
            # the main process records the task's failure (``TimeLimitExceeded``...);
            # a ``SystemExit`` recorded here as well would race it for the last word.
            return
        # Postrun runs in a ``finally``: a BaseException (SystemExit, KeyboardInterrupt,
        # eager ``propagate``) is unwinding the worker.
        exc = sys.exc_info()[1]
        if exc is None:
            job.fail("task ended without a state")

    # IGNORED (``Ignore``, ``Task.replace``): the task chose to record no outcome.
    try:
        job.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
    finally:
        if run.attached is not None:
            run.attached.__exit__(None, None, None)
