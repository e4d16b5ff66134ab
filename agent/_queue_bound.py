"""A byte bound on the SDK's batch queues, on top of their record bound.

The SDK bounds each export queue by record count only. 100,000 records are a few MiB when
they are small and hundreds of MiB when they carry large attributes, and while a slow
collector lets the queue fill, every queued record is also work for the cyclic garbage
collector. :class:`QueueBound` keeps an estimate of the bytes each queued record holds (a
fixed overhead per record, measured with ``tracemalloc`` on SDK 1.45, plus the lengths of
its strings) and makes room by dropping the oldest records, as the SDK does for its count.

Records leave the queue in three ways: exported (the wrapped exporter releases them once the
export returns, so a batch in flight still counts), evicted here, or, for queues no larger
than one export batch, evicted by the SDK itself (accounted before it happens). The SDK's
worker pops a batch from the same end without a lock of ours, so the oldest records are only
evicted while more than one export batch is queued: the worker can never find the queue
empty in the middle of taking a batch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._stats import Counters

__all__ = ["QueueBound", "estimate_log_record", "estimate_span"]

_logger = logging.getLogger(__name__)

#: Measured per-record overheads (bytes), without attributes: a ReadableSpan with its
#: context, status and bounded attribute dict; a ReadableLogRecord with its API record.
_SPAN_OVERHEAD = 2600
_LOG_OVERHEAD = 800
_EVENT_OVERHEAD = 400
_ATTRIBUTE_OVERHEAD = 128


#: Values that hold no bytes beyond the fixed overhead; checked by exact type first because
#: ``isinstance`` against the collection ABCs is slow and this runs for every record.
_SCALARS = frozenset({int, float, bool, type(None)})


def _value_size(value: Any) -> int:
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value)
    if kind in _SCALARS:
        return 0
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, Sequence):
        return sum(8 + _value_size(v) for v in value)
    if isinstance(value, Mapping):
        return _attributes_size(value)
    return 0


def _attributes_size(attributes: Mapping[str, Any] | None) -> int:
    if not attributes:
        return 0
    # The SDK's BoundedAttributes takes a lock per item read through its Mapping interface;
    # its plain dict (when it has one) is read directly: this runs for every record.
    plain = getattr(attributes, "_dict", None)
    items = plain if isinstance(plain, dict) else attributes
    size = _ATTRIBUTE_OVERHEAD * len(items)
    for key, value in items.items():
        kind = type(value)
        if kind is str:
            size += len(key) + len(value)
        elif kind in _SCALARS:
            size += len(key)
        else:
            size += len(key) + _value_size(value)
    return size


def estimate_span(span: Any) -> int:
    """Bytes a queued ``ReadableSpan`` holds, approximately (never raises)."""
    try:
        size = _SPAN_OVERHEAD + len(span.name or "") + _attributes_size(span.attributes)
        for event in span.events or ():
            size += _EVENT_OVERHEAD + len(event.name) + _attributes_size(event.attributes)
        for link in span.links or ():
            size += _EVENT_OVERHEAD + _attributes_size(link.attributes)
        return size
    except Exception:  # a span of some other SDK shape: count the overhead alone
        return _SPAN_OVERHEAD


def estimate_log_record(record: Any) -> int:
    """Bytes a queued log record (``ReadableLogRecord``/``ReadWriteLogRecord``) holds."""
    try:
        api = record.log_record
        return _LOG_OVERHEAD + _value_size(api.body) + _attributes_size(api.attributes)
    except Exception:
        return _LOG_OVERHEAD


#: Bumped in a forked child (the SDK empties its queues there); read per record instead of
#: a ``getpid()`` system call.
_forks = 0


def _after_fork_in_child() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

#: One record in this many has its size estimated; the rest count at the running average.
_SAMPLE_EVERY = 8
#: Weight of each new sample in the running average.
_SAMPLE_WEIGHT = 0.125


class QueueBound:
    """Byte accounting and eviction for one SDK ``BatchProcessor`` queue.

    The bytes held are the exact number of records queued or in flight times a running
    average of their size, estimated from one record in :data:`_SAMPLE_EVERY`: estimating
    every record cost about a third of the agent's own time per log line, and counting
    records keeps the accounting exact (it returns to zero when everything is exported)
    however the average moves.

    Args:
        max_bytes: Bytes the queue (and the batch being exported) may hold.
        estimate: Size estimate of one record.
        counters: Where drops are counted, under ``drop_counter``.
        signal: ``spans`` or ``log records``, for the one warning.
    """

    def __init__(
        self,
        max_bytes: int,
        estimate: Callable[[Any], int],
        counters: Counters,
        drop_counter: str,
        signal: str,
    ) -> None:
        """Start with an empty queue."""
        self.max_bytes = max_bytes
        self._estimate = estimate
        self._counters = counters
        self._drop_counter = drop_counter
        self._signal = signal
        self._lock = threading.Lock()
        self._records = 0  # queued or being exported
        self._average = 0.0  # bytes per record (0 until the first sample)
        self._admitted = 0
        self._forks = _forks
        self._warned = False

    @property
    def queued_bytes(self) -> int:
        """Estimated bytes queued and in flight."""
        return int(self._records * self._average)

    def _sample(self, item: Any) -> float:
        self._admitted += 1
        if self._average == 0.0 or self._admitted % _SAMPLE_EVERY == 0:
            size = float(self._estimate(item))
            self._average = (
                size
                if self._average == 0.0
                else self._average + _SAMPLE_WEIGHT * (size - self._average)
            )
        return self._average

    def admit(self, item: Any, batch_processor: Any, enqueue: Callable[[Any], object]) -> None:
        """Make room for ``item`` (oldest first), then ``enqueue(item)``, or drop it.

        ``batch_processor`` is the SDK's ``BatchProcessor`` (its ``_queue``,
        ``_max_queue_size`` and ``_max_export_batch_size``); without them, ``enqueue(item)``
        runs unbounded by bytes, as the SDK alone would.
        """
        queue = getattr(batch_processor, "_queue", None)
        capacity = getattr(batch_processor, "_max_queue_size", None)
        batch = getattr(batch_processor, "_max_export_batch_size", None)
        if queue is None or capacity is None or batch is None:
            enqueue(item)
            return
        dropped = 0
        with self._lock:
            if self._forks != _forks:  # a forked child: the SDK empties its queue
                self._forks, self._records = _forks, 0
            average = self._sample(item)
            limit = self.max_bytes / average if average else float("inf")
            while (len(queue) >= capacity or self._records + 1 > limit) and len(queue) > batch:
                try:
                    queue.pop()  # the oldest (the SDK appends on the left)
                except IndexError:
                    break
                self._records -= 1
                dropped += 1
            if self._records + 1 > limit and (queue or self._records):
                dropped += 1  # no room even after evicting what can be: drop this one
            else:
                if len(queue) >= capacity and queue:  # a tiny queue: the SDK evicts its oldest
                    self._records -= 1
                    dropped += 1
                self._records += 1
                enqueue(item)
            self._records = max(self._records, 0)
        if dropped:
            self._dropped(dropped)

    def release(self, batch: Sequence[Any]) -> None:
        """Forget an exported batch (called once its export returned)."""
        with self._lock:
            self._records = max(self._records - len(batch), 0)

    def _dropped(self, n: int) -> None:
        self._counters.add(self._drop_counter, n)
        if not self._warned:
            self._warned = True
            _logger.warning(
                "jobtrail: the %s export queue is full (%d MiB or its record limit): dropping "
                "the oldest; the collector is slow or unreachable (counted in agent_stats())",
                self._signal,
                self.max_bytes >> 20,
            )


class ReleasingExporter:
    """Delegate ``export`` to ``inner``, then release the batch from ``bound``."""

    def __init__(self, inner: Any, bound: QueueBound) -> None:
        """Wrap ``inner``."""
        self._inner = inner
        self._bound = bound

    def export(self, batch: Sequence[Any]) -> Any:
        """Export, then forget the batch's bytes whatever the outcome."""
        try:
            return self._inner.export(batch)
        finally:
            self._bound.release(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
