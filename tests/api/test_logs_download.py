"""Downloading one job's logs as CSV, JSON lines or text, in pages, with the route's filters."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from jobtrail.api import create_app, log_download
from jobtrail.storage import Database

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def big(tmp_path: Path, aiohttp_client: AiohttpClient) -> Client:
    """A job with 12,345 log records (more than two download pages), one with a stack trace."""
    db = Database(tmp_path / "db.duckdb")
    con = db.cursor()
    con.execute(
        "INSERT INTO jobs (id, type, name, status, started_at) "
        "VALUES ('big/1', 'etl', 'big', 'completed', TIMESTAMP '2026-11-23 08:00:00')"
    )
    con.execute(
        """INSERT INTO logs (id, time, level, body, job_id, step, stack_trace, attributes)
           SELECT i, TIMESTAMP '2026-11-23 08:00:00' + to_milliseconds(i),
                  CASE WHEN i % 100 = 0 THEN 'error' ELSE 'info' END,
                  'line ' || i || CASE WHEN i = 7 THEN ', with "quotes", commas' ELSE '' END,
                  'big/1', CASE WHEN i % 2 = 0 THEN 'load' END,
                  CASE WHEN i = 100 THEN 'Traceback:\n  boom' END,
                  '{"row": ' || i || '}'
           FROM range(1, 12346) t(i)"""
    )
    con.execute("INSERT INTO job_log_ranges VALUES ('big/1', 1, 12345)")
    client = await aiohttp_client(create_app(db))
    yield client
    db.close()


async def _get(client: Client, fmt: str, **params: str) -> tuple[str, dict[str, str]]:
    resp = await client.get("/api/jobs/big%2F1/logs", params={"format": fmt, **params})
    assert resp.status == 200, await resp.text()
    return await resp.text(), dict(resp.headers)


async def test_csv_has_every_record_in_order(big: Client) -> None:
    text, headers = await _get(big, "csv")
    assert headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="job-big_1-logs.csv"'
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == list(range(1, 12346))
    assert rows[6]["message"] == 'line 7, with "quotes", commas'
    assert json.loads(rows[41]["data"]) == {"row": 42}
    assert rows[99]["stack_trace"] == "Traceback:\n  boom" and rows[99]["level"] == "error"


async def test_jsonl_and_filters(big: Client) -> None:
    text, headers = await _get(big, "jsonl", level="error", after_id="5000")
    assert headers["Content-Type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["id"] for r in records] == list(range(5100, 12346, 100))
    assert {r["level"] for r in records} == {"error"}


async def test_txt_is_one_line_per_record_plus_stack_lines(big: Client) -> None:
    text, _ = await _get(big, "txt", step="load")
    lines = text.splitlines()
    assert len(lines) == 12344 // 2 + 2  # even ids, and record 100's two stack trace lines
    assert lines[0] == "2026-11-23T08:00:00.002000Z INFO    [load] line 2"
    assert lines[lines.index("2026-11-23T08:00:00.100000Z ERROR   [load] line 100") + 1] == (
        "    Traceback:"
    )


async def test_pages_are_streamed_not_collected(big: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_download, "_PAGE", 1000)
    text, _ = await _get(big, "jsonl")
    assert len(text.splitlines()) == 12345


async def test_bad_format_and_unknown_job(big: Client) -> None:
    resp = await big.get("/api/jobs/big%2F1/logs", params={"format": "xml"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "invalid_parameter" and "format" in body["error"]["message"]
    resp = await big.get("/api/jobs/nope/logs", params={"format": "csv"})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "job_not_found"
