"""Fixtures for DuckLake tests: one PostgreSQL cluster per session, one database per test.

Every test here is marked ``lake``; without PostgreSQL's server binaries they are skipped
with the reason (``.ci/run`` installs Debian's ``postgresql`` package so CI runs them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lakehelp import open_pair  # noqa: E402
from pg import PostgresCluster, unavailable_reason  # noqa: E402

from jobtrail.storage.lake import LakeConfig, LakeStorage  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lake)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def lake_config(postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> LakeConfig:
    """A new, empty lake for a test module: a fresh catalog database and a data directory."""
    return LakeConfig(
        catalog=postgres.catalog(),
        data_path=str(tmp_path_factory.mktemp("lake")),
        commit_interval_s=0.05,
    )


@pytest.fixture(scope="module")
def two(lake_config: LakeConfig) -> Iterator[tuple[LakeStorage, LakeStorage]]:
    """Two collectors' storage on one lake, writers started (tests use fresh ids each).

    Synchronous on purpose: the writer threads answer each caller on its own event loop,
    so one pair serves every test of the module.
    """
    with open_pair(lake_config) as pair:
        yield pair
