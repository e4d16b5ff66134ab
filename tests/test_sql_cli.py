"""``jobtrail sql`` against a real API app on an ephemeral port."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pytest_aiohttp import AiohttpServer
from rich.console import Console
from sample_jobs import fill_db

from jobtrail._sql_cli import cmd_sql, parse_param
from jobtrail.api import create_app
from jobtrail.cli import build_parser
from jobtrail.storage import Database

SQL = "SELECT id, type, attributes FROM jobs WHERE type = ? ORDER BY id"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "db.duckdb")
    fill_db(database)
    yield database
    database.close()


@pytest.fixture
async def base_url(db: Database, aiohttp_server: AiohttpServer) -> str:
    server = await aiohttp_server(create_app(db))
    return str(server.make_url("")).rstrip("/")


async def run(*args: Any, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    code = await asyncio.to_thread(cmd_sql, *args, console=console, **kwargs)
    return code, out.getvalue()


async def test_table(base_url: str) -> None:
    code, out = await run(base_url, SQL, params=["import"])
    assert code == 0
    assert "import-1" in out and '{"source": "s3://bucket/users.csv"}' in out
    assert "row" in out and "ms" in out
    code, out = await run(base_url, "SELECT * FROM range(10)", limit=3)
    assert code == 0 and "truncated at 3" in out


async def test_json_and_csv(base_url: str) -> None:
    code, out = await run(base_url, SQL, params=["import"], fmt="json")
    data = json.loads(out)
    assert code == 0 and data["columns"] == ["id", "type", "attributes"]
    code, out = await run(base_url, SQL, params=["import"], fmt="csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["id", "type", "attributes"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in data["rows"]]


async def test_parquet_to_file(base_url: str, tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    code, _ = await run(base_url, SQL, params=["import"], fmt="parquet", output=str(target))
    assert code == 0
    assert "import-1" in pq.read_table(target).column("id").to_pylist()


async def test_errors(base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await run(base_url, "DROP TABLE jobs")
    assert code == 1 and "only SELECT statements" in capsys.readouterr().err
    code, _ = await run(base_url, "SELECT 1", fmt="parquet")
    assert code == 2 and "--output" in capsys.readouterr().err
    code, _ = await run("http://127.0.0.1:9", "SELECT 1", timeout_s=2)
    assert code == 2 and "cannot reach" in capsys.readouterr().err


def test_parser() -> None:
    args = build_parser().parse_args(
        ["sql", "SELECT ?", "-p", "42", "-p", "x", "--format", "csv", "--limit", "5"]
    )
    assert args.sql == "SELECT ?" and args.format == "csv" and args.limit == 5
    assert [parse_param(v) for v in args.param] == [42, "x"]
