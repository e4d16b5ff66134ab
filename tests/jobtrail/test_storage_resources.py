"""Storage resources that follow the machine and the memory limiter unless configured."""

from __future__ import annotations

import os

import pytest

from jobtrail.config import ConfigError, ServerConfig

MIB = 1024 * 1024


def _cfg(processors: dict[str, object], duck: dict[str, object] | None = None) -> ServerConfig:
    return ServerConfig.from_mapping(
        {"processors": processors, "exporters": {"duckdb": duck or {}}}
    )


def test_queue_takes_half_the_spike_headroom() -> None:
    assert _cfg({}).write_queue_bytes() == int(2048 * 0.2 / 2 * MIB)
    assert _cfg({"memory_limiter": {"limit_mib": 512}}).write_queue_bytes() == int(51.2 * MIB)
    spiky = {"memory_limiter": {"limit_mib": 512, "spike_limit_mib": 200}}
    assert _cfg(spiky).write_queue_bytes() == 100 * MIB


def test_queue_bound_is_clamped_and_configurable() -> None:
    assert _cfg({"memory_limiter": {"limit_mib": 20000}}).write_queue_bytes() == 256 * MIB
    assert _cfg({"memory_limiter": {"limit_mib": 50}}).write_queue_bytes() == 16 * MIB
    assert _cfg({"memory_limiter": {"limit_mib": 0}}).write_queue_bytes() == 256 * MIB
    configured = _cfg({"memory_limiter": {"limit_mib": 512}}, {"sending_queue": {"max_mib": 300}})
    assert configured.write_queue_bytes() == 300 * MIB


def test_duckdb_threads_leave_a_core_to_python() -> None:
    cores = len(os.sched_getaffinity(0))
    assert _cfg({}).duckdb_threads() == max(1, cores - 1)
    assert _cfg({}, {"threads": 3}).duckdb_threads() == 3
    with pytest.raises(ConfigError, match="exporters.duckdb.threads"):
        _cfg({}, {"threads": 0})
