"""The tree of known ``otel-config.yaml`` keys, and the checks that walk a file against it.

A dict in :data:`SCHEMA` is a section, a type (or tuple of types) a leaf; anything else in
a file is an error that names its path.
"""

from __future__ import annotations

import os
import re
from typing import Any

from jobtrail._config_values import ConfigError

__all__ = ["SCHEMA", "bearer_tokens", "check", "substitute"]

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# The tree of known keys: a dict is a section, a type (or tuple of types) a leaf.
_NUM = (int, float)
_PROTOCOL = {
    "endpoint": str,
    "max_recv_msg_size_mib": _NUM,
    "tls": {"cert_file": str, "key_file": str},
    "auth": {"authenticator": str},
}  # noqa: E501
SCHEMA: dict[str, Any] = {
    "receivers": {
        "otlp": {
            "protocols": {
                "grpc": {**_PROTOCOL, "max_concurrent_streams": int},
                "http": _PROTOCOL,
            }
        }
    },
    "processors": {
        "batch": {"send_batch_size": int, "timeout": str, "send_batch_max_size": int},
        "memory_limiter": {"limit_mib": _NUM, "spike_limit_mib": _NUM, "check_interval": str},
    },
    "exporters": {
        "duckdb": {
            "path": str,
            "memory_limit": (str, int),
            "threads": int,
            "checkpoint_threshold": (str, int),
            "sending_queue": {"queue_size": int, "max_mib": _NUM},
            "retention": {
                "max_age": str,
                "system_logs_max_age": str,
                "max_logs_per_job": int,
                "max_size": (str, int),
                "interval": str,
            },
            "lake": {
                "catalog": str,
                "data_path": str,
                "commit_interval": str,
                "data_inlining_row_limit": int,
                "compact_interval": str,
                # object storage (data_path s3://...); unset keys come from AWS_* variables
                "s3": {
                    "endpoint": str,
                    "region": str,
                    "url_style": str,
                    "use_ssl": bool,
                    "key_id": str,
                    "secret": str,
                },
            },
        }
    },
    "extensions": {"bearertokenauth": {"token": str, "tokens": list}},
    "service": {
        "extensions": list,
        "pipelines": {
            name: {"receivers": list, "processors": list, "exporters": list}
            for name in ("traces", "logs", "metrics")
        },
        "telemetry": {"logs": {"level": str}},
    },
    "jobtrail": {
        "api": {
            "endpoint": str,
            "tls": {"cert_file": str, "key_file": str},
            "auth": {"authenticator": str},
        },  # noqa: E501
        "heartbeat_timeout": str,
    },
}


def substitute(value: Any, path: str) -> Any:
    """Replace ``${env:VAR}`` / ``${env:VAR:-default}`` in every string under ``value``."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: environment variable {name} is not set")

        return _ENV.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def check(value: Any, schema: Any, path: str) -> None:
    """Raise :class:`ConfigError` naming the first unknown key or mistyped value."""
    if isinstance(schema, dict):
        if value is None:
            return
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        for key, sub in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in schema:
                raise ConfigError(f"{where}: unknown key")
            check(sub, schema[key], where)
        return
    if value is None:
        return
    types = schema if isinstance(schema, tuple) else (schema,)
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"{path}: expected {_type_names(types)}, got a boolean")
    if not isinstance(value, types):
        raise ConfigError(f"{path}: expected {_type_names(types)}, got {type(value).__name__}")


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "a number", float: "a number", str: "a string", list: "a list"}
    return " or ".join(sorted({names.get(t, t.__name__) for t in types}))


def bearer_tokens(raw: dict[str, Any]) -> tuple[str, ...]:
    """The tokens of ``extensions.bearertokenauth`` (``token`` and ``tokens``)."""
    ext = (raw.get("extensions") or {}).get("bearertokenauth") or {}
    tokens = [ext["token"]] if ext.get("token") else []
    for i, token in enumerate(ext.get("tokens") or []):
        if not isinstance(token, str) or not token:
            raise ConfigError(
                f"extensions.bearertokenauth.tokens[{i}]: expected a non-empty string"
            )
        tokens.append(token)
    return tuple(tokens)
