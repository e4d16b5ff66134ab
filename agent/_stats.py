"""Agent self-observability: counters for exports, drops and swallowed internal failures.

The agent promises never to raise into the application, so every failure it swallows must
still be visible somewhere: here, as counters exposed through ``jobtrail.agent_stats()``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any

_logger = logging.getLogger(__name__)

__all__ = ["AgentStats", "Counters", "Guard"]


@dataclass(frozen=True)
class AgentStats:
    """A snapshot of the agent's counters.

    Attributes:
        spans_exported: Spans the exporter accepted.
        spans_export_failed: Spans in batches the exporter rejected or raised on.
        spans_dropped: Spans dropped because the export queue was full.
        logs_exported: Log records the exporter accepted.
        logs_export_failed: Log records in batches the exporter rejected or raised on.
        logs_dropped: Log records dropped because the export queue was full.
        internal_errors: Failures inside the agent that were swallowed to protect the app.
        flush_timeouts: ``force_flush``/``shutdown`` calls that hit their time bound.
        spooled: Records written to the disk spool (``spool_dir``) because the collector
            could not take them.
        spool_replayed: Spooled records the collector accepted later (also counted as
            exported).
        spool_dropped: Spooled records removed to keep the spool under its size cap, or
            refused by the collector when replayed.
        endpoint_reachable: Result of the TCP probe at configure; ``None`` when not probed.
        spans_queued: Spans waiting in the export queue now (agent-owned pipeline only).
        logs_queued: Log records waiting in the export queue now.
        queue_capacity: Records each signal's queue holds (``max_queue_size``; 0 when the
            application's own providers are used); the oldest go first beyond it.

    Example:
        >>> import jobtrail
        >>> jobtrail.agent_stats().internal_errors >= 0
        True
    """

    spans_exported: int = 0
    spans_export_failed: int = 0
    spans_dropped: int = 0
    logs_exported: int = 0
    logs_export_failed: int = 0
    logs_dropped: int = 0
    internal_errors: int = 0
    flush_timeouts: int = 0
    spooled: int = 0
    spool_replayed: int = 0
    spool_dropped: int = 0
    endpoint_reachable: bool | None = None
    spans_queued: int = 0
    logs_queued: int = 0
    queue_capacity: int = 0


#: Read from the export queues when a snapshot is taken, not counted.
_GAUGES = frozenset({"endpoint_reachable", "spans_queued", "logs_queued", "queue_capacity"})
_COUNTER_NAMES = frozenset(f.name for f in fields(AgentStats) if f.name not in _GAUGES)


def queue_length(processor: Any) -> int:
    """Records in an SDK batch processor's queue now (its private state; 0 if renamed)."""
    queue = getattr(getattr(processor, "_batch_processor", None), "_queue", None)
    try:
        return len(queue) if queue is not None else 0
    except TypeError:
        return 0


class Counters:
    """Thread-safe mutable counters behind :class:`AgentStats`.

    Exporters run on SDK worker threads while jobs log from application threads, so all
    updates take one lock; they are rare (per batch or per failure), so it is uncontended.
    """

    def __init__(self) -> None:
        """Start every counter at zero."""
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(_COUNTER_NAMES, 0)
        self._endpoint_reachable: bool | None = None
        self._logged_where: set[str] = set()
        self._queues: dict[str, Any] = {}
        self._queue_capacity = 0

    def watch_queues(self, spans: Any, logs: Any, capacity: int) -> None:
        """Report the current length of these batch processors' queues in snapshots."""
        with self._lock:
            self._queues = {"spans_queued": spans, "logs_queued": logs}
            self._queue_capacity = capacity

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (one of the :class:`AgentStats` int fields)."""
        with self._lock:
            self._values[name] += n

    def set_endpoint_reachable(self, reachable: bool) -> None:
        """Record the outcome of the endpoint probe."""
        with self._lock:
            self._endpoint_reachable = reachable

    def internal_error(self, where: str, exc: BaseException) -> None:
        """Count a swallowed failure; log the first one per call site as a warning.

        Later failures at the same site go to debug so a broken exporter or a bad
        attribute in a hot loop cannot flood the application's logs.
        """
        with self._lock:
            self._values["internal_errors"] += 1
            first = where not in self._logged_where
            self._logged_where.add(where)
        try:
            if first:
                _logger.warning("jobtrail: internal error in %s (suppressed)", where, exc_info=exc)
            else:
                _logger.debug("jobtrail: internal error in %s: %r", where, exc)
        except Exception:  # logging itself failed; nothing more to do
            pass

    def guard(self, where: str) -> Guard:
        """Return a context manager that swallows and counts ``Exception`` raised inside.

        Example:
            >>> counters = Counters()
            >>> with counters.guard("example"):
            ...     raise RuntimeError("boom")
            >>> counters.snapshot().internal_errors
            1
        """
        return Guard(self, where)

    def snapshot(self) -> AgentStats:
        """Return the current values as an immutable :class:`AgentStats`."""
        with self._lock:
            queued = {name: queue_length(p) for name, p in self._queues.items() if p is not None}
            return AgentStats(
                endpoint_reachable=self._endpoint_reachable,
                queue_capacity=self._queue_capacity if queued else 0,
                **queued,
                **self._values,
            )


class Guard:
    """Swallow ``Exception`` (never ``BaseException``) and count it on :class:`Counters`.

    ``KeyboardInterrupt`` and ``asyncio.CancelledError`` pass through: they are the
    application's control flow, not agent failures.
    """

    __slots__ = ("_counters", "_where")

    def __init__(self, counters: Counters, where: str) -> None:
        """Bind the guard to its counters and the name of the guarded call site."""
        self._counters = counters
        self._where = where

    def __enter__(self) -> Guard:
        """Enter the guarded block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Suppress and count an ``Exception``; let everything else propagate."""
        if isinstance(exc, Exception):
            self._counters.internal_error(self._where, exc)
            return True
        return False
