"""Values inside ``otel-config.yaml``: durations, sizes, endpoints and the storage sections.

Kept apart from :mod:`jobtrail.config` (the key tree and :class:`ServerConfig`) so each stays
small; every error names the key it is about.
"""

from __future__ import annotations

import re
from typing import Any


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration_s(value: str, path: str) -> float:
    """Parse ``500ms``, ``2s``, ``5m``, ``1h``, ``30d`` into seconds."""
    m = _DURATION.match(value)
    if not m:
        raise ConfigError(
            f"{path}: expected a duration like 500ms, 5s, 10m, 1h or 30d, got {value!r}"
        )
    return float(m.group(1)) * _UNITS[m.group(2)]


_SIZE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$", re.I)


def parse_size_bytes(value: str | int, path: str) -> int:
    """Parse ``512MiB``, ``10GiB``, ``2GB`` or a plain number of bytes."""
    m = _SIZE.match(str(value))
    if not m:
        raise ConfigError(f"{path}: expected a size like 512MiB, 10GiB or 2GB, got {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])


def parse_endpoint(value: str, path: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"{path}: expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


def retention_fields(section: dict[str, Any]) -> dict[str, Any]:
    """``exporters.duckdb.retention`` as ServerConfig fields (only the keys given)."""
    path = "exporters.duckdb.retention"
    out: dict[str, Any] = {}
    for key, field in (
        ("max_age", "retention_max_age_s"),
        ("system_logs_max_age", "retention_system_logs_max_age_s"),
        ("interval", "retention_interval_s"),
    ):
        if section.get(key) is not None:
            out[field] = parse_duration_s(section[key], f"{path}.{key}")
            if out[field] < 1:
                raise ConfigError(f"{path}.{key}: must be at least 1s")
    cap = section.get("max_logs_per_job")
    if cap is not None:
        if cap < 2:
            raise ConfigError(f"{path}.max_logs_per_job: must be at least 2 (first and last)")
        out["retention_max_logs_per_job"] = cap
    if section.get("max_size") is not None:
        out["retention_max_size_bytes"] = parse_size_bytes(section["max_size"], f"{path}.max_size")
        if out["retention_max_size_bytes"] <= 0:
            raise ConfigError(f"{path}.max_size: must be > 0")
    return out


def lake_fields(section: dict[str, Any]) -> dict[str, Any]:
    """``exporters.duckdb.lake`` as ServerConfig fields (DuckLake storage, docs/scaling.md)."""
    path = "exporters.duckdb.lake"
    if not section:
        return {}
    out: dict[str, Any] = {}
    for key in ("catalog", "data_path"):
        if not section.get(key):
            raise ConfigError(f"{path}.{key}: required when {path} is given")
        out[f"lake_{key}"] = section[key]
    if not section["catalog"].startswith("postgres:"):
        raise ConfigError(
            f"{path}.catalog: expected postgres:<connection string>, for example "
            "'postgres:dbname=jobtrail host=db.internal'"
        )
    for key in ("commit_interval", "compact_interval"):  # how often it commits, is tidied
        if section.get(key) is not None:
            out[f"lake_{key}_s"] = parse_duration_s(section[key], f"{path}.{key}")
            if key == "compact_interval" and out[f"lake_{key}_s"] < 1:
                raise ConfigError(f"{path}.{key}: must be at least 1s")
    limit = section.get("data_inlining_row_limit")
    if limit is not None:
        if limit < 0:
            raise ConfigError(f"{path}.data_inlining_row_limit: must be >= 0")
        out["lake_data_inlining_row_limit"] = limit
    out.update(_lake_s3_fields(section.get("s3") or {}, section["data_path"]))
    return out


def _lake_s3_fields(s3: dict[str, Any], data_path: str) -> dict[str, Any]:
    """``exporters.duckdb.lake.s3``: only with an ``s3://`` data path, url_style checked."""
    path = "exporters.duckdb.lake.s3"
    if not s3:
        return {}
    if not data_path.lower().startswith(("s3://", "s3a://", "s3n://")):
        raise ConfigError(f"{path}: only for a data_path on s3://bucket/prefix")
    if s3.get("url_style") is not None and s3["url_style"] not in ("path", "vhost"):
        raise ConfigError(f"{path}.url_style: expected path or vhost, got {s3['url_style']!r}")
    return {f"lake_s3_{key}": value for key, value in s3.items() if value is not None}
