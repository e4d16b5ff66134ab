"""A plain ASGI app wrapped in JobtrailASGIMiddleware, driven through the ASGI protocol.

(No ASGI server is installed; the driver plays the server's part: it builds the scope,
feeds the body and collects what the app sends.) Prints a JSON summary for the test.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.propagate import inject

import jobtrail
from jobtrail.agent.integrations.asgi import JobtrailASGIMiddleware

jobtrail.configure()
jobtrail.instrument_logging(logging.INFO)
log = logging.getLogger("web")
exported = asyncio.Event()
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def run_export(job_id: str, update_progress: Any) -> dict[str, int]:
    await update_progress(10, "queued")
    await asyncio.sleep(0.2)
    log.info("exporting in the background")
    job = jobtrail.current_job()
    assert job is not None and job.id == job_id
    async with job.step("write file") as step:
        step.info("rows written", rows=10)
    exported.set()
    return {"rows": 10}


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
    path = scope["path"]
    if path == "/exports":
        job = jobtrail.start_job(run_export, name="export", type="http-asgi-export")
        await respond(send, 202, json.dumps({"job_id": job.id}).encode())
    elif path == "/work":
        log.warning("handled for the caller's job")
        current = jobtrail.current_job()
        assert current is not None
        current.info("via current_job")
        await respond(send, 200, b"{}")
    elif path == "/child":
        async with jobtrail.job("child of caller", type="http-asgi-child") as job:
            job.info("child work")
        await respond(send, 200, b"{}")
    elif path == "/boom":
        log.error("about to fail")
        raise RuntimeError("handler crashed")
    elif path == "/ok":
        log.info("fine")
        await respond(send, 200, b"{}")
    else:
        await respond(send, 404, b"{}")


async def call(asgi: Any, method: str, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Handle the request in a fresh context, as a server's connection task would."""
    return await asyncio.create_task(_call(asgi, method, path, headers), context=contextvars.Context())


async def _call(asgi: Any, method: str, path: str, headers: dict[str, str] | None) -> dict[str, Any]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "path": path, "raw_path": path.encode(), "query_string": b"", "scheme": "http",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await asgi(scope, receive, send)
    except RuntimeError:
        return {"status": 500, "header": None}  # what a server answers for a crashed app
    start = next(m for m in sent if m["type"] == "http.response.start")
    found = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "header": found.get("x-job-id"), "body": body}


async def main() -> dict[str, Any]:
    wrapped = JobtrailASGIMiddleware(app)
    per_request = JobtrailASGIMiddleware(app, request_job_type="http-asgi-request")
    out: dict[str, Any] = {}
    resp = await call(wrapped, "POST", "/exports")
    out["export"] = {"status": resp["status"], "header": resp["header"], "body": json.loads(resp["body"])["job_id"]}
    async with jobtrail.job("caller", type="http-asgi-caller") as caller:
        out["caller"] = caller.id
        out["work_header"] = (await call(wrapped, "GET", "/work", {"X-Job-ID": caller.id}))["header"]
        out["child_header"] = (await call(wrapped, "GET", "/child", {"X-Job-ID": caller.id}))["header"]
    async with jobtrail.job("traced caller", type="http-asgi-traced") as traced:
        out["traced"] = traced.id
        carrier: dict[str, str] = {}
        inject(carrier)
    out["traced_header"] = (await call(wrapped, "GET", "/work", carrier))["header"]
    for path in ("/boom", "/ok", "/missing"):
        resp = await call(per_request, "GET", path)
        out[path] = {"status": resp["status"], "header": resp["header"]}
    await asyncio.wait_for(exported.wait(), 10)
    await asyncio.sleep(0.05)
    return out


result = asyncio.run(main())
jobtrail.shutdown()
print(json.dumps(result))
