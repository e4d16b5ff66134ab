"""A job's lifecycle records: what makes it visible while it runs, before its span ends.

``job.started``, ``step.started`` (carrying the progress the steps before it made),
``job.progress`` and ``job.heartbeat`` (DESIGN, lifecycle events). With a heartbeat thread
(the default) the first three wait a moment for it (see :mod:`._heartbeat`): a job or step
that ends first needs none of them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from opentelemetry import trace

from jobtrail.semconv import (
    EVENT_JOB_HEARTBEAT,
    EVENT_JOB_PROGRESS,
    EVENT_JOB_STARTED,
    JOB_CURRENT_STEP,
    JOB_ID,
    JOB_NAME,
    JOB_PROGRESS,
    JOB_TYPE,
)

from ._encode import AttributeValue
from ._runtime import Runtime

if TYPE_CHECKING:
    from ._step import Step

__all__ = ["JobLifecycle"]


class JobLifecycle:
    """The lifecycle-record half of :class:`~jobtrail.agent.Job` (its state lives there)."""

    _rt: Runtime
    _span: trace.Span | None
    _lock: threading.Lock
    _id: str
    _name: str
    _type: str
    _status: str
    _percent: float
    _current_step: str | None
    _progress_unsent: bool
    _seq: int
    _steps_done: int
    _total_steps: int | None
    _pending_start: tuple[dict[str, AttributeValue], int] | None
    _pending_step: Step | None

    def _identity(self) -> dict[str, AttributeValue]:
        return {JOB_ID: self._id, JOB_TYPE: self._type, JOB_NAME: self._name}

    def _emit_started(self, attrs: dict[str, AttributeValue], timestamp: int | None) -> None:
        self._rt.emitter.emit(
            level="info",
            body="job started",
            attributes=attrs,
            span=self._span,
            event_name=EVENT_JOB_STARTED,
            timestamp=timestamp,
        )

    def _defer_step_start(self, step: Step) -> bool:
        """Let ``step``'s ``step.started`` wait for the heartbeat thread; False if one waits."""
        with self._lock:
            if self._pending_step is not None:  # steps in parallel: the later ones send now
                return False
            self._pending_step = step
            return True

    def _flush_due(self) -> None:
        """Send what is still owed while the job runs (the heartbeat thread calls this).

        ``job.started`` first, then the running step's ``step.started``, which carries the
        progress the steps before it made; a separate progress record only if none did.
        """
        with self._lock:
            start, self._pending_start = self._pending_start, None
            step = self._pending_step
        if self._status != "running":
            return
        if start is not None:
            self._emit_started(*start)
        if step is not None:
            step._emit_started()
        self._flush_progress()

    def _emit_progress(self, event: str = EVENT_JOB_PROGRESS) -> None:
        with self._lock:
            self._progress_unsent = False
        attrs = self._identity()
        attrs[JOB_PROGRESS] = self._percent
        if self._current_step is not None:
            attrs[JOB_CURRENT_STEP] = self._current_step
        if event == EVENT_JOB_HEARTBEAT:
            body = "heartbeat"
        else:  # readable on its own in the job's log (seed 002 logs each update)
            step = f": {self._current_step}" if self._current_step is not None else ""
            body = f"progress {self._percent:g}%{step}"
        self._rt.emitter.emit(
            level="info", body=body, attributes=attrs, span=self._span, event_name=event
        )

    def _emit_heartbeat(self) -> None:
        if self._status == "running":
            self._emit_progress(EVENT_JOB_HEARTBEAT)

    def _next_seq(self, step_name: str) -> int:
        with self._lock:
            self._seq += 1
            self._current_step = step_name
            return self._seq

    def _step_finished(self, step: Step) -> None:
        """Auto-progress: with ``total_steps``, each completed/skipped step moves the bar."""
        if self._total_steps is None or step.status not in ("completed", "skipped"):
            return
        with self._lock:
            self._steps_done += 1
            self._percent = min(100.0, self._steps_done / self._total_steps * 100.0)
            self._current_step = step.name
            self._progress_unsent = True
        if self._rt.heartbeat is None:
            self._emit_progress()
        else:  # the next step's step.started record will most likely carry it
            self._rt.heartbeat.soon(self)

    def _flush_progress(self) -> None:
        """Send automatic progress that no ``step.started`` record has carried yet."""
        if self._status == "running" and self._progress_unsent:
            self._emit_progress()

    def _progress_for_step_record(self) -> float | None:
        """The progress a ``step.started`` record should carry (and now has sent)."""
        with self._lock:
            if not self._progress_unsent:
                return None
            self._progress_unsent = False
            return self._percent
