"""A client that never gives up: jobs as OTLP traces and logs over gRPC, retried until acked.

Usage: crash_client.py READY_FILE CLIENT OUT_JSONL STOP_FILE [JOBS_PER_REQUEST] [LOGS_PER_JOB]

Every request is serialised once and an unacknowledged one is sent again with the same bytes
(what an OTLP exporter's retry does), to whatever endpoint READY_FILE names by then: the
server may have been killed and restarted on other ports. Each acknowledged request appends
one JSON line to OUT_JSONL, flushed at once, so what was acknowledged survives this process:

    {"kind": "traces", "req": 7, "spans": [hex...], "jobs": [id...], "steps": n,
     "attempts": 1, "first_error_at": null}
    {"kind": "logs", "req": 7, "logs": [body...], "attempts": 3, "first_error_at": 1712.5}

``first_error_at`` (``time.time()`` of the first failed attempt) lets the test tell a retry
of a request that had already been committed (its rows were decoded before that moment).
Once STOP_FILE exists the client finishes the request in hand (retrying up to DRAIN_S seconds,
env CRASH_CLIENT_DRAIN_S), prints one JSON summary line and exits 0.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from otlp_build import (  # noqa: E402
    log,
    logs_request,
    new_span_id,
    new_trace_id,
    span,
    traces_request,
)

METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
RESPONSES: dict[str, Any] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
}
DRAIN_S = float(os.environ.get("CRASH_CLIENT_DRAIN_S", "30"))
STEPS_PER_JOB = 3


class Sender:
    """One gRPC channel to the endpoint in the ready file, renewed after every failure."""

    def __init__(self, ready_file: str, stop_file: str) -> None:
        self.ready_file = ready_file
        self.stop_file = stop_file
        self.give_up_at: float | None = None
        self.endpoint = ""
        self.channel: grpc.Channel | None = None
        self.errors: dict[str, int] = {}

    def _renew(self) -> None:
        try:
            with open(self.ready_file) as f:
                self.endpoint = json.load(f)["grpc"]
        except (OSError, ValueError, KeyError):
            pass  # between a kill and the restart: keep the last known endpoint
        if self.channel is not None:
            self.channel.close()
        self.channel = grpc.insecure_channel(self.endpoint) if self.endpoint else None

    def stopping(self) -> bool:
        """Whether STOP_FILE appeared (from then on, retries end after DRAIN_S)."""
        if self.give_up_at is None and os.path.exists(self.stop_file):
            self.give_up_at = time.monotonic() + DRAIN_S
        return self.give_up_at is not None

    def send(self, kind: str, body: bytes) -> tuple[int, float | None]:
        """Send until acknowledged; return (attempts, time of the first failure).

        Attempts are negative when the client stopped and gave up on the request.
        """
        attempts, first_error = 0, None
        while True:
            if self.channel is None:
                self._renew()
            attempts += 1
            try:
                if self.channel is None:
                    raise ConnectionError("no endpoint yet")
                raw = self.channel.unary_unary(METHODS[kind])(body, timeout=10)
                response = RESPONSES[kind].FromString(raw)
                if response.HasField("partial_success"):
                    raise ValueError(f"partial success: {response.partial_success}")
                return attempts, first_error
            except (grpc.RpcError, ConnectionError, ValueError) as exc:
                code = exc.code().name if isinstance(exc, grpc.RpcError) else type(exc).__name__
                self.errors[code] = self.errors.get(code, 0) + 1
                if first_error is None:
                    first_error = time.time()
                if self.stopping() and time.monotonic() > (self.give_up_at or 0):
                    return -attempts, first_error
                time.sleep(0.05)
                self._renew()


def build(client: int, n: int, jobs: int, logs_per_job: int) -> dict[str, Any]:
    spans, records, job_ids, log_bodies = [], [], [], []
    for k in range(jobs):
        job_id = f"c{client}-{n}-{k}"
        trace_id, job_span = new_trace_id(), new_span_id()
        common = {"job.id": job_id, "job.type": "crash", "job.name": f"crash job {job_id}"}
        spans.append(span(trace_id, job_span, "crash job", common, duration_ms=50))
        for m in range(STEPS_PER_JOB):
            attrs = {"job.id": job_id, "job.step": f"s{m}", "job.step.seq": m + 1}
            spans.append(span(trace_id, new_span_id(), f"s{m}", attrs, parent=job_span))
        started = log(trace_id, job_span, f"{job_id} started", common)
        started.event_name = "job.started"
        records.append(started)
        log_bodies.append(started.body.string_value)
        for m in range(logs_per_job):
            body = f"{job_id} line {m}"
            records.append(log(trace_id, job_span, body, {"job.id": job_id, "n": m}))
            log_bodies.append(body)
        job_ids.append(job_id)
    return {
        "traces": traces_request(spans, f"crash-client-{client}").SerializeToString(),
        "logs": logs_request(records, f"crash-client-{client}").SerializeToString(),
        "spans": [s.span_id.hex() for s in spans],
        "jobs": job_ids,
        "log_bodies": log_bodies,
    }


def main() -> None:
    ready_file, client, out_path, stop_file = (
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        sys.argv[4],
    )
    jobs = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    logs_per_job = int(sys.argv[6]) if len(sys.argv) > 6 else 8
    sender = Sender(ready_file, stop_file)
    acked = {"traces": 0, "logs": 0}
    abandoned = retried = 0
    n = 0
    with open(out_path, "a") as out:
        while not sender.stopping():
            req = build(client, n, jobs, logs_per_job)
            # Alternate which signal goes first, so jobs also appear from their logs first.
            for kind in ("logs", "traces") if n % 2 else ("traces", "logs"):
                attempts, first_error = sender.send(kind, req[kind])
                if attempts < 0:
                    abandoned += 1
                    continue
                retried += attempts > 1
                line: dict[str, Any] = {"kind": kind, "req": n, "attempts": attempts}
                line["first_error_at"] = first_error
                if kind == "traces":
                    line.update(spans=req["spans"], jobs=req["jobs"], steps=len(req["jobs"]) * 3)
                else:
                    line.update(logs=req["log_bodies"], jobs=req["jobs"])
                out.write(json.dumps(line) + "\n")
                out.flush()
                acked[kind] += 1
            n += 1
    summary = {"client": client, "requests": n, "acked": acked, "retried": retried}
    summary.update(abandoned=abandoned, errors=sender.errors)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
