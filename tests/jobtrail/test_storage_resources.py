"""Storage resources that follow the machine and the memory limiter unless configured."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_checkpoint_threshold_follows_the_memory_limiter() -> None:
    assert _cfg({}).checkpoint_bytes() == 128 * MIB
    assert _cfg({"memory_limiter": {"limit_mib": 512}}).checkpoint_bytes() == 32 * MIB
    assert _cfg({"memory_limiter": {"limit_mib": 100}}).checkpoint_bytes() == 16 * MIB
    assert _cfg({"memory_limiter": {"limit_mib": 0}}).checkpoint_bytes() == 128 * MIB
    assert _cfg({}, {"checkpoint_threshold": "300MiB"}).checkpoint_bytes() == 300 * MIB
    with pytest.raises(ConfigError, match="exporters.duckdb.checkpoint_threshold"):
        _cfg({}, {"checkpoint_threshold": "10KiB"})
    with pytest.raises(ConfigError, match="exporters.duckdb.checkpoint_threshold"):
        _cfg({}, {"checkpoint_threshold": "lots"})


def test_checkpoint_threshold_reaches_the_database(tmp_path: Path) -> None:
    from jobtrail.server import _open_storage

    for processors, duck, expected in (
        ({}, {}, "128.0 MiB"),
        ({"memory_limiter": {"limit_mib": 512}}, {}, "32.0 MiB"),
        ({}, {"checkpoint_threshold": "64MiB"}, "64.0 MiB"),
    ):
        cfg = _cfg(processors, duck).with_overrides(db_path=str(tmp_path / f"{expected}.duckdb"))
        db, _, _ = _open_storage(cfg)
        try:
            got = db.cursor().execute("SELECT current_setting('checkpoint_threshold')").fetchone()
            assert got == (expected,)
        finally:
            db.close()
