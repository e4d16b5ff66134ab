"""Fixtures: a database filled with the sample rows and a test client on the API app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from sample_jobs import fill_db

from jobtrail.api import create_app
from jobtrail.storage import Database

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A database holding the sample jobs, steps, logs and spans (see ``sample_jobs``)."""
    database = Database(tmp_path / "db.duckdb")
    fill_db(database)
    yield database
    database.close()


@pytest.fixture
async def client(db: Database, aiohttp_client: AiohttpClient) -> Client:
    """A client of the API app on the sample database."""
    return await aiohttp_client(create_app(db))
