"""aiohttp server with the jobtrail middleware, driven by an aiohttp client in-process.

Prints a JSON summary of what the client saw (ids and headers) for the test to check.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import ClientSession, web
from opentelemetry.propagate import inject

import jobtrail
from jobtrail.agent.integrations.aiohttp_server import jobtrail_middleware

jobtrail.configure()
jobtrail.instrument_logging(logging.INFO)
log = logging.getLogger("web")
exported = asyncio.Event()


async def run_export(job_id: str, update_progress: Any) -> dict[str, int]:
    await update_progress(10, "queued")
    await asyncio.sleep(0.2)  # the response has long been sent
    log.info("exporting in the background")
    job = jobtrail.current_job()
    assert job is not None and job.id == job_id
    async with job.step("write file") as step:
        step.info("rows written", rows=10)
    exported.set()
    return {"rows": 10}


async def exports(request: web.Request) -> web.Response:
    job = jobtrail.start_job(run_export, name="export", type="http-aiohttp-export")
    return web.json_response({"job_id": job.id}, status=202)


async def work(request: web.Request) -> web.Response:
    log.warning("handled for the caller's job")
    current = jobtrail.current_job()
    assert current is not None
    current.info("via current_job")
    return web.Response(text="ok")


async def child(request: web.Request) -> web.Response:
    async with jobtrail.job("child of caller", type="http-aiohttp-child") as job:
        job.info("child work")
    return web.Response(text="ok")


async def boom(request: web.Request) -> web.Response:
    log.error("about to fail")
    raise RuntimeError("handler crashed")


async def ok(request: web.Request) -> web.Response:
    log.info("fine")
    return web.Response(text="ok")


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def main() -> dict[str, Any]:
    app = web.Application(middlewares=[jobtrail_middleware()])
    app.add_routes([web.post("/exports", exports), web.get("/work", work), web.get("/child", child)])
    per_request = web.Application(middlewares=[jobtrail_middleware(request_job_type="http-aiohttp-request")])
    per_request.add_routes([web.get("/boom", boom), web.get("/ok", ok)])
    runner, base = await serve(app)
    runner2, base2 = await serve(per_request)
    out: dict[str, Any] = {}
    async with ClientSession() as client:
        async with client.post(f"{base}/exports") as resp:
            out["export"] = {"status": resp.status, "header": resp.headers.get("X-Job-ID"), "body": (await resp.json())["job_id"]}
        async with jobtrail.job("caller", type="http-aiohttp-caller") as caller:
            out["caller"] = caller.id
            async with client.get(f"{base}/work", headers={"X-Job-ID": caller.id}) as resp:
                out["work_header"] = resp.headers.get("X-Job-ID")
            async with client.get(f"{base}/child", headers={"X-Job-ID": caller.id}) as resp:
                out["child_header"] = resp.headers.get("X-Job-ID")
        async with jobtrail.job("traced caller", type="http-aiohttp-traced") as traced:
            out["traced"] = traced.id
            carrier: dict[str, str] = {}
            inject(carrier)  # a W3C traceparent of the job's span, as OTel clients send
            async with client.get(f"{base}/work", headers=carrier) as resp:
                out["traced_header"] = resp.headers.get("X-Job-ID")
        for path in ("/boom", "/ok", "/missing"):
            async with client.get(f"{base2}{path}") as resp:
                out[path] = {"status": resp.status, "header": resp.headers.get("X-Job-ID")}
    await asyncio.wait_for(exported.wait(), 10)
    await asyncio.sleep(0.05)  # let the background job end
    await runner.cleanup()
    await runner2.cleanup()
    return out


result = asyncio.run(main())
jobtrail.shutdown()
print(json.dumps(result))
