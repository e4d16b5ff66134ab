"""One Export call, whatever the transport: parse, decode, store, answer.

Both receivers call :meth:`Ingestor.export`; the outcomes that are not a normal answer are
the exceptions of :mod:`jobtrail.collector.outcomes`, which each receiver maps to its
protocol's status codes from the single table there.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from jobtrail.collector import otlp_json
from jobtrail.collector.decode import Decoded, decode_logs, decode_metrics, decode_traces
from jobtrail.collector.memory import MemoryLimiter
from jobtrail.collector.outcomes import InvalidPayload, Overloaded, ShuttingDown, StoreFailed
from jobtrail.collector.stats import ReceiverStats
from jobtrail.storage.writer import BatchWriter, WriterClosed, WriterOverloaded

log = logging.getLogger(__name__)

SIGNALS = ("traces", "logs", "metrics")
_REQUEST: dict[str, type[Message]] = {
    "traces": trace_pb.ExportTraceServiceRequest,
    "logs": logs_pb.ExportLogsServiceRequest,
    "metrics": metrics_pb.ExportMetricsServiceRequest,
}
_RESPONSE: dict[str, type[Message]] = {
    "traces": trace_pb.ExportTraceServiceResponse,
    "logs": logs_pb.ExportLogsServiceResponse,
    "metrics": metrics_pb.ExportMetricsServiceResponse,
}
_REJECTED_FIELD = {
    "traces": "rejected_spans",
    "logs": "rejected_log_records",
    "metrics": "rejected_data_points",
}
#: Decoders by signal, given the parsed request and, for protobuf bodies, the bytes received
#: (the column-wise log decoder reads them instead of the parsed message).
_DECODE: dict[str, Callable[[Any, bytes | None], Decoded]] = {
    "traces": decode_traces,
    "logs": decode_logs,
    "metrics": lambda request, _raw: decode_metrics(request),
}


def response_for(kind: str, decoded: Decoded) -> Message:
    """The Export response: ``partial_success`` set only when records were rejected."""
    resp = _RESPONSE[kind]()
    if decoded.rejected:
        partial = resp.partial_success  # type: ignore[attr-defined]
        setattr(partial, _REJECTED_FIELD[kind], decoded.rejected)
        partial.error_message = decoded.message
    return resp


class Ingestor:
    """Turns Export request bodies into committed rows and the protocol's response."""

    def __init__(
        self,
        writer: BatchWriter,
        stats: ReceiverStats | None = None,
        memory: MemoryLimiter | None = None,
    ) -> None:
        self._writer = writer
        self.stats = stats or ReceiverStats()
        self._memory = memory

    def parse(self, kind: str, body: bytes, *, json: bool) -> Message:
        """Parse a request body; raise :class:`InvalidPayload` if it is not one."""
        request = _REQUEST[kind]()
        try:
            if json:
                otlp_json.parse(body, request)
            else:
                request.ParseFromString(body)
        except (DecodeError, otlp_json.InvalidJson) as exc:
            self.stats.invalid[kind] += 1
            raise InvalidPayload(f"undecodable {kind} request: {exc}") from exc
        return request

    async def export(
        self, kind: str, transport: str, body: bytes, *, json: bool = False
    ) -> Message:
        """Store one Export request and return its response message."""
        self.stats.requests[(transport, kind)] += 1
        # Above the soft memory limit, refuse while there is a backlog to drain. With an empty
        # queue the excess is not pending data (allocator and cache pages the process keeps),
        # and refusing would only lock the server out of all data without freeing anything.
        if self._memory is not None and self._memory.over_limit and self._writer.queued_records:
            self.stats.refused_requests[kind] += 1
            raise Overloaded("server is above its memory limit, retry later")
        # The parsed message is not kept while the batch waits for its commit: it takes
        # about 3.5 times the request's bytes, more than the decoded rows.
        decoded = _DECODE[kind](self.parse(kind, body, json=json), None if json else body)
        decoded.batch.request_digest = hashlib.blake2b(
            body, digest_size=16, person=kind.encode()
        ).digest()
        n = decoded.batch.record_count
        self.stats.received[kind] += n + decoded.rejected
        self.stats.rejected[kind] += decoded.rejected
        if n:
            try:
                await self._writer.write(decoded.batch)
            except WriterOverloaded as exc:
                self.stats.refused[kind] += n
                self.stats.refused_requests[kind] += 1
                raise Overloaded(f"server busy, retry later: {exc}") from exc
            except WriterClosed as exc:
                raise ShuttingDown("server is shutting down, retry later") from exc
            except Exception as exc:
                log.exception("storing a %s request failed", kind)
                raise StoreFailed("storing the request failed") from exc
        self.stats.stored[kind] += n
        return response_for(kind, decoded)
