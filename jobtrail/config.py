"""Server configuration: ``otel-config.yaml`` in the OpenTelemetry Collector's shape.

The file is checked against a declared tree of known keys and types, so a typo is an error
naming its path (``receivers.otlp.protocols.grpc.endpiont: unknown key``) before any port is
bound. ``${env:VAR}`` and ``${env:VAR:-default}`` are substituted in string values. CLI flags
override the file through :func:`ServerConfig.with_overrides`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from jobtrail._config_schema import SCHEMA, bearer_tokens, check, substitute
from jobtrail._config_values import (
    ConfigError,
    lake_fields,
    parse_duration_s,
    parse_endpoint,
    parse_size_bytes,
    retention_fields,
)

if TYPE_CHECKING:
    from jobtrail.storage.lake import LakeRetention
    from jobtrail.storage.retention import RetentionPolicy

__all__ = ["ConfigError", "ServerConfig", "parse_duration_s", "parse_size_bytes"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``jobtrail serve`` needs, after the file and the flags are applied."""

    db_path: str = "jobtrail.duckdb"
    #: DuckDB's own memory cap (its buffer cache, query memory); ``None``: DuckDB's default.
    db_memory_limit_bytes: int | None = None
    #: DuckDB worker threads; None: all usable cores but one (see :meth:`duckdb_threads`).
    db_threads: int | None = None
    #: Write-ahead log size that triggers a checkpoint; None: from the memory limiter
    #: (see :meth:`checkpoint_bytes`).
    db_checkpoint_bytes: int | None = None
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 4317
    http_host: str = "127.0.0.1"
    http_port: int = 4318
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    max_recv_bytes: int = 4 * 1024 * 1024
    http_max_recv_bytes: int = 4 * 1024 * 1024
    #: Export calls in flight per gRPC connection (see ``OtlpGrpcReceiver``).
    grpc_max_concurrent_streams: int = 64
    memory_limit_mib: float = 2048
    memory_spike_limit_mib: float | None = None
    memory_check_interval_s: float = 0.1
    batch_max_records: int = 50_000
    queue_max_records: int = 500_000
    #: None: half the memory limiter's spike headroom, at most 256 (see :meth:`write_queue_bytes`).
    queue_max_mib: float | None = None
    lost_after_s: float = 120.0
    retention_max_age_s: float = 30 * 86400.0
    retention_system_logs_max_age_s: float | None = None  # None: as retention_max_age_s
    retention_max_logs_per_job: int | None = None
    retention_max_size_bytes: int | None = None
    retention_interval_s: float = 3600.0
    #: DuckLake storage instead of the file (see docs/scaling.md); None: the file.
    lake_catalog: str | None = None
    lake_data_path: str | None = None
    lake_commit_interval_s: float = 0.5
    lake_data_inlining_row_limit: int | None = None
    lake_compact_interval_s: float = 300.0
    #: ``exporters.duckdb.lake.s3`` (None: the ``AWS_*`` variable, see docs/scaling.md).
    lake_s3_endpoint: str | None = None
    lake_s3_region: str | None = None
    lake_s3_url_style: str | None = None
    lake_s3_use_ssl: bool | None = None
    lake_s3_key_id: str | None = None
    lake_s3_secret: str | None = field(default=None, repr=False)
    tokens: tuple[str, ...] = ()
    grpc_auth: bool = False
    http_auth: bool = False
    api_auth: bool = False
    grpc_tls: tuple[str, str] | None = None
    http_tls: tuple[str, str] | None = None
    api_tls: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        # Not in from_mapping: CLI flags may turn a lake on after the file. A lake's files are
        # shared by every collector and shrink only on upkeep: no collector can hold a size.
        if self.lake_catalog is not None and self.retention_max_size_bytes is not None:
            raise ConfigError(
                "exporters.duckdb.retention.max_size: not supported with exporters.duckdb.lake; "
                "remove it and bound the lake with max_age and max_logs_per_job (docs/scaling.md)"
            )

    @classmethod
    def from_mapping(cls, raw: Any) -> ServerConfig:
        """Validate a parsed YAML document and build the configuration."""
        if raw is None:
            raw = {}
        raw = substitute(raw, "")
        check(raw, SCHEMA, "")
        cfg = cls()
        protocols = (((raw.get("receivers") or {}).get("otlp") or {}).get("protocols")) or {}
        grpc = protocols.get("grpc") or {}
        http = protocols.get("http") or {}
        changes: dict[str, Any] = {}
        if "endpoint" in grpc:
            changes["grpc_host"], changes["grpc_port"] = parse_endpoint(
                grpc["endpoint"], "receivers.otlp.protocols.grpc.endpoint"
            )  # noqa: E501
        if "endpoint" in http:
            changes["http_host"], changes["http_port"] = parse_endpoint(
                http["endpoint"], "receivers.otlp.protocols.http.endpoint"
            )  # noqa: E501
        if grpc.get("max_recv_msg_size_mib") is not None:
            size = grpc["max_recv_msg_size_mib"]
            if size <= 0:
                raise ConfigError(
                    "receivers.otlp.protocols.grpc.max_recv_msg_size_mib: must be > 0"
                )
            changes["max_recv_bytes"] = int(size * 1024 * 1024)
        if grpc.get("max_concurrent_streams") is not None:
            streams = grpc["max_concurrent_streams"]
            if streams < 1:
                raise ConfigError(
                    "receivers.otlp.protocols.grpc.max_concurrent_streams: must be at least 1"
                )
            changes["grpc_max_concurrent_streams"] = streams
        if http.get("max_recv_msg_size_mib") is not None:
            size = http["max_recv_msg_size_mib"]
            if size <= 0:
                raise ConfigError(
                    "receivers.otlp.protocols.http.max_recv_msg_size_mib: must be > 0"
                )
            changes["http_max_recv_bytes"] = int(size * 1024 * 1024)
        processors = raw.get("processors") or {}
        limiter = processors.get("memory_limiter") or {}
        if limiter.get("limit_mib") is not None:
            changes["memory_limit_mib"] = limiter["limit_mib"]
        if limiter.get("spike_limit_mib") is not None:
            changes["memory_spike_limit_mib"] = limiter["spike_limit_mib"]
        if limiter.get("check_interval") is not None:
            changes["memory_check_interval_s"] = parse_duration_s(
                limiter["check_interval"], "processors.memory_limiter.check_interval"
            )
        batch = processors.get("batch") or {}
        if batch.get("send_batch_max_size") is not None:
            changes["batch_max_records"] = batch["send_batch_max_size"]
        duck = (raw.get("exporters") or {}).get("duckdb") or {}
        if duck.get("path"):
            changes["db_path"] = duck["path"]
        if duck.get("memory_limit") is not None:
            limit = parse_size_bytes(duck["memory_limit"], "exporters.duckdb.memory_limit")
            if limit < 16 * 1024 * 1024:
                raise ConfigError("exporters.duckdb.memory_limit: must be at least 16MiB")
            changes["db_memory_limit_bytes"] = limit
        if duck.get("checkpoint_threshold") is not None:
            size = parse_size_bytes(
                duck["checkpoint_threshold"], "exporters.duckdb.checkpoint_threshold"
            )
            if size < 1024 * 1024:
                raise ConfigError("exporters.duckdb.checkpoint_threshold: must be at least 1MiB")
            changes["db_checkpoint_bytes"] = size
        if duck.get("threads") is not None:
            if duck["threads"] < 1:
                raise ConfigError("exporters.duckdb.threads: must be at least 1")
            changes["db_threads"] = duck["threads"]
        queue = duck.get("sending_queue") or {}
        if queue.get("queue_size") is not None:
            if queue["queue_size"] <= 0:
                raise ConfigError("exporters.duckdb.sending_queue.queue_size: must be > 0")
            changes["queue_max_records"] = queue["queue_size"]
        if queue.get("max_mib") is not None:
            if queue["max_mib"] <= 0:
                raise ConfigError("exporters.duckdb.sending_queue.max_mib: must be > 0")
            changes["queue_max_mib"] = queue["max_mib"]
        changes.update(retention_fields(duck.get("retention") or {}))
        changes.update(lake_fields(duck.get("lake") or {}))
        timeout = (raw.get("jobtrail") or {}).get("heartbeat_timeout")
        if timeout is not None:
            changes["lost_after_s"] = parse_duration_s(timeout, "jobtrail.heartbeat_timeout")
        tokens = bearer_tokens(raw)
        if tokens:
            changes["tokens"] = tokens
        api = (raw.get("jobtrail") or {}).get("api") or {}
        for name, section, path in (
            ("grpc", grpc, "receivers.otlp.protocols.grpc"),
            ("http", http, "receivers.otlp.protocols.http"),
            ("api", api, "jobtrail.api"),
        ):
            auth = (section.get("auth") or {}).get("authenticator")
            if auth is not None:
                if auth != "bearertokenauth":
                    raise ConfigError(f"{path}.auth.authenticator: unknown authenticator {auth!r}")
                if not tokens:
                    raise ConfigError(
                        f"{path}.auth.authenticator: extensions.bearertokenauth has no token"
                    )
                changes[f"{name}_auth"] = True
            tls = section.get("tls") or {}
            if tls:
                if not tls.get("cert_file") or not tls.get("key_file"):
                    raise ConfigError(f"{path}.tls: needs both cert_file and key_file")
                for key in ("cert_file", "key_file"):
                    if not Path(tls[key]).is_file():
                        raise ConfigError(f"{path}.tls.{key}: no such file {tls[key]!r}")
                changes[f"{name}_tls"] = (tls["cert_file"], tls["key_file"])
        if "endpoint" in api:
            changes["api_host"], changes["api_port"] = parse_endpoint(
                api["endpoint"], "jobtrail.api.endpoint"
            )  # noqa: E501
        return replace(cfg, **changes)

    @classmethod
    def load(cls, path: str | Path | None) -> ServerConfig:
        """Read a config file; ``None`` or a missing default file gives the defaults."""
        if path is None:
            return cls()
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read: {exc.strerror}") from exc
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        return cls.from_mapping(raw)

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        """Apply CLI flags (``None`` means not given)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def duckdb_threads(self) -> int:
        """DuckDB's worker threads: as configured, else every usable core but one.

        The Python side of ingest (decoding requests, the writer thread) keeps about one
        core busy; DuckDB threads competing with it for that core cost more than they
        give: on 2 cores, storing a batch took half the CPU with 1 thread than with 2
        (docs/benchmarks.md, round 4), while scans over millions of rows want the rest.
        """
        if self.db_threads is not None:
            return self.db_threads
        usable = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
        return max(1, (usable or 1) - 1)

    def checkpoint_bytes(self) -> int:
        """Write-ahead log bytes after which DuckDB checkpoints into the database file.

        A checkpoint costs more than the rows it adds: DuckDB rewrites the row groups they
        touched and every index of a changed table whole (the steps indexes alone cost
        ~90 ms per checkpoint at 1M steps). Going from DuckDB's 16 MiB to 128 MiB, the server
        stored 31k instead of 24k records/s on a database of 100k jobs, at a fifth less CPU
        per record (docs/benchmarks.md, round 5). The log's rows
        wait in memory until then, so unless configured the threshold follows the memory
        limiter: a sixteenth of ``limit_mib``, between 16 and 128 MiB (128 at the default
        2048, 32 at 512).
        """
        if self.db_checkpoint_bytes is not None:
            return self.db_checkpoint_bytes
        mib = 128.0
        if self.memory_limit_mib > 0:
            mib = min(mib, max(16.0, self.memory_limit_mib / 16))
        return int(mib * 1024 * 1024)

    def write_queue_bytes(self) -> int:
        """Bytes of accepted, uncommitted batches the writer may hold.

        Once RSS passes the memory limiter's soft limit new data is refused, but what is
        queued still has to be committed within the spike headroom; so unless
        ``sending_queue.max_mib`` says otherwise the queue takes half of that headroom,
        between 16 and 256 MiB: 205 MiB at the default 2048 MiB limit, 51 MiB at 512.
        """
        if self.queue_max_mib is not None:
            return int(self.queue_max_mib * 1024 * 1024)
        mib = 256.0
        if self.memory_limit_mib > 0:
            spike = self.memory_spike_limit_mib
            spike = self.memory_limit_mib * 0.2 if spike is None else spike
            mib = min(mib, max(16.0, spike / 2))
        return int(mib * 1024 * 1024)

    def retention_policy(self) -> RetentionPolicy:
        """``exporters.duckdb.retention`` for the storage layer (imported only when asked)."""
        from jobtrail.storage.retention import RetentionPolicy

        return RetentionPolicy(
            max_age_s=self.retention_max_age_s,
            system_logs_max_age_s=self.retention_system_logs_max_age_s,
            max_logs_per_job=self.retention_max_logs_per_job,
            max_size_bytes=self.retention_max_size_bytes,
            interval_s=self.retention_interval_s,
        )

    def lake_retention(self) -> LakeRetention:
        """A lake's retention and upkeep (``max_size`` is refused on a lake, see above)."""
        from jobtrail.storage.lake import LakeRetention

        return LakeRetention(
            max_age_s=self.retention_max_age_s,
            system_logs_max_age_s=self.retention_system_logs_max_age_s,
            max_logs_per_job=self.retention_max_logs_per_job,
            interval_s=self.retention_interval_s,
            compact_interval_s=self.lake_compact_interval_s,
        )
