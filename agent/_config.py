"""Agent configuration: explicit arguments, then ``OTEL_*``/``JOBTRAIL_*`` env, then defaults.

One resolver for every option, so the precedence rule lives in exactly one place. Invalid
explicit arguments raise ``ValueError`` (a programming error the developer should see);
invalid environment values log a warning and fall back to the default, because a typo in
deployment config must not crash the application.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlparse

from jobtrail.semconv import LEVELS

from ._emitter import LEVEL_ALIASES

_logger = logging.getLogger(__name__)

__all__ = ["AgentConfig", "resolve_config"]

PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP = "http/protobuf"
_PROTOCOLS = frozenset({PROTOCOL_GRPC, PROTOCOL_HTTP})

_DEFAULT_PROTOCOL = PROTOCOL_GRPC
_DEFAULT_ENDPOINTS = {
    PROTOCOL_GRPC: "http://localhost:4317",
    PROTOCOL_HTTP: "http://localhost:4318",
}
_DEFAULT_LOG_EXPORT_DELAY_MS = 200
#: As short as the log delay: a job's span carries its final status, so this delay is most
#: of the time until a finished job shows as finished (batches still fill at high rates).
_DEFAULT_SPAN_EXPORT_DELAY_MS = 200
_DEFAULT_MAX_QUEUE_SIZE = 100_000
_DEFAULT_MAX_QUEUE_MIB = 32.0
_DEFAULT_SPOOL_MAX_MIB = 128.0
_DEFAULT_MAX_DATA_LEN = 1024
_MIN_DATA_LEN = 16
_DEFAULT_HEARTBEAT_INTERVAL_S = 30.0
_DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0
#: Every level is sent unless the application asks for less.
_DEFAULT_MIN_LEVEL = "debug"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

T = TypeVar("T")


@dataclass(frozen=True)
class AgentConfig:
    """Fully resolved agent options (see :func:`jobtrail.configure` for their meaning).

    ``endpoint`` is only the explicitly configured one: when it is ``None`` the OTLP
    exporters resolve ``OTEL_EXPORTER_OTLP[_TRACES|_LOGS]_ENDPOINT`` themselves, so the
    per-signal variables keep working. ``probe_endpoint`` is what the reachability probe
    dials.
    """

    service_name: str | None = None
    endpoint: str | None = None
    probe_endpoint: str = _DEFAULT_ENDPOINTS[_DEFAULT_PROTOCOL]
    protocol: str = _DEFAULT_PROTOCOL
    headers: Mapping[str, str] | None = None
    resource_attributes: Mapping[str, str | bool | int | float] = field(default_factory=dict)
    console: bool = False
    capture_logging: bool = True
    log_export_delay_ms: int = _DEFAULT_LOG_EXPORT_DELAY_MS
    span_export_delay_ms: int = _DEFAULT_SPAN_EXPORT_DELAY_MS
    max_queue_size: int = _DEFAULT_MAX_QUEUE_SIZE
    max_queue_mib: float = _DEFAULT_MAX_QUEUE_MIB
    max_data_len: int = _DEFAULT_MAX_DATA_LEN
    insecure: bool | None = None
    export_timeout_s: float | None = None
    heartbeat_interval_s: float = _DEFAULT_HEARTBEAT_INTERVAL_S
    shutdown_timeout_s: float = _DEFAULT_SHUTDOWN_TIMEOUT_S
    spool_dir: str | None = None
    spool_max_mib: float = _DEFAULT_SPOOL_MAX_MIB
    min_level: str = _DEFAULT_MIN_LEVEL


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _pick(
    name: str,
    explicit: T | None,
    env_names: tuple[str, ...],
    parse: Callable[[str], T],
    default: T,
    valid: Callable[[T], bool] = lambda _v: True,
    rule: str = "",
) -> T:
    """Resolve one option: explicit value, then the first set env variable, then default."""
    if explicit is not None:
        if not valid(explicit):
            raise ValueError(f"{name} must be {rule}, got {explicit!r}")
        return explicit
    for env_name in env_names:
        raw = os.environ.get(env_name)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = parse(raw.strip())
        except ValueError:
            value = None
        if value is None or not valid(value):
            _logger.warning("jobtrail: ignoring %s=%r (%s); using %r", env_name, raw, rule, default)
            return default
        return value
    return default


def _level_name(text: str) -> str:
    name = str(text).strip().lower()
    return LEVEL_ALIASES.get(name, name)


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


def _normalise_endpoint(endpoint: str, insecure: bool | None) -> str:
    """Give a scheme-less endpoint (``host:4317``) an explicit one.

    The gRPC exporter derives TLS from the scheme; without one it would dial TLS, which is
    never what ``localhost:4317`` means.
    """
    endpoint = endpoint.strip()
    if "://" in endpoint:
        return endpoint.rstrip("/")
    scheme = "https" if insecure is False else "http"
    return f"{scheme}://{endpoint}".rstrip("/")


def probe_target(endpoint: str) -> tuple[str, int] | None:
    """Return ``(host, port)`` for a TCP reachability probe of ``endpoint``, if parseable."""
    parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
    host = parsed.hostname
    if not host:
        return None
    try:
        port = parsed.port
    except ValueError:
        return None
    if port is None:
        port = 443 if parsed.scheme == "https" else 80
    return host, port


def resolve_config(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, str | bool | int | float] | None = None,
    console: bool | None = None,
    capture_logging: bool | None = None,
    log_export_delay_ms: int | None = None,
    span_export_delay_ms: int | None = None,
    max_queue_size: int | None = None,
    max_queue_mib: float | None = None,
    max_data_len: int | None = None,
    insecure: bool | None = None,
    export_timeout_s: float | None = None,
    heartbeat_interval_s: float | None = None,
    shutdown_timeout_s: float | None = None,
    spool_dir: str | None = None,
    spool_max_mib: float | None = None,
    min_level: str | None = None,
) -> AgentConfig:
    """Resolve every option (explicit, env, default) into an :class:`AgentConfig`.

    Raises:
        ValueError: An explicit argument is out of range (env values only warn).

    Example:
        >>> resolve_config(protocol="http/protobuf", max_data_len=64).max_data_len
        64
    """
    proto = _pick(
        "protocol",
        protocol,
        ("OTEL_EXPORTER_OTLP_PROTOCOL",),
        str,
        _DEFAULT_PROTOCOL,
        lambda p: p in _PROTOCOLS,
        f"one of {sorted(_PROTOCOLS)}",
    )
    if endpoint is not None:
        if not endpoint.strip():
            raise ValueError("endpoint must be a non-empty URL")
        endpoint = _normalise_endpoint(endpoint, insecure)
        if proto == PROTOCOL_HTTP:
            endpoint = endpoint.removesuffix("/v1/traces").removesuffix("/v1/logs")
    if export_timeout_s is not None and export_timeout_s <= 0:
        raise ValueError(f"export_timeout_s must be a positive number, got {export_timeout_s!r}")
    probe = (
        endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or _DEFAULT_ENDPOINTS[proto]
    )
    return AgentConfig(
        service_name=service_name,
        endpoint=endpoint,
        probe_endpoint=probe,
        protocol=proto,
        headers=dict(headers) if headers is not None else None,
        resource_attributes=dict(resource_attributes or {}),
        console=_pick("console", console, ("JOBTRAIL_CONSOLE",), _parse_bool, False),
        capture_logging=_pick(
            "capture_logging", capture_logging, ("JOBTRAIL_CAPTURE_LOGGING",), _parse_bool, True
        ),
        log_export_delay_ms=_pick(
            "log_export_delay_ms",
            log_export_delay_ms,
            ("JOBTRAIL_LOG_EXPORT_DELAY_MS", "OTEL_BLRP_SCHEDULE_DELAY"),
            int,
            _DEFAULT_LOG_EXPORT_DELAY_MS,
            _positive,
            "a positive integer",
        ),
        span_export_delay_ms=_pick(
            "span_export_delay_ms",
            span_export_delay_ms,
            ("JOBTRAIL_SPAN_EXPORT_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY"),
            int,
            _DEFAULT_SPAN_EXPORT_DELAY_MS,
            _positive,
            "a positive integer",
        ),
        max_queue_size=_pick(
            "max_queue_size",
            max_queue_size,
            ("JOBTRAIL_MAX_QUEUE_SIZE",),
            int,
            _DEFAULT_MAX_QUEUE_SIZE,
            _positive,
            "a positive integer",
        ),
        max_queue_mib=_pick(
            "max_queue_mib",
            max_queue_mib,
            ("JOBTRAIL_MAX_QUEUE_MIB",),
            float,
            _DEFAULT_MAX_QUEUE_MIB,
            _positive,
            "a positive number of MiB",
        ),
        max_data_len=_pick(
            "max_data_len",
            max_data_len,
            ("JOBTRAIL_MAX_DATA_LEN",),
            int,
            _DEFAULT_MAX_DATA_LEN,
            lambda n: n >= _MIN_DATA_LEN,
            f"an integer >= {_MIN_DATA_LEN}",
        ),
        insecure=insecure,
        export_timeout_s=export_timeout_s,
        heartbeat_interval_s=_pick(
            "heartbeat_interval_s",
            heartbeat_interval_s,
            ("JOBTRAIL_HEARTBEAT_INTERVAL_S",),
            float,
            _DEFAULT_HEARTBEAT_INTERVAL_S,
            _non_negative,
            "a number >= 0 (0 disables)",
        ),
        shutdown_timeout_s=_pick(
            "shutdown_timeout_s",
            shutdown_timeout_s,
            ("JOBTRAIL_SHUTDOWN_TIMEOUT_S",),
            float,
            _DEFAULT_SHUTDOWN_TIMEOUT_S,
            _non_negative,
            "a number >= 0",
        ),
        spool_dir=_pick("spool_dir", spool_dir, ("JOBTRAIL_SPOOL_DIR",), str, None) or None,
        spool_max_mib=_pick(
            "spool_max_mib",
            spool_max_mib,
            ("JOBTRAIL_SPOOL_MAX_MIB",),
            float,
            _DEFAULT_SPOOL_MAX_MIB,
            _positive,
            "a positive number of MiB",
        ),
        min_level=_pick(
            "min_level",
            None if min_level is None else _level_name(min_level),
            ("JOBTRAIL_MIN_LEVEL",),
            _level_name,
            _DEFAULT_MIN_LEVEL,
            lambda name: name in LEVELS,
            f"one of {', '.join(LEVELS)}",
        ),
    )
