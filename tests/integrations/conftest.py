"""One real ``jobtrail serve`` per test module; apps and commands export to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e.harness import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("server"))
    srv.start()
    try:
        yield srv
    finally:
        if srv.proc is not None:
            srv.stop()
