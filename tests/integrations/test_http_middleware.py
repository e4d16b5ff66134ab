"""HTTP middlewares (aiohttp, ASGI, WSGI) in real app processes against a real server."""

from __future__ import annotations

import json

import pytest
from e2e.harness import ServerProcess
from http_checks import check_middleware
from integration_support import run_app


@pytest.mark.parametrize("framework", ["aiohttp", "asgi", "wsgi"])
def test_middleware(server: ServerProcess, framework: str) -> None:
    out = json.loads(run_app(server, f"http_{framework}_app").strip().splitlines()[-1])
    check_middleware(server, out, framework)
