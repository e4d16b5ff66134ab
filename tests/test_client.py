"""The CLI's client and terminal views against a real API app on an ephemeral port."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer
from rich.console import Console
from sample_jobs import JOB_IMPORT_LOG_IDS, fill_db

from jobtrail import client
from jobtrail._views import duration
from jobtrail.api import create_app
from jobtrail.cli import build_parser
from jobtrail.storage import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "db.duckdb")
    fill_db(database)
    yield database
    database.close()


def _echo_routes() -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/api/echo-auth")
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization")})

    @routes.get("/api/locked")
    async def locked(request: web.Request) -> web.Response:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})

    return routes


@pytest.fixture
async def base_url(db: Database, aiohttp_server: AiohttpServer) -> str:
    server: TestServer = await aiohttp_server(create_app(db, extra_routes=_echo_routes()))
    return str(server.make_url("")).rstrip("/")


async def run(cmd: Callable[..., int], *args: Any, **kwargs: Any) -> tuple[int, str]:
    """Run a (blocking) command in a thread while the server runs on this loop."""
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    code = await asyncio.to_thread(cmd, *args, console=console, **kwargs)
    return code, out.getvalue()


async def test_jobs_table(base_url: str) -> None:
    code, out = await run(client.cmd_jobs, base_url)
    assert code == 0
    assert "nightly import (+1)" in out and "import-1" in out and "completed" in out
    assert "1m30s" in out and "ValueError: disk full" in out and "40% render" in out
    code, out = await run(client.cmd_jobs, base_url, status="failed", type="export")
    assert code == 0 and "broken export" in out and "nightly import" not in out
    code, out = await run(client.cmd_jobs, base_url, limit=2)
    assert "More jobs: --cursor " in out
    code, out = await run(client.cmd_jobs, base_url, q="no such thing")
    assert code == 0 and "No jobs match." in out


async def test_jobs_json(base_url: str) -> None:
    code, out = await run(client.cmd_jobs, base_url, owner="ann", json_output=True)
    assert code == 0
    page = json.loads(out)
    assert {j["id"] for j in page["jobs"]} == {"import-1", "index-1", "cancel-1"}


async def test_job_view(base_url: str) -> None:
    code, out = await run(client.cmd_job, base_url, "import-1")
    assert code == 0
    for text in ("nightly import", "download", "transform", "skipped", "rebuild index",
                 '"rows": 300', "Child jobs (1)", "info 12"):  # fmt: skip
        assert text in out, text
    assert "d1d1d1d1d1d1d1d1" in out  # each step run's span id, for `logs --span-id`
    code, out = await run(client.cmd_job, base_url, "export-1")
    assert code == 0 and "disk full" in out and 'raise ValueError("disk full")' in out
    code, out = await run(client.cmd_job, base_url, "export-1", json_output=True)
    assert json.loads(out)["error_type"] == "ValueError"


async def test_logs_view(base_url: str) -> None:
    code, out = await run(client.cmd_logs, base_url, "import-1", level="warn,success")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert "WARN" in lines[0] and "[transform]" in lines[0] and "transform line 2" in lines[0]
    assert "row=2" in lines[0] and "SUCCESS" in lines[2]
    code, out = await run(client.cmd_logs, base_url, "export-1", level="error")
    assert 'raise ValueError("disk full")' in out
    code, out = await run(client.cmd_logs, base_url, "import-1", limit=3)
    assert f"More records: --after-id {JOB_IMPORT_LOG_IDS[2]}" in out
    code, out = await run(client.cmd_logs, base_url, "import-1", json_output=True, step="download")
    assert [e["message"] for e in json.loads(out)["logs"]] == [
        f"download line {i}" for i in range(10)
    ]


async def test_stats_view(base_url: str) -> None:
    code, out = await run(client.cmd_stats, base_url)
    assert code == 0
    for text in ("Jobs", "36", "Success rate", "78.8%", "email", "Recent errors", "SMTP timeout"):
        assert text in out, text
    code, out = await run(client.cmd_stats, base_url, type="email", json_output=True)
    assert json.loads(out)["jobs"]["total"] == 30


async def test_stats_by_owner_and_service(
    base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await run(client.cmd_stats, base_url, owner="bob", json_output=True)
    assert code == 0 and json.loads(out)["jobs"]["by_status"] == {"failed": 1}
    argv = ["stats", "--api", base_url, "--owner", "mailer", "--service", "worker-a", "--json"]
    args = build_parser().parse_args(argv)
    assert await asyncio.to_thread(args.func, args) == 0
    assert json.loads(capsys.readouterr().out)["jobs"]["total"] == 0  # mailer's are worker-b's
    args = build_parser().parse_args([*argv[:-2], "worker-b", "--json"])
    assert await asyncio.to_thread(args.func, args) == 0
    assert json.loads(capsys.readouterr().out)["jobs"]["total"] == 30


async def test_api_errors_are_one_line(base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await run(client.cmd_job, base_url, "nope")
    err = capsys.readouterr().err
    assert code == 1 and out == ""
    assert err == "jobtrail: job 'nope' not found\n"
    code, _ = await run(client.cmd_logs, base_url, "import-1", level="loud")
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("jobtrail: level: unknown value 'loud'")
    code, _ = await run(client.cmd_stats, base_url, since="whenever")
    assert code == 1 and "since:" in capsys.readouterr().err


async def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out = await run(client.cmd_jobs, f"http://127.0.0.1:{port}", timeout_s=2)
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert err.startswith(f"jobtrail: cannot reach the jobtrail API at http://127.0.0.1:{port}")
    assert err.count("\n") == 1 and "Traceback" not in err


async def test_token_is_sent(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBTRAIL_TOKEN", "s3cret")
    api = client.ApiClient(base_url)
    assert await asyncio.to_thread(api.get, "/api/echo-auth") == {"authorization": "Bearer s3cret"}
    with pytest.raises(client.ApiError) as info:
        await asyncio.to_thread(api.get, "/api/locked")
    assert info.value.status == 401 and "JOBTRAIL_TOKEN" in str(info.value)


async def test_colours_on_a_terminal(base_url: str) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system="standard")
    code = await asyncio.to_thread(client.cmd_jobs, base_url, status="failed", console=console)
    assert code == 0 and "\x1b[1;31mfailed" in out.getvalue()


def test_durations() -> None:
    assert [duration(ms) for ms in (None, 850, 12_345, 90_000, 7_500_000, 2e8)] == [
        "", "850ms", "12.3s", "1m30s", "2h05m", "2d7h"
    ]  # fmt: skip


async def test_logs_of_one_step_run(base_url: str) -> None:
    code, out = await run(client.cmd_logs, base_url, "import-1", span_id="not-a-span")
    assert code == 1  # the API refused it (a 400 naming span_id: tests/api)
    code, everything = await run(client.cmd_logs, base_url, "import-1")
    assert code == 0 and "download line 3" in everything
    code, out = await run(client.cmd_logs, base_url, "import-1", span_id="d1d1d1d1d1d1d1d1")
    assert code == 0 and "download line" not in out  # these records name no step run
    args = build_parser().parse_args(
        ["logs", "import-1", "--span-id", "d1d1d1d1d1d1d1d1", "--events"]
    )
    assert (args.span_id, args.events) == ("d1d1d1d1d1d1d1d1", True)
