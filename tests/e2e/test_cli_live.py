"""The live CLI views: ``jobtrail logs --follow`` and ``jobtrail jobs --watch``.

The first tests run the real ``jobtrail`` command against a real server while a long job
runs; the last ones script an API in-process to check resuming and the polling fallback.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from rich.console import Console

from e2e.harness import ServerProcess
from e2e.otlp_json_job import JsonJobs, post
from jobtrail import _follow
from jobtrail.client import ApiClient

STEPS, LINES = 2, 5
ALL_LINES = [f"line {s}.{i}" for s in range(STEPS) for i in range(LINES)]


def _interruptible() -> None:
    """Let the child take SIGINT as from a terminal, even under a shell that ignores it.

    A command run in the background of a non-interactive shell starts with SIGINT ignored,
    and Python keeps an ignored SIGINT ignored, so Ctrl-C would never reach the CLI.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _jobtrail(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobtrail", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible,
    )  # fmt: skip


def _messages(out: str) -> list[str]:
    """The messages of printed log lines (``... INFO    [step 0] line 0.1  sent_at=...``)."""
    return [
        line.split("] ", 1)[1].split("  ", 1)[0] for line in out.splitlines() if "] line " in line
    ]


def _start_long_job(server: ServerProcess) -> tuple[subprocess.Popen[str], str]:
    app = server.start_app("long_job", str(STEPS), str(LINES))
    assert app.stdout is not None
    job_id = app.stdout.readline().strip()
    server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "running", timeout_s=10)
    return app, job_id


def test_logs_follow_a_running_job(server: ServerProcess) -> None:
    app, job_id = _start_long_job(server)
    api = ("--api", server.api)
    follow = _jobtrail("logs", job_id, "--follow", *api)
    warn_only = _jobtrail("logs", job_id, "-f", "--level", "warn", *api)
    step_1 = _jobtrail("logs", job_id, "-f", "--step", "step 1", *api)
    results = [proc.communicate(timeout=30) for proc in (follow, warn_only, step_1)]
    assert app.wait(30) == 0

    (out, err), (warn_out, warn_err), (step_out, _) = results
    assert follow.returncode == 0, err
    assert _messages(out) == ALL_LINES
    last = out.strip().splitlines()[-1]
    assert last.startswith("Job long job") and job_id in last and "completed" in last
    assert err == ""
    assert warn_only.returncode == 0, warn_err
    assert "INFO" not in warn_out and _messages(warn_out) == []
    assert "completed" in warn_out.strip().splitlines()[-1]
    assert step_1.returncode == 0 and _messages(step_out) == ALL_LINES[LINES:]

    started = time.monotonic()  # a finished job: its logs and status, no waiting
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail", "logs", job_id, "-f", "--json", *api],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and time.monotonic() - started < 10
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["message"] for r in rows[:-1]] == ALL_LINES
    assert rows[-1]["id"] == job_id and rows[-1]["status"] == "completed"


def test_logs_follow_unknown_job_is_one_line(server: ServerProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail", "logs", "nope", "-f", "--api", server.api],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "jobtrail: job 'nope' not found\n"


def test_jobs_watch_json_shows_a_job_run_and_finish(server: ServerProcess) -> None:
    watch = _jobtrail("jobs", "--watch", "--json", "--api", server.api)
    try:
        server.wait_for(
            "/api/stream/status", lambda s: s["by_stream"].get("jobs", 0) >= 1, timeout_s=15
        )
        app, job_id = _start_long_job(server)
        assert app.wait(30) == 0
        server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "completed")
        time.sleep(0.5)  # the last event reaches the watcher
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=10)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    assert watch.returncode == 130 and err == ""
    _nudge_job_streams(server)
    statuses = [row["status"] for row in map(json.loads, out.splitlines()) if row["id"] == job_id]
    assert "running" in statuses and statuses[-1] == "completed", statuses
    assert statuses.index("running") < statuses.index("completed")


def _nudge_job_streams(server: ServerProcess) -> None:
    """Post a tiny job so the server writes to the watcher's closed stream and drops it.

    The server notices a gone SSE client only when it next writes (a keepalive every 15 s),
    and stopping the server waits for that handler, which would make teardown slow.
    """
    jobs = JsonJobs()
    jobs.end(jobs.span("nudge", {"job.type": "nudge"}))
    post(server.http, "e2e-nudge", jobs, compress=False)
    server.wait_for("/api/stream/status", lambda s: s["by_stream"].get("jobs", 0) == 0, timeout_s=5)


# --- a scripted API -----------------------------------------------------------------------


def _job(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "j1", "name": "scripted", "type": "t", "status": status, "progress": None,
            "current_step": None, "started_at": None, "duration_ms": None, **fields}  # fmt: skip


def _log(log_id: int) -> dict[str, Any]:
    return {"id": log_id, "time": "2026-01-01T00:00:00Z", "level": "info", "step": None,
            "message": f"record {log_id}", "data": {}, "stack_trace": None}  # fmt: skip


def _sse(*events: tuple[str, int | None, Any]) -> bytes:
    chunks = [b"retry: 1000\n\n", b": keepalive\n\n"]
    for kind, event_id, data in events:
        head = f"id: {event_id}\n" if event_id is not None else ""
        chunks.append(f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
    return b"".join(chunks)


async def _serve(aiohttp_server: AiohttpServer, routes: web.RouteTableDef) -> str:
    app = web.Application()
    app.add_routes(routes)
    return str((await aiohttp_server(app)).make_url("")).rstrip("/")


async def _call(fn: Callable[..., int], *args: Any, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    code = await asyncio.to_thread(fn, *args, console=console, **kwargs)
    return code, out.getvalue()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_follow, "_FIRST_BACKOFF_S", 0.01)
    monkeypatch.setattr(_follow, "_MAX_BACKOFF_S", 0.02)
    monkeypatch.setattr(_follow, "_POLL_INTERVAL_S", 0.05)


async def test_follow_resumes_after_drops_with_last_event_id(
    aiohttp_server: AiohttpServer, fast_retries: None
) -> None:
    seen: list[str | None] = []
    routes = web.RouteTableDef()

    @routes.get("/api/jobs/j1/logs")
    async def logs(request: web.Request) -> web.Response:
        return web.json_response({"job": _job("running"), "logs": [_log(1)], "next_after_id": 1})

    @routes.get("/api/jobs/j1/stream")
    async def stream(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Last-Event-ID"))
        assert request.query.get("level") == "info"
        script = [
            _sse(("log", 2, _log(2))),  # then the connection just ends
            _sse(("log", 2, _log(2)), ("log", 3, _log(3)), ("resume", None, {})),
            _sse(("log", 4, _log(4)), ("job", 4, _job("failed")), ("end", None, {"status": "failed"})),
        ][len(seen) - 1]  # fmt: skip
        return web.Response(body=script, content_type="text/event-stream")

    @routes.get("/api/jobs/j1")
    async def job(request: web.Request) -> web.Response:
        return web.json_response(_job("failed", error="ValueError: boom", duration_ms=1500))

    base = await _serve(aiohttp_server, routes)
    code, out = await _call(_follow.follow_logs, ApiClient(base), "j1", level="info")
    assert code == 1
    assert seen == ["1", "2", "3"]
    lines = out.splitlines()
    assert [line.split("INFO    ")[1] for line in lines[:4]] == [f"record {i}" for i in range(1, 5)]
    assert "Job scripted (j1) failed in 1.5s" in lines[4] and "ValueError: boom" in lines[5]


async def test_follow_gives_up_after_bounded_retries(
    aiohttp_server: AiohttpServer, fast_retries: None, capsys: pytest.CaptureFixture[str]
) -> None:
    attempts = 0
    routes = web.RouteTableDef()

    @routes.get("/api/jobs/j1/logs")
    async def logs(request: web.Request) -> web.Response:
        return web.json_response({"job": _job("running"), "logs": [], "next_after_id": None})

    @routes.get("/api/jobs/j1/stream")
    async def stream(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        return web.json_response({"error": {"code": "overloaded", "message": "busy"}}, status=503)

    base = await _serve(aiohttp_server, routes)
    code, _ = await _call(_follow.follow_logs, ApiClient(base), "j1")
    assert code == 2 and attempts == _follow._MAX_RETRIES + 1
    err = capsys.readouterr().err
    assert "lost the live stream of job j1" in err and err.count("\n") == 1


class _StopWhen(io.StringIO):
    """A console file that ends the watch (as Ctrl-C would) once ``done(lines)`` holds."""

    def __init__(self, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        super().__init__()
        self.done = done

    def flush(self) -> None:
        if self.done([json.loads(line) for line in self.getvalue().splitlines()]):
            raise KeyboardInterrupt


async def test_watch_falls_back_to_polling(
    aiohttp_server: AiohttpServer, fast_retries: None
) -> None:
    lists = 0
    routes = web.RouteTableDef()

    @routes.get("/api/jobs")
    async def jobs(request: web.Request) -> web.Response:
        nonlocal lists
        lists += 1
        assert request.query["status"] == "pending,running,retrying"
        progress = min(lists * 25, 75)
        return web.json_response(
            {"jobs": [_job("running", progress=progress)] if lists < 4 else []}
        )

    @routes.get("/api/jobs/j1")
    async def job(request: web.Request) -> web.Response:
        return web.json_response(_job("completed", progress=100))

    base = await _serve(aiohttp_server, routes)  # no /api/jobs/stream: a 404
    out = _StopWhen(lambda rows: rows[-1]["status"] == "completed")
    console = Console(file=out, width=200, color_system=None)
    code = await asyncio.to_thread(
        _follow.watch_jobs, ApiClient(base), json_output=True, console=console
    )
    assert code == 130
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["status"], r["progress"]) for r in rows] == [
        ("running", 25), ("running", 50), ("running", 75), ("completed", 100)
    ]  # fmt: skip


def test_watch_table_shows_progress_and_lingering_finished_jobs() -> None:
    board = _follow._JobBoard()
    board.note = "live"
    board.apply(_job("running", progress=50.0, current_step="step 1"))
    board.apply({**_job("running"), "id": "j2", "name": "second"})
    board.apply({**_job("completed"), "id": "j3", "name": "never seen running"})
    out = io.StringIO()
    Console(file=out, width=150, color_system=None).print(board)
    text = out.getvalue()
    assert "Running jobs (2)" in text and "50%" in text and "step 1" in text
    assert "second" in text and "never seen running" not in text and "live" in text
    board.apply(_job("completed", progress=100.0, duration_ms=90_000))
    out = io.StringIO()
    Console(file=out, width=150, color_system=None).print(board)
    assert "Running jobs (1)" in out.getvalue() and "completed" in out.getvalue()
    assert "1m30s" in out.getvalue()
