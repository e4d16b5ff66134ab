"""A job: one span from ``with`` entry to exit, with lifecycle records, steps and progress."""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Callable
from contextvars import Token
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from jobtrail.semconv import (
    JOB_ATTEMPT,
    JOB_ID,
    JOB_METADATA_PREFIX,
    JOB_NAME,
    JOB_OPERATION,
    JOB_OWNER,
    JOB_PARENT_ID,
    JOB_TOTAL_STEPS,
    JOB_TYPE,
)

from ._context import CURRENT_JOB, CURRENT_STEP, ON_JOB_STARTED, ContextTokens, restore_context
from ._encode import AttributeValue, encode_data
from ._job_end import UNSET, JobEnd
from ._lifecycle import JobLifecycle
from ._runtime import Runtime
from ._scope import Scope
from ._step import Step, run_step

__all__ = ["Job"]

_ExcType = type[BaseException]  # ``type`` is shadowed by Job.type inside the class body


def _positive_int(value: Any) -> int | None:
    """``int(value)`` if positive, else ``None``: bad options degrade, never raise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class Job(Scope, JobLifecycle, JobEnd):
    """A running (or finished) background job; create it with :func:`jobtrail.job`.

    Use it as ``with``/``async with``; inside, the same object is returned by
    :func:`jobtrail.current_job`. A ``Job`` is single-use: entering it twice records nothing
    new.

    Example:
        >>> import jobtrail
        >>> with jobtrail.job("import users", type="import", total_steps=2) as job:
        ...     with job.step("download"):
        ...         job.info("downloaded", rows=120)
        ...     with job.step("store") as step:
        ...         step.success("stored")
        ...     job.result = {"rows": 120}
        >>> job.status
        'completed'
    """

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        *,
        type: str,
        owner: str | None = None,
        operation: str | None = None,
        total_steps: int | None = None,
        id: str | None = None,
        attempt: int = 1,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Prepare a job; nothing is recorded until it is entered."""
        self._rt = runtime
        self._span: trace.Span | None = None
        self._name = str(name)
        self._type = str(type)
        self._owner = owner
        self._operation = operation
        self._total_steps = _positive_int(total_steps)
        self._given_id = None if id is None else str(id)
        self._id = self._given_id or ""
        self._attempt = _positive_int(attempt) or 1
        self._metadata = dict(metadata or {})
        self._lock = threading.Lock()
        self._status = "pending"
        self._percent = 0.0
        self._progress_unsent = False  # automatic progress waiting for a record to carry it
        #: ``job.started`` not sent yet (attributes, time), and the step whose
        #: ``step.started`` is not sent yet: both wait a moment for the heartbeat thread.
        self._pending_start: tuple[dict[str, AttributeValue], int] | None = None
        self._pending_step: Step | None = None
        self._current_step: str | None = None
        self._seq = 0
        self._steps_done = 0
        self._result: Any = UNSET
        self._cancel_reason: str | None = None
        self._cancelled = False
        self._failure: str | BaseException | None = None
        self._parent: Job | None = None
        self._tokens: ContextTokens = []
        self._otel_token: Token[Context] | None = None
        #: Set by a retrying caller: if this attempt fails, another one follows.
        self.will_retry = False

    # -- read-only state ----------------------------------------------------------------
    @property
    def id(self) -> str:
        """The job id: the given ``id`` or the span id in hex (``""`` before start)."""
        return self._id

    @property
    def name(self) -> str:
        """The job name (also the span name)."""
        return self._name

    @property
    def type(self) -> str:
        """The job type (``job.type``)."""
        return self._type

    @property
    def status(self) -> str:
        """``pending``, ``running``, then ``completed``, ``failed`` or ``cancelled``."""
        return self._status

    @property
    def percent(self) -> float:
        """The last reported progress, 0-100."""
        return self._percent

    @property
    def parent(self) -> Job | None:
        """The enclosing job when this is a child job."""
        return self._parent

    @property
    def result(self) -> Any:
        """The job's result, exported as JSON in ``job.result`` when the job ends."""
        return None if self._result is UNSET else self._result

    @result.setter
    def result(self, value: Any) -> None:
        self._result = value

    # -- actions --------------------------------------------------------------------------
    def step(self, name: str, /, **metadata: Any) -> Step:
        """Create a step of this job; use it as ``with job.step("name") as step:``.

        Steps are numbered 1, 2, 3... in the order they start.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("backup", type="backup") as job:
            ...     with job.step("snapshot", volume="vol-1") as step:
            ...         step.info("snapshot taken")
        """
        return Step(self, name, metadata)

    def run_step(
        self, name: str, fn: Callable[[Step], Any], /, *, reraise: bool = True, **metadata: Any
    ) -> Any:
        """Run ``fn(step)`` as a step; an exception fails the step (seed 003's ``RunStep``).

        The failed step keeps the exception and its stack trace. With ``reraise=False``
        the exception is swallowed ("recovered") and ``None`` returned, so the job goes
        on; ``KeyboardInterrupt`` and cancellation always propagate. A coroutine function
        makes ``run_step`` return an awaitable.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("migrate vm", type="migration") as job:
            ...     job.run_step("validate", lambda step: step.info("ok"))
            ...     job.run_step("notify", lambda step: 1 / 0, reraise=False)
        """
        return run_step(self.step(name, **metadata), fn, reraise)

    def progress(self, percent: float, /, step: str | None = None) -> None:
        """Report progress (clamped to 0-100) as a ``job.progress`` lifecycle record.

        Args:
            percent: Completion in percent.
            step: What the job is doing now (``job.current_step``); defaults to the
                running step's name.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("backup", type="backup") as job:
            ...     job.progress(25, step="fetching data")
        """
        with self._rt.counters.guard("job.progress"):
            value = float(percent)
            if math.isnan(value):
                raise ValueError("progress must be a number, got NaN")
            with self._lock:
                self._percent = min(100.0, max(0.0, value))
                if step is not None:
                    self._current_step = str(step)
            self._emit_progress()

    def cancel(self, reason: str | None = None) -> None:
        """Mark the job cancelled; it ends as ``cancelled`` when its block exits.

        ``cancel`` does not interrupt the code: return or break out of the block after it.
        It wins over an exception raised afterwards to unwind the block.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("backup", type="backup") as job:
            ...     job.cancel("disk quota reached")
            >>> job.status
            'cancelled'
        """
        self._cancelled = True
        if reason is not None:
            self._cancel_reason = str(reason)

    def fail(self, error: str | BaseException) -> None:
        """Mark the job failed with ``error``; it ends as ``failed`` when its block exits.

        For failures that are not Python exceptions (a command's exit code, an error an
        API returned). A string becomes the job's error as is; an exception is recorded
        with its stack trace. ``cancel`` wins over ``fail``.

        Example:
            >>> import jobtrail
            >>> with jobtrail.job("rsync backup", type="backup") as job:
            ...     job.fail("exit code 23")
            >>> job.status
            'failed'
        """
        self._failure = error if isinstance(error, BaseException) else str(error)

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> Job:
        """Start the job span, make the job current and emit ``job.started``."""
        with self._rt.counters.guard("job.start"):
            self._start()
        if not self._id:  # the span could not be started: still give the job an identity
            self._id = secrets.token_hex(8)
        return self

    def __exit__(
        self,
        exc_type: _ExcType | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the job with its final status; any exception propagates unchanged."""
        self._finish(exc)

    async def __aenter__(self) -> Job:
        """Same as ``__enter__``, for ``async with``."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: _ExcType | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Same as ``__exit__``, for ``async with``."""
        self._finish(exc)

    # -- internals -------------------------------------------------------------------------
    def _log_attributes(self) -> dict[str, AttributeValue]:
        return {JOB_ID: self._id}

    def _start(self) -> None:
        if self._status != "pending":
            raise RuntimeError(f"job {self._name!r} entered twice")
        self._status = "running"
        parent = CURRENT_JOB.get()
        self._parent = parent
        # Context variables first: even if the OTel calls below fail, current_job() works.
        self._tokens = [
            (CURRENT_JOB, CURRENT_JOB.set(self)),
            (CURRENT_STEP, CURRENT_STEP.set(None)),
        ]
        attrs: dict[str, AttributeValue] = {
            JOB_TYPE: self._type,
            JOB_NAME: self._name,
            JOB_ATTEMPT: self._attempt,
        }
        if self._owner is not None:
            attrs[JOB_OWNER] = str(self._owner)
        if self._operation is not None:
            attrs[JOB_OPERATION] = str(self._operation)
        if self._total_steps is not None:
            attrs[JOB_TOTAL_STEPS] = self._total_steps
        parent_id = parent.id if parent is not None else None
        span_parent: Context | None = None
        if parent is None and not trace.get_current_span().get_span_context().is_valid:
            # A top-level job of a process started under a job (``jobtrail run``).
            span_parent, parent_id = self._rt.parent_context, self._rt.parent_job_id
        if parent_id:
            attrs[JOB_PARENT_ID] = parent_id
        encode_data(self._metadata, self._rt.max_data_len, attrs, JOB_METADATA_PREFIX)
        span = self._rt.tracer.start_span(self._name, context=span_parent, attributes=attrs)
        self._span = span
        span_context = span.get_span_context()
        if not self._id:
            valid = span_context.is_valid
            self._id = format(span_context.span_id, "016x") if valid else secrets.token_hex(8)
        span.set_attribute(JOB_ID, self._id)
        attrs[JOB_ID] = self._id
        self._otel_token = otel_context.attach(trace.set_span_in_context(span))
        heartbeat = self._rt.heartbeat
        if heartbeat is None:
            self._emit_started(attrs, None)
        else:  # sent a moment later, unless the job has ended by then (see _heartbeat)
            heartbeat.add(self)
            self._pending_start = (attrs, time_ns())
            heartbeat.soon(self)
        if (hook := ON_JOB_STARTED.get()) is not None:
            hook(self)

    def _finish(self, exc: BaseException | None) -> None:
        if self._status != "running":
            return
        with self._rt.counters.guard("job.finish"):
            status = self._final_status(exc)
            if exc is None and isinstance(self._failure, BaseException):
                exc = self._failure
            self._status = status
            self._end_span(status, exc)
        with self._rt.counters.guard("job.restore_context"):
            with self._lock:  # owed records the span makes needless
                self._pending_start, self._pending_step = None, None
            if self._rt.heartbeat is not None:
                self._rt.heartbeat.discard(self)
            restore_context(self._tokens, self._otel_token, {CURRENT_JOB: self._parent})
            self._tokens, self._otel_token = [], None
