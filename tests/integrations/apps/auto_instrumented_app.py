"""A job whose step calls a local HTTP server with ``requests``, run under ``opentelemetry-instrument``.

The OTel distro configures the SDK providers (and instruments ``requests``); the agent
must borrow them, so the HTTP client span lands in the job's trace under the step.
Prints JSON: the job id and the ``traceparent`` the server received.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from opentelemetry import trace

import jobtrail

received: dict[str, str | None] = {}


class PricesHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        received["traceparent"] = self.headers.get("traceparent")
        body = json.dumps({"prices": [3, 5, 8]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), PricesHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/prices"

jobtrail.instrument_logging(logging.INFO)
log = logging.getLogger("prices")
with jobtrail.job("fetch prices", type="auto-instrumented", total_steps=2) as job:
    with job.step("download"):
        prices = requests.get(url, timeout=10).json()["prices"]
        log.info("downloaded prices", extra={"count": len(prices)})
    with job.step("store") as step:
        step.success("stored")
    job.result = {"prices": len(prices)}

out = {
    "job": job.id,
    "traceparent": received.get("traceparent"),
    "sdk_provider": type(trace.get_tracer_provider()).__module__,
}
server.shutdown()
jobtrail.shutdown()
print(json.dumps(out))
