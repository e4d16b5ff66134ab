"""Celery: every task a worker runs is recorded as a jobtrail job, with one call.

:func:`instrument_celery` connects to Celery's signals. Each task execution becomes a job
whose id is the Celery task id, so ``AsyncResult.id`` finds it in jobtrail; while the
task runs the job is current, so ``jobtrail.current_job().step(...)`` and the task's
logging (``get_task_logger`` and plain ``logging``) belong to it. A retry
(``self.retry()``, ``autoretry_for``) is the next attempt of the same job
(``job.attempt`` = retries + 1) and the failed attempt says another one follows, so the
job shows as ``retrying`` in between. A failure keeps the exception and its stack trace.
A worker child that dies under a task (``SIGKILL``, a hard time limit) fails the job
from the main worker process instead of leaving it ``lost``.

Tasks published inside a job carry its id and trace context in two message headers, so
the task's job becomes a child job of the publisher's. Publishing records the task's job
as queued (``pending``, with ``queued_at``) until a worker starts it.

Nothing here ever raises into the worker: failures are counted in
``jobtrail.agent_stats()``.

Example:
    >>> from celery import Celery
    >>> from jobtrail.agent.integrations.celery import instrument_celery
    >>> app = Celery("billing", broker="memory://")
    >>> instrumentation = instrument_celery(app)
    >>> @app.task(bind=True, max_retries=3)
    ... def charge(self, invoice_id):
    ...     import jobtrail
    ...     with jobtrail.current_job().step("charge card"):
    ...         pass
    >>> instrumentation.uninstrument()
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery, Task, signals
from opentelemetry import trace

from .._agent import Agent
from .._context import CURRENT_JOB
from ._celery_run import (
    CURRENT_RUN,
    TaskRun,
    current_traceparent,
    end_run,
    pool_terminating,
    request_attempt,
    request_header,
    request_metadata,
)

__all__ = [
    "PARENT_JOB_HEADER",
    "TRACEPARENT_HEADER",
    "CeleryInstrumentation",
    "instrument_celery",
]

#: Message header naming the job that published the task.
PARENT_JOB_HEADER = "jobtrail_parent_job_id"
#: Message header with the W3C ``traceparent`` of the publisher's span.
TRACEPARENT_HEADER = "jobtrail_traceparent"
#: The logger ``get_task_logger`` loggers hang under; Celery stops it propagating to root.
_TASK_LOGGER = "celery.task"
_DEFAULT_FLUSH_TIMEOUT_S = 5.0

JobType = str | Callable[[Task], str]


class CeleryInstrumentation:
    """The signal receivers of one instrumented Celery app; create with :func:`instrument_celery`.

    Args:
        app: The Celery application whose tasks are recorded.
        agent: The agent to record through (default: the module-level one).
        job_type: ``job.type`` of the tasks' jobs: a string, or a function of the task;
            default: the task name.
        log_level: Lowest level of the task logs captured; logger levels the worker's
            ``--loglevel`` set higher are lowered to it (``None``: leave levels alone).
        capture_logs: Export the worker's stdlib logging (task loggers included).
        record_result: Store a task's return value as the job's result (JSON).
        flush_timeout_s: Bound of the flush when a worker (process) shuts down.
        record_queued: When a task is published by a process that configured the agent,
            record its job as queued (``pending`` with ``queued_at`` until a worker starts
            it); a retry is not queued again.
    """

    def __init__(
        self,
        app: Celery,
        *,
        agent: Agent | None = None,
        job_type: JobType | None = None,
        log_level: int | str | None = logging.INFO,
        capture_logs: bool = True,
        record_result: bool = True,
        flush_timeout_s: float = _DEFAULT_FLUSH_TIMEOUT_S,
        record_queued: bool = True,
    ) -> None:
        """Prepare the receivers (:meth:`instrument` connects them)."""
        if agent is None:
            from jobtrail.agent import DEFAULT_AGENT

            agent = DEFAULT_AGENT
        if flush_timeout_s < 0:
            raise ValueError(f"flush_timeout_s must be >= 0, got {flush_timeout_s!r}")
        self.app = app
        self.agent = agent
        self._job_type = job_type
        self._log_level = log_level
        self._capture_logs = capture_logs
        self._record_result = record_result
        self._flush_timeout_s = flush_timeout_s
        self._record_queued = record_queued
        self._setup_pid: int | None = None
        self._lock = threading.Lock()
        self._connected = False
        self._main_agent: Agent | None = None
        self._main_agent_pid: int | None = None

    # -- connection --------------------------------------------------------------------
    def instrument(self) -> None:
        """Connect the signal receivers (idempotent)."""
        with self._lock:
            if self._connected:
                return
            for signal, receiver in self._receivers():
                signal.connect(receiver, weak=False)
            self._connected = True

    def uninstrument(self) -> None:
        """Disconnect the signal receivers; running tasks' jobs still end normally."""
        with self._lock:
            if not self._connected:
                return
            for signal, receiver in self._receivers():
                signal.disconnect(receiver)
            self._connected = False
            _INSTRUMENTED.pop(id(self.app), None)

    def _receivers(self) -> list[tuple[Any, Callable[..., None]]]:
        return [
            (signals.before_task_publish, self._on_publish),
            (signals.task_prerun, self._on_prerun),
            (signals.task_postrun, self._on_postrun),
            (signals.task_failure, self._on_failure),
            (signals.worker_process_shutdown, self._on_shutdown),
            (signals.worker_shutdown, self._on_shutdown),
        ]

    def _owns(self, task: Any) -> bool:
        return task is not None and getattr(task, "app", None) is self.app

    def _guard(self, where: str) -> Any:
        return self.agent._counters.guard(where)

    # -- producer side -----------------------------------------------------------------
    def _on_publish(self, sender: Any = None, headers: Any = None, **_: Any) -> None:
        """Name the publishing job (and its span) in the message headers; record the
        task's job as queued."""
        with self._guard("celery.publish"):
            if not isinstance(headers, dict):
                return
            run = CURRENT_RUN.get()
            retry = run is not None and headers.get("id") == run.task_id
            parent_id = traceparent = None
            if run is not None and retry:
                # A retry re-publishes the running task: keep the original parent.
                parent_id, traceparent = run.parent_job_id, run.traceparent
            elif (job := CURRENT_JOB.get()) is not None and job.id:
                parent_id, traceparent = job.id, current_traceparent()
            if parent_id:
                headers[PARENT_JOB_HEADER] = parent_id
            if traceparent:
                headers[TRACEPARENT_HEADER] = traceparent
            if self._record_queued and not retry and headers.get("id"):
                self._enqueue(str(sender or headers.get("task")), str(headers["id"]))

    def _enqueue(self, name: str, task_id: str) -> None:
        """Record the task's job as queued, if this process has configured the agent.

        Never configures it: in a worker's main process (``celery worker -B`` publishes
        from there) that would hand exporters and threads to every child forked later
        (see :meth:`_recording_agent`).
        """
        if self.agent._state is None:
            return
        task = self.app.tasks.get(name)
        if task is not None:
            job_type = self._type_of(task)
        else:  # published by name, not registered here: a type function needs the task
            job_type = self._job_type if isinstance(self._job_type, str) else name
        self.agent.enqueue(name, type=job_type, id=task_id)

    # -- worker side -------------------------------------------------------------------
    def _setup_process(self) -> None:
        """Once per worker process: export its logging (after Celery set logging up)."""
        pid = os.getpid()
        if self._setup_pid == pid:
            return
        self._setup_pid = pid
        if self._capture_logs:
            self.agent.instrument_logging(self._log_level)
            self.agent.instrument_logging(self._log_level, logger=_TASK_LOGGER)

    def _type_of(self, task: Task) -> str:
        if self._job_type is None:
            return str(task.name)
        if isinstance(self._job_type, str):
            return self._job_type
        return str(self._job_type(task))

    def _on_prerun(
        self, sender: Any = None, task_id: Any = None, task: Any = None, **_: Any
    ) -> None:
        """Start the task's job (attached under the publishing job, if any)."""
        task = task if task is not None else sender
        with self._guard("celery.prerun"):
            if not self._owns(task):
                return
            self._setup_process()
            request = task.request
            run_id = str(task_id or request.id)
            job = self.agent.job(
                str(task.name),
                type=self._type_of(task),
                id=run_id,
                attempt=request_attempt(request),
                **request_metadata(request),
            )
            parent_id = request_header(request, PARENT_JOB_HEADER)
            traceparent = request_header(request, TRACEPARENT_HEADER)
            attached = None
            # Nothing below raises (entering guards itself): an attached job never leaks
            # into the next task of this worker thread.
            if (parent_id or traceparent) and CURRENT_JOB.get() is None:
                if trace.get_current_span().get_span_context().is_valid:
                    traceparent = None  # OTel's Celery instrumentation continues the trace
                attached = self.agent.attach_job(parent_id, traceparent=traceparent)
                attached.__enter__()
            run = TaskRun(run_id, job, attached, parent_id, traceparent)
            job.__enter__()
            run.token = CURRENT_RUN.set(run)

    def _on_postrun(
        self,
        sender: Any = None,
        task_id: Any = None,
        task: Any = None,
        retval: Any = None,
        state: str | None = None,
        **_: Any,
    ) -> None:
        """End the task's job with the outcome Celery recorded."""
        task = task if task is not None else sender
        with self._guard("celery.postrun"):
            if not self._owns(task):
                return
            run = CURRENT_RUN.get()
            if run is None or run.task_id != str(task_id):
                return
            token, run.token = run.token, None
            try:
                if token is not None:
                    CURRENT_RUN.reset(token)
            except ValueError:  # set in another context
                CURRENT_RUN.set(None)
            end_run(run, retval, state, record_result=self._record_result)

    def _on_failure(
        self,
        sender: Any = None,
        task_id: Any = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """Fail the job of a task whose worker child died under it (main process only).

        In the process that ran the task ``task_postrun`` ends the job. The main worker
        process sends ``task_failure`` for a child lost to a signal or a hard time limit;
        the job's span died with the child, so a failed span of the same attempt closes it.
        """
        with self._guard("celery.failure"):
            if not self._owns(sender):
                return
            run = CURRENT_RUN.get()
            if run is not None and run.task_id == str(task_id):
                return  # the running task's own failure: postrun records it
            request = sender.request
            if str(getattr(request, "id", None)) != str(task_id):
                return  # no request context: the attempt number would be a guess
            job = self._recording_agent().job(
                str(sender.name),
                type=self._type_of(sender),
                id=str(task_id),
                attempt=request_attempt(request),
                **request_metadata(request),
            )
            with job:
                job.fail(exception if exception is not None else "worker lost")

    def _recording_agent(self) -> Agent:
        """The agent for a record the main worker process makes (a child died).

        Configuring the application's agent here would hand its exporters and threads to
        every child forked later (the prefork pool replaces a dead child at once), and
        gRPC channels are not meant to cross a fork: a private agent, configured from the same
        ``OTEL_*`` environment, leaves the application's agent to configure itself in
        each child after the fork.
        """
        if self.agent._state is not None:  # configured in this process already
            return self.agent
        with self._lock:
            if self._main_agent is None:
                main_agent = Agent(console_fallback=False)
                main_agent.configure(capture_logging=False, heartbeat_interval_s=0)
                self._main_agent, self._main_agent_pid = main_agent, os.getpid()
            return self._main_agent

    def _on_shutdown(self, **_: Any) -> None:
        """Flush before the (child) process exits: prefork children skip ``atexit``.

        Not in a child the pool is terminating (hard time limit, cold shutdown): the
        pool kills it a tenth of a second later, so its exit must not wait on the
        network; the main process records that task's failure.
        """
        with self._guard("celery.shutdown"):
            if pool_terminating():
                return
            self.agent.force_flush(self._flush_timeout_s)
            main_agent, pid = self._main_agent, self._main_agent_pid
            if main_agent is not None and pid == os.getpid():  # not in a child inheriting it
                main_agent.shutdown(self._flush_timeout_s)


_INSTRUMENTED: dict[int, CeleryInstrumentation] = {}


def instrument_celery(
    app: Celery,
    *,
    agent: Agent | None = None,
    job_type: JobType | None = None,
    log_level: int | str | None = logging.INFO,
    capture_logs: bool = True,
    record_result: bool = True,
    flush_timeout_s: float = _DEFAULT_FLUSH_TIMEOUT_S,
    record_queued: bool = True,
) -> CeleryInstrumentation:
    """Record every task ``app``'s workers run as a jobtrail job; the one call needed.

    Call it where the app is defined (the module the worker imports). Idempotent per
    app: a second call returns the first instrumentation. Options are those of
    :class:`CeleryInstrumentation`.

    With the prefork pool, leave ``jobtrail.configure()`` out of the module the
    worker's main process imports (or call it in a ``worker_process_init`` receiver):
    the agent then configures itself in each child, after the fork.

    Example:
        >>> from celery import Celery
        >>> from jobtrail.agent.integrations.celery import instrument_celery
        >>> app = Celery("reports", broker="memory://")
        >>> instrument_celery(app, job_type="report").uninstrument()
    """
    existing = _INSTRUMENTED.get(id(app))
    if existing is not None and existing.app is app:
        return existing
    instrumentation = CeleryInstrumentation(
        app,
        agent=agent,
        job_type=job_type,
        log_level=log_level,
        capture_logs=capture_logs,
        record_result=record_result,
        flush_timeout_s=flush_timeout_s,
        record_queued=record_queued,
    )
    instrumentation.instrument()
    _INSTRUMENTED[id(app)] = instrumentation
    return instrumentation
