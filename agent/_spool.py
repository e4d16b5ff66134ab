"""The optional disk spool: export batches wait on disk while the collector is unreachable.

With ``spool_dir`` set, each export batch is encoded once as an OTLP Export request and sent
once. If the collector cannot be reached (or asks to retry later), the request is written
to the spool directory instead of being retried in memory or lost; while anything is
spooled, new batches are appended behind it, so requests reach the collector in the order
they were made. A background thread sends the spooled requests, oldest first, as soon as the
collector answers again (backing off while it does not); the next process using the same
directory sends whatever an earlier one left behind.

Every request is sent with the bytes it was written with, and the collector recognises a
request it has already stored (a digest of the body, committed with the rows), so sending
a request again after an interrupted replay stores nothing twice. The directory is capped
(``spool_max_mib``): when a new request does not fit, the oldest go first, counted in
``agent_stats().spool_dropped``. Files are written whole and then renamed, so a crash never
leaves half a request behind.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._otlp_sender import OtlpSender, SendResult
from ._stats import Counters

__all__ = ["Spool", "SpoolingLogExporter", "SpoolingSpanExporter"]

_logger = logging.getLogger(__name__)

_SUFFIX = ".otlp"
_MIN_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 5.0
_COUNTER = {"traces": "spans", "logs": "logs"}


def _parse(name: str) -> tuple[str, int] | None:
    """``(signal, records)`` of a spool file name ``<time>-<pid>-<seq>.<signal>.<n>.otlp``."""
    parts = name.split(".")
    if len(parts) != 4 or "." + parts[3] != _SUFFIX or parts[1] not in _COUNTER:
        return None
    try:
        return parts[1], int(parts[2])
    except ValueError:
        return None


class Spool:
    """A size-capped directory of serialized Export requests, replayed oldest first.

    Args:
        directory: Where the requests are kept (created if missing).
        max_bytes: Cap on the size of the directory's requests.
        sender: Sends one stored request.
        counters: ``spooled``, ``spool_replayed`` and ``spool_dropped`` (records).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        sender: OtlpSender,
        counters: Counters,
    ) -> None:
        """Open (and create) the directory; nothing is sent until :meth:`start`."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        self._sender = sender
        self._counters = counters
        self._lock = threading.Lock()  # the file list and the byte total
        self._replaying = threading.Lock()  # one replay at a time
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._seq = itertools.count()
        self._down = False
        self._warned = False
        self._files, self._bytes = self._scan()
        self._thread: threading.Thread | None = None

    def _scan(self) -> tuple[dict[str, int], int]:
        """The requests on disk (name -> size), including other processes' ones."""
        files: dict[str, int] = {}
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if _parse(entry.name) is not None:
                    try:
                        files[entry.name] = entry.stat().st_size
                    except FileNotFoundError:
                        continue
        return files, sum(files.values())

    @property
    def pending(self) -> int:
        """Requests waiting on disk."""
        return len(self._files)

    @property
    def holding(self) -> bool:
        """Whether new batches must go behind the spooled ones (or the collector is down)."""
        return self._down or bool(self._files)

    def send(self, signal: str, payload: bytes) -> SendResult:
        """Send one request now (no spooling)."""
        return self._sender.send(signal, payload)

    def mark_down(self) -> None:
        """The collector is known unreachable: spool without trying it first."""
        self._down = True
        self._wake.set()

    def append(self, signal: str, payload: bytes, records: int) -> None:
        """Write one request behind the others, dropping the oldest if the cap needs it."""
        if len(payload) > self._max_bytes:
            self._counters.add("spool_dropped", records)
            return
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):08d}.{signal}.{records}"
        name += _SUFFIX
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(payload)
        os.replace(tmp, self.directory / name)
        with self._lock:
            self._files[name] = len(payload)
            self._bytes += len(payload)
            dropped = self._trim()
        self._counters.add("spooled", records)
        if dropped:
            self._counters.add("spool_dropped", dropped)
            if not self._warned:  # once: the counter tells the rest
                self._warned = True
                _logger.warning(
                    "jobtrail: spool %s is full (%d MiB): dropping its oldest requests "
                    "(counted in agent_stats().spool_dropped)",
                    self.directory,
                    self._max_bytes >> 20,
                )
        self._wake.set()

    def _trim(self) -> int:
        """Remove the oldest requests until the total fits (lock held); records removed."""
        dropped = 0
        for name in sorted(self._files):
            if self._bytes <= self._max_bytes:
                break
            self._bytes -= self._files.pop(name)
            (self.directory / name).unlink(missing_ok=True)
            parsed = _parse(name)
            dropped += parsed[1] if parsed else 0
        return dropped

    def replay(self, deadline: float | None = None) -> bool:
        """Send the spooled requests oldest first; True once none is left.

        Stops at the first one the collector cannot take now (kept for later) or at
        ``deadline`` (``time.monotonic()``). A request refused for good is dropped.
        """
        with self._replaying:
            with self._lock:  # pick up what other processes left or already sent
                self._files, self._bytes = self._scan()
                names = sorted(self._files)
            sent = False
            for name in names:
                if self._stopped.is_set() or (deadline is not None and time.monotonic() > deadline):
                    return False
                signal, records = _parse(name) or ("traces", 0)
                try:
                    payload = (self.directory / name).read_bytes()
                except FileNotFoundError:  # another process sent it meanwhile
                    payload = None
                if payload is not None:
                    result = self._sender.send(signal, payload)
                    if result is SendResult.RETRY:
                        self._down = True
                        return False
                    sent = sent or result is SendResult.SENT
                    counter = "spool_replayed" if result is SendResult.SENT else "spool_dropped"
                    self._counters.add(counter, records)
                    self._counters.add(
                        f"{_COUNTER[signal]}_exported" if result is SendResult.SENT
                        else f"{_COUNTER[signal]}_export_failed",
                        records,
                    )  # fmt: skip
                (self.directory / name).unlink(missing_ok=True)
                with self._lock:
                    self._bytes -= self._files.pop(name, 0)
            if sent:  # the collector answered: new batches may go to it directly again
                self._down = False
            return not self._files

    def start(self) -> None:
        """Start the thread that replays whenever something is spooled."""
        self._thread = threading.Thread(target=self._run, name="jobtrail-spool", daemon=True)
        self._thread.start()
        if self._files:
            self._wake.set()

    def _run(self) -> None:
        backoff = _MIN_BACKOFF_S
        while not self._stopped.is_set():
            self._wake.wait(backoff if self.holding else None)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                done = self.replay()
            except Exception as exc:  # a full disk, a removed directory: keep the app alive
                self._counters.internal_error("spool replay", exc)
                done = False
            backoff = _MIN_BACKOFF_S if done else min(backoff * 2, _MAX_BACKOFF_S)

    def close(self, deadline: float) -> bool:
        """Replay what can be sent before ``deadline``, then stop; True if nothing is left."""
        empty = not self.holding
        if not empty:
            try:
                empty = self.replay(deadline)
            except Exception as exc:
                self._counters.internal_error("spool replay", exc)
        self._stopped.set()
        self._wake.set()
        self._sender.close()
        return empty


class _Spooling:
    """Send a batch once; spool it when the collector cannot take it now."""

    def __init__(
        self, spool: Spool, signal: str, encode: Callable[[Sequence[Any]], Any], counters: Counters
    ) -> None:
        self._spool = spool
        self._signal = signal
        self._encode = encode
        self._counters = counters
        self._name = _COUNTER[signal]

    def _export(self, batch: Sequence[Any]) -> bool:
        try:
            payload = self._encode(batch).SerializeToString()
        except Exception as exc:
            self._counters.add(f"{self._name}_export_failed", len(batch))
            self._counters.internal_error(f"{self._name} encoding", exc)
            return False
        try:
            if not self._spool.holding:
                result = self._spool.send(self._signal, payload)
                if result is not SendResult.RETRY:
                    ok = result is SendResult.SENT
                    name = f"{self._name}_exported" if ok else f"{self._name}_export_failed"
                    self._counters.add(name, len(batch))
                    return ok
                self._spool.mark_down()
            self._spool.append(self._signal, payload, len(batch))
            return True
        except Exception as exc:  # the spool itself failed (disk full): the batch is lost
            self._counters.add(f"{self._name}_export_failed", len(batch))
            self._counters.internal_error("spool", exc)
            return False


class SpoolingSpanExporter(_Spooling, SpanExporter):
    """Span exporter with the disk spool behind it."""

    def __init__(self, spool: Spool, counters: Counters) -> None:
        """Encode with the OTLP exporters' own encoder."""
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        super().__init__(spool, "traces", encode_spans, counters)

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        """Send or spool ``spans``."""
        return SpanExportResult.SUCCESS if self._export(spans) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Nothing to release: the spool is closed by the pipeline."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here."""
        return True


class SpoolingLogExporter(_Spooling, LogRecordExporter):
    """Log record exporter with the disk spool behind it."""

    def __init__(self, spool: Spool, counters: Counters) -> None:
        """Encode with the OTLP exporters' own encoder."""
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        super().__init__(spool, "logs", encode_logs, counters)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        """Send or spool ``batch``."""
        ok = self._export(batch)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        """Nothing to release: the spool is closed by the pipeline."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here."""
        return True
