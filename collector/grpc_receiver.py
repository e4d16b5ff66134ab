"""OTLP/gRPC receiver: TraceService, LogsService and MetricsService on one ``grpc.aio`` server.

Requests are taken as raw bytes and parsed here (not by grpc's deserializer), so an
undecodable payload becomes INVALID_ARGUMENT with a message instead of an opaque INTERNAL,
and nothing of it reaches storage. A call is answered only after the writer committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from jobtrail.auth import TokenAuth
from jobtrail.collector.ingest import SIGNALS, Ingestor
from jobtrail.collector.outcomes import ExportError, Unauthenticated, outcome_of

log = logging.getLogger(__name__)

_DEFAULT_MAX_RECV_BYTES = 4 * 1024 * 1024
#: Export calls one client connection may have in flight; more wait in the client. An SDK
#: exporter sends one at a time and a Collector's exporter ~10; the bound keeps the bodies
#: gRPC has read but the writer not yet committed from outgrowing the memory limit under
#: overload (10x the sustainable rate: 528-538 MiB of a 512 MiB limit without it, 497 with
#: 64; docs/benchmarks.md, round 10).
DEFAULT_MAX_CONCURRENT_STREAMS = 64
_SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}


def _status_details(code: grpc.StatusCode, message: str, retry_after_s: int | None) -> bytes:
    """A ``google.rpc.Status`` with ``RetryInfo``, as the OTLP spec asks for throttling."""
    status = status_pb2.Status(code=code.value[0], message=message)
    if retry_after_s is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after_s))
        detail = any_pb2.Any()
        detail.Pack(info)
        status.details.append(detail)
    return status.SerializeToString()


class OtlpGrpcReceiver:
    """The OTLP gRPC server.

    Args:
        ingestor: Stores what the Export calls carry.
        host: Interface to bind (``127.0.0.1`` by default: nothing is exposed unasked).
        port: Port to bind; 0 picks a free one (see :attr:`port` after :meth:`start`).
        max_recv_bytes: Largest request accepted (RESOURCE_EXHAUSTED above it).
        max_concurrent_streams: Export calls in flight per client connection (HTTP/2
            ``SETTINGS_MAX_CONCURRENT_STREAMS``); the client queues the rest.
        auth: Bearer-token check; ``None`` accepts every caller.
        tls: ``(cert_file, key_file)`` to serve TLS; ``None`` for plaintext.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        *,
        host: str = "127.0.0.1",
        port: int = 4317,
        max_recv_bytes: int = _DEFAULT_MAX_RECV_BYTES,
        max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS,
        auth: TokenAuth | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._auth = auth
        self._tls = tls
        self._host = host
        self._requested_port = port
        self._max_recv_bytes = max_recv_bytes
        self._max_streams = max_concurrent_streams
        self.stats = self._ingestor.stats
        self.port = port
        self._server: grpc.aio.Server | None = None

    def _handler(self, kind: str) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        async def export(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                if self._auth is not None:
                    metadata = dict(context.invocation_metadata() or ())
                    if not self._auth.allows(str(metadata.get("authorization", ""))):
                        raise Unauthenticated("missing or invalid bearer token")
                response = await self._ingestor.export(kind, "grpc", raw)
            except ExportError as exc:
                outcome = outcome_of(exc)
                details = _status_details(outcome.grpc_code, str(exc), outcome.retry_after_s)
                context.set_trailing_metadata((("grpc-status-details-bin", details),))
                await context.abort(outcome.grpc_code, str(exc))
            return response.SerializeToString()

        return export

    async def start(self) -> None:
        """Bind and start serving."""
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self._max_recv_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.max_concurrent_streams", self._max_streams),
            ]
        )
        for kind in SIGNALS:
            service = _SERVICES[kind]
            handler = grpc.unary_unary_rpc_method_handler(
                self._handler(kind), request_deserializer=None, response_serializer=None
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": handler}),)
            )
        address = f"{self._host}:{self._requested_port}"
        if self._tls is not None:
            cert, key = (Path(p).read_bytes() for p in self._tls)
            creds = grpc.ssl_server_credentials([(key, cert)])
            self.port = server.add_secure_port(address, creds)
        else:
            self.port = server.add_insecure_port(address)
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
