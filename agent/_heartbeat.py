"""Periodic ``job.heartbeat`` records for running jobs.

The collector marks a job ``lost`` when it has heard nothing from it for a while (see
DESIGN, lifecycle events); a job busy in one long step logs nothing, so one background
thread per agent speaks for all running jobs.
"""

from __future__ import annotations

import threading
from typing import Protocol

from ._stats import Counters

__all__ = ["Heartbeat"]


class _Beating(Protocol):
    def _emit_heartbeat(self) -> None: ...


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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job: _Beating) -> None:
        """Start beating for ``job`` (starting the thread if needed)."""
        with self._lock:
            self._jobs.add(job)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="jobtrail-heartbeat", daemon=True
                )
                self._thread.start()

    def discard(self, job: _Beating) -> None:
        """Stop beating for ``job``."""
        with self._lock:
            self._jobs.discard(job)

    def stop(self) -> None:
        """Stop the thread (it exits at its next wake-up, at most ``interval_s`` later)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                jobs = list(self._jobs)
            for job in jobs:
                with self._counters.guard("heartbeat"):
                    job._emit_heartbeat()
