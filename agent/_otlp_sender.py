"""Send an already serialized OTLP Export request, over gRPC or HTTP, and classify the answer.

The SDK's exporters take SDK objects, not bytes, so batches that waited in the disk spool are
sent through this small client instead. It resolves the endpoint, headers and TLS the way
the OTLP exporters do (explicit option, then ``OTEL_EXPORTER_OTLP_<SIGNAL>_*``, then
``OTEL_EXPORTER_OTLP_*``, then the default) and sends the stored bytes unchanged, so a
collector that already stored a request recognises it when it is sent again.
"""

from __future__ import annotations

import enum
import os
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from opentelemetry.util.re import parse_env_headers

from ._config import PROTOCOL_HTTP, AgentConfig

__all__ = ["OtlpSender", "SendResult"]

_DEFAULT_TIMEOUT_S = 10.0
_GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
#: Answers after which the same request may succeed later (OTLP specification).
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_RETRYABLE_GRPC = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}
)


class SendResult(enum.Enum):
    """What became of one request."""

    SENT = "sent"  #: the collector accepted it
    RETRY = "retry"  #: unreachable or asked to retry: keep it
    REJECTED = "rejected"  #: refused for good (bad data): drop it


def _env(signal: str, name: str) -> str | None:
    for key in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_{name}", f"OTEL_EXPORTER_OTLP_{name}"):
        value = os.environ.get(key, "").strip()
        if value:
            return value
    return None


class OtlpSender:
    """Posts serialized ``Export*ServiceRequest`` bytes to the configured collector."""

    def __init__(self, config: AgentConfig) -> None:
        """Resolve where and how to send, once."""
        self._http = config.protocol == PROTOCOL_HTTP
        self._config = config
        timeout = config.export_timeout_s or float(_env("traces", "TIMEOUT") or 0)
        self._timeout_s = timeout or _DEFAULT_TIMEOUT_S
        self._lock = threading.Lock()
        self._channels: dict[str, Any] = {}

    def _headers(self, signal: str) -> dict[str, str]:
        if self._config.headers is not None:
            return dict(self._config.headers)
        raw = _env(signal, "HEADERS")
        return dict(parse_env_headers(raw, liberal=True)) if raw else {}

    def _endpoint(self, signal: str) -> str:
        if self._config.endpoint:
            base = self._config.endpoint
            return f"{base}/v1/{signal}" if self._http else base
        specific = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
        if specific:
            return specific
        base = (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip().rstrip("/")
        if self._http:
            return f"{base or 'http://localhost:4318'}/v1/{signal}"
        return base or "http://localhost:4317"

    def send(self, signal: str, payload: bytes) -> SendResult:
        """Send one request; never raises."""
        try:
            return (
                self._send_http(signal, payload) if self._http else self._send_grpc(signal, payload)
            )
        except Exception:  # noqa: BLE001 - a network failure is a retry, never the app's problem
            return SendResult.RETRY

    def _send_http(self, signal: str, payload: bytes) -> SendResult:
        url = self._endpoint(signal)
        headers = {**self._headers(signal), "Content-Type": "application/x-protobuf"}
        request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        context = None
        if url.startswith("https:"):
            context = ssl.create_default_context(cafile=_env(signal, "CERTIFICATE"))
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s, context=context) as resp:  # noqa: S310
                resp.read()
        except urllib.error.HTTPError as exc:
            return SendResult.RETRY if exc.code in _RETRYABLE_HTTP else SendResult.REJECTED
        return SendResult.SENT

    def _grpc_channel(self, signal: str) -> Any:
        import grpc  # lazily: only the gRPC protocol needs it

        endpoint = self._endpoint(signal)
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        target = parsed.netloc or endpoint
        with self._lock:
            channel = self._channels.get(target)
            if channel is None:
                insecure = self._config.insecure
                if parsed.scheme == "https":
                    insecure = False
                elif insecure is None:
                    env = _env(signal, "INSECURE")
                    insecure = env.lower() == "true" if env else parsed.scheme == "http"
                if insecure:
                    channel = grpc.insecure_channel(target)
                else:
                    cafile = _env(signal, "CERTIFICATE")
                    roots = Path(cafile).read_bytes() if cafile else None
                    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
                    channel = grpc.secure_channel(target, credentials)
                self._channels[target] = channel
            return channel

    def _send_grpc(self, signal: str, payload: bytes) -> SendResult:
        import grpc

        call = self._grpc_channel(signal).unary_unary(_GRPC_METHODS[signal])
        metadata = tuple((k.lower(), v) for k, v in self._headers(signal).items())
        try:
            call(payload, timeout=self._timeout_s, metadata=metadata)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            return SendResult.RETRY if code.name in _RETRYABLE_GRPC else SendResult.REJECTED
        return SendResult.SENT

    def close(self) -> None:
        """Close the gRPC channels, if any were opened."""
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()
