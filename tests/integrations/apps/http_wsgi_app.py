"""A plain WSGI app wrapped in JobtrailWSGIMiddleware, served by wsgiref on a real port.

Requests come from urllib in the main thread. Prints a JSON summary for the test.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry.propagate import inject

import jobtrail
from jobtrail.agent.integrations.wsgi import JobtrailWSGIMiddleware

jobtrail.configure()
jobtrail.instrument_logging(logging.INFO)
log = logging.getLogger("web")
exported = threading.Event()


def run_export(job_id: str, update_progress: Any) -> dict[str, int]:
    update_progress(10, "queued")
    time.sleep(0.2)
    log.info("exporting in the background")
    job = jobtrail.current_job()
    assert job is not None and job.id == job_id
    with job.step("write file") as step:
        step.info("rows written", rows=10)
    exported.set()
    return {"rows": 10}


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    status, body = "200 OK", b"{}"
    if path == "/exports":
        job = jobtrail.start_job(run_export, name="export", type="http-wsgi-export")
        status, body = "202 Accepted", json.dumps({"job_id": job.id}).encode()
    elif path == "/work":
        log.warning("handled for the caller's job")
        current = jobtrail.current_job()
        assert current is not None
        current.info("via current_job")
    elif path == "/child":
        with jobtrail.job("child of caller", type="http-wsgi-child") as job:
            job.info("child work")
    elif path == "/boom":
        log.error("about to fail")
        raise RuntimeError("handler crashed")
    elif path == "/ok":
        log.info("fine")
    else:
        status = "404 Not Found"
    start_response(status, [("Content-Type", "application/json")])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def request(base: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> dict[str, Any]:
    req = urllib.request.Request(base + path, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return {"status": resp.status, "header": resp.headers.get("X-Job-ID"), "body": resp.read()}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "header": exc.headers.get("X-Job-ID"), "body": exc.read()}


def serve(wsgi_app: Any) -> tuple[Any, str]:
    server = make_server("127.0.0.1", 0, wsgi_app, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


server1, base = serve(JobtrailWSGIMiddleware(app))
server2, base2 = serve(JobtrailWSGIMiddleware(app, request_job_type="http-wsgi-request"))
out: dict[str, Any] = {}
resp = request(base, "/exports", method="POST")
out["export"] = {"status": resp["status"], "header": resp["header"], "body": json.loads(resp["body"])["job_id"]}
with jobtrail.job("caller", type="http-wsgi-caller") as caller:
    out["caller"] = caller.id
    out["work_header"] = request(base, "/work", {"X-Job-ID": caller.id})["header"]
    out["child_header"] = request(base, "/child", {"X-Job-ID": caller.id})["header"]
with jobtrail.job("traced caller", type="http-wsgi-traced") as traced:
    out["traced"] = traced.id
    carrier: dict[str, str] = {}
    inject(carrier)
    out["traced_header"] = request(base, "/work", carrier)["header"]
for path in ("/boom", "/ok", "/missing"):
    resp = request(base2, path)
    out[path] = {"status": resp["status"], "header": resp["header"]}
exported.wait(10)
time.sleep(0.05)
server1.shutdown()
server2.shutdown()
jobtrail.shutdown()
print(json.dumps(out))
