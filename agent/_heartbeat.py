"""Periodic ``job.heartbeat`` records for running jobs; lifecycle records sent a moment later.

The collector marks a job ``lost`` when it has heard nothing from it for a while (see
DESIGN, lifecycle events); a job busy in one long step logs nothing, so one background
thread per agent speaks for all running jobs.

The same thread sends a job's ``job.started``, a step's ``step.started`` and a job's automatic
progress (after each step) a moment late, :data:`PROGRESS_DELAY_S`: a job or step that has
ended by then needs none of them, its span says everything, and a step starting within the
moment carries the progress the step before it made. A job of many quick steps then costs
its spans and log lines alone, while the page still sees a long job or step within twice
:data:`PROGRESS_DELAY_S` (then the export delay) of its start.

While jobs run, the thread wakes every :data:`PROGRESS_DELAY_S` on its own, so a step that
ends does not wake it: a wake-up per step (a lock handed over, the GIL taken and given
back) cost the application thread more than the record it saves.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from ._stats import Counters

__all__ = ["Heartbeat"]


#: How long lifecycle records wait: for the job or step to end, or the next step to start.
PROGRESS_DELAY_S = 0.2


class _Beating(Protocol):
    def _emit_heartbeat(self) -> None: ...


class _Deferring(Protocol):
    def _flush_due(self) -> None: ...


class _Job(_Beating, _Deferring, Protocol):
    """A running job: it beats, and may owe lifecycle records."""


class Heartbeat:
    """Emit a heartbeat for every registered job every ``interval_s`` seconds.

    The thread starts with the first job and is a daemon, so it never keeps the
    interpreter alive.
    """

    def __init__(self, interval_s: float, counters: Counters) -> None:
        """Create an idle heartbeat; nothing runs until :meth:`add` is called."""
        self._interval_s = interval_s
        self._counters = counters
        self._jobs: set[_Beating] = set()
        self._due: dict[_Deferring, float] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._wake_at = float("inf")  # when the thread's current wait ends

    def add(self, job: _Beating) -> None:
        """Start beating for ``job`` (starting the thread if needed)."""
        with self._cond:
            self._jobs.add(job)
            self._ensure_thread()

    def discard(self, job: _Job) -> None:
        """Stop beating for ``job`` and drop its pending call (it ended: nothing is owed)."""
        with self._cond:
            self._jobs.discard(job)
            self._due.pop(job, None)

    def soon(self, item: _Deferring) -> None:
        """Call ``item._flush_due()`` within about :data:`PROGRESS_DELAY_S` seconds."""
        with self._cond:
            if item in self._due:
                return
            due = time.monotonic() + PROGRESS_DELAY_S
            self._due[item] = due
            self._ensure_thread()
            if self._wake_at > due + PROGRESS_DELAY_S:  # in a long wait: only then wake it
                self._cond.notify()

    def flush_now(self) -> None:
        """Make every pending call now, in this thread (before a flush of the exporters)."""
        with self._cond:
            due, self._due = list(self._due), {}
        for item in due:
            with self._counters.guard("lifecycle"):
                item._flush_due()

    def stop(self) -> None:
        """Stop the thread (it exits at once)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _ensure_thread(self) -> None:
        # A forked child inherits the thread object but not the thread: start it again.
        alive = self._thread is not None and self._thread.is_alive()
        if not alive and not self._stopped:
            self._thread = threading.Thread(
                target=self._run, name="jobtrail-heartbeat", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        next_beat = time.monotonic() + self._interval_s
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                due = [item for item, at in self._due.items() if at <= now]
                for item in due:
                    del self._due[item]
                beat = now >= next_beat
                if not due and not beat:
                    wake = min([next_beat, *self._due.values()])
                    if self._jobs:  # tick while jobs run: soon() need not wake us
                        wake = min(wake, now + PROGRESS_DELAY_S)
                    self._wake_at = wake
                    self._cond.wait(wake - now)
                    self._wake_at = float("inf")
                    continue
                jobs = list(self._jobs) if beat else []
                if beat:
                    next_beat = now + self._interval_s
            for item in due:
                with self._counters.guard("lifecycle"):
                    item._flush_due()
            for job in jobs:
                with self._counters.guard("heartbeat"):
                    job._emit_heartbeat()
