"""A job that runs one step twice, and a failed job of another owner, as OTLP requests.

Shared by the API and lake tests of the ``span_id`` log filter and the stats job filters
(``type``, ``owner``, ``service``), so the embedded file and the lake are fed the same data.
Each call makes new trace and span ids, and names its type, owners and services with a
suffix, so calls never see each other's jobs in one database.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage import Database
from jobtrail.storage.writer import BatchWriter

Request = tuple[str, Any]  # ("traces" | "logs", request)


@dataclass(frozen=True)
class StepRuns:
    """What :func:`step_runs` sent: the requests and the names and ids a test asks about."""

    requests: list[Request]
    job_id: str  # "sync users": step "fetch" twice, owner ``owner``, service ``service``
    other_id: str  # "sync orders": failed, owner ``other_owner``, service ``other_service``
    job_span: str
    run1: str  # the first "fetch" step's span
    run2: str  # the second one
    http: str  # a plain span inside run2 (its record links through the span tree)
    type: str
    owner: str
    other_owner: str
    service: str
    other_service: str


def step_runs() -> StepRuns:
    """The requests, in an order that makes the linker wait for spans (logs first)."""
    tag = os.urandom(3).hex()
    kind, owner, other_owner = f"sync-{tag}", f"ann-{tag}", f"bob-{tag}"
    service, other_service = f"worker-a-{tag}", f"worker-b-{tag}"
    t, job, run1, run2, http = new_trace_id(), *(new_span_id() for _ in range(4))
    jid = job.hex()
    common = {"job.id": jid}
    fetch = {**common, "job.step": "fetch"}
    start = time.time_ns()
    started = {**common, "event.name": "job.started", "job.name": "sync users"}
    job_attrs = {**common, "job.type": kind, "job.owner": owner}
    logs_a = [
        log(t, job, "job started", {**started, "job.type": kind, "job.owner": owner}),
        log(t, job, "listing pages", common),
        log(t, run1, "fetching page 1", fetch),
        log(t, run1, "page 1 slow", fetch, severity=13),
        log(t, run2, "fetching page 2", fetch),
        log(t, http, "GET /page/2 retried", severity=13),  # no job attributes: plain SDK
    ]
    spans_a = [
        span(t, http, "GET /page/2", {"http.method": "GET"}, parent=run2, start_ns=start + 3),
        span(t, run1, "fetch", {**fetch, "job.step.seq": 1}, parent=job, start_ns=start + 1),
        span(t, run2, "fetch", {**fetch, "job.step.seq": 2}, parent=job, start_ns=start + 2),
        span(t, job, "sync users", job_attrs, start_ns=start, duration_ms=40),
    ]
    t2, other = new_trace_id(), new_span_id()
    oid = other.hex()
    other_attrs = {"job.id": oid, "job.type": kind, "job.owner": other_owner}
    failed = span(t2, other, "sync orders", other_attrs, start_ns=start + 10, duration_ms=20,
                  error="db down")  # fmt: skip
    db_error = log(t2, other, "orders failed", {"job.id": oid, "log.category": "db"}, severity=17)
    tick = log(None, None, "scheduler tick")  # a record of no job, from the first job's service
    requests: list[Request] = [
        ("logs", logs_request(logs_a, service=service)),
        ("logs", logs_request([db_error], service=other_service)),
        ("logs", logs_request([tick], service=service)),
        ("traces", traces_request(spans_a, service=service)),
        ("traces", traces_request([failed], service=other_service)),
    ]
    return StepRuns(
        requests=requests, job_id=jid, other_id=oid, job_span=jid, run1=run1.hex(),
        run2=run2.hex(), http=http.hex(), type=kind, owner=owner, other_owner=other_owner,
        service=service, other_service=other_service,
    )  # fmt: skip


async def store(writer: BatchWriter, request: Request) -> None:
    """Decode one request as the receivers do and write it."""
    kind, req = request
    decoded = decode_traces(req) if kind == "traces" else decode_logs(req)
    await writer.write(decoded.batch)


async def store_all(db: Database, requests: list[Request]) -> None:
    """Store ``requests`` in ``db`` through a real writer, closed afterwards."""
    writer = BatchWriter(db)
    writer.start()
    try:
        for request in requests:
            await store(writer, request)
    finally:
        await asyncio.to_thread(writer.close)
