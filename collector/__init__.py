"""OTLP receivers: decode Export requests and hand them to the storage writer."""

from __future__ import annotations

from jobtrail.collector.decode import Decoded, decode_logs, decode_metrics, decode_traces
from jobtrail.collector.grpc_receiver import OtlpGrpcReceiver
from jobtrail.collector.http_receiver import create_receiver_app
from jobtrail.collector.ingest import Ingestor
from jobtrail.collector.memory import MemoryLimiter
from jobtrail.collector.stats import ReceiverStats

__all__ = [
    "Decoded",
    "Ingestor",
    "MemoryLimiter",
    "OtlpGrpcReceiver",
    "ReceiverStats",
    "create_receiver_app",
    "decode_logs",
    "decode_metrics",
    "decode_traces",
]
