"""OTLP/gRPC receiver: TraceService, LogsService and MetricsService on one ``grpc.aio`` server.

Requests are taken as raw bytes and parsed here (not by grpc's deserializer), so an
undecodable payload becomes INVALID_ARGUMENT with a message instead of an opaque INTERNAL,
and nothing of it reaches storage. A call is answered only after the writer committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from jobtrail.collector.decode import Decoded, decode_logs, decode_metrics, decode_traces
from jobtrail.collector.stats import ReceiverStats
from jobtrail.storage.writer import BatchWriter, WriterClosed, WriterOverloaded

log = logging.getLogger(__name__)

_DEFAULT_MAX_RECV_BYTES = 4 * 1024 * 1024


def _response_for(kind: str, decoded: Decoded) -> Message:
    if kind == "traces":
        resp: Message = trace_pb.ExportTraceServiceResponse()
        if decoded.rejected:
            resp.partial_success.rejected_spans = decoded.rejected  # type: ignore[attr-defined]
    elif kind == "logs":
        resp = logs_pb.ExportLogsServiceResponse()
        if decoded.rejected:
            resp.partial_success.rejected_log_records = decoded.rejected  # type: ignore[attr-defined]
    else:
        resp = metrics_pb.ExportMetricsServiceResponse()
        if decoded.rejected:
            resp.partial_success.rejected_data_points = decoded.rejected  # type: ignore[attr-defined]
    if decoded.rejected:
        resp.partial_success.error_message = decoded.message  # type: ignore[attr-defined]
    return resp


_PKG = "opentelemetry.proto.collector"
_SIGNALS: dict[str, tuple[str, type[Message], Callable[[Any], Decoded]]] = {
    "traces": (f"{_PKG}.trace.v1.TraceService", trace_pb.ExportTraceServiceRequest, decode_traces),
    "logs": (f"{_PKG}.logs.v1.LogsService", logs_pb.ExportLogsServiceRequest, decode_logs),
    "metrics": (
        f"{_PKG}.metrics.v1.MetricsService",
        metrics_pb.ExportMetricsServiceRequest,
        decode_metrics,
    ),
}


class OtlpGrpcReceiver:
    """The OTLP gRPC server.

    Args:
        writer: Where decoded batches go.
        host: Interface to bind (``127.0.0.1`` by default: nothing is exposed unasked).
        port: Port to bind; 0 picks a free one (see :attr:`port` after :meth:`start`).
        max_recv_bytes: Largest request accepted (RESOURCE_EXHAUSTED above it).
    """

    def __init__(
        self,
        writer: BatchWriter,
        *,
        host: str = "127.0.0.1",
        port: int = 4317,
        max_recv_bytes: int = _DEFAULT_MAX_RECV_BYTES,
        stats: ReceiverStats | None = None,
    ) -> None:
        self._writer = writer
        self._host = host
        self._requested_port = port
        self._max_recv_bytes = max_recv_bytes
        self.stats = stats or ReceiverStats()
        self.port = port
        self._server: grpc.aio.Server | None = None

    def _handler(self, kind: str) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        _, request_type, decode = _SIGNALS[kind]

        async def export(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.stats.requests[("grpc", kind)] += 1
            request = request_type()
            try:
                request.ParseFromString(raw)
            except DecodeError as exc:
                self.stats.invalid[kind] += 1
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"undecodable {kind} request: {exc}"
                )
            decoded = decode(request)
            self.stats.received[kind] += decoded.batch.record_count + decoded.rejected
            self.stats.rejected[kind] += decoded.rejected
            try:
                await self._writer.write(decoded.batch)
            except WriterOverloaded as exc:
                self.stats.refused[kind] += decoded.batch.record_count
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"server busy, retry later: {exc}")
            except WriterClosed:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
            except Exception:
                log.exception("storing a %s request failed", kind)
                await context.abort(grpc.StatusCode.INTERNAL, "storing the request failed")
            self.stats.stored[kind] += decoded.batch.record_count
            return _response_for(kind, decoded).SerializeToString()

        return export

    async def start(self) -> None:
        """Bind and start serving."""
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self._max_recv_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        for kind, (service, _, _) in _SIGNALS.items():
            handler = grpc.unary_unary_rpc_method_handler(
                self._handler(kind), request_deserializer=None, response_serializer=None
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": handler}),)
            )
        self.port = server.add_insecure_port(f"{self._host}:{self._requested_port}")
        if self.port == 0:
            raise OSError(f"cannot bind OTLP/gRPC on {self._host}:{self._requested_port}")
        await server.start()
        self._server = server
        log.info("OTLP/gRPC listening on %s:%d", self._host, self.port)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting; let calls in flight finish for up to ``grace_s``."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
